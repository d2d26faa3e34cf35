// Option parsers shared by the subcommands: a bad value fails with a one-line reason.
import { InvalidArgumentError, Option } from 'commander';

export function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

export function nonNegativeNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number >= 0');
  return n;
}

export const backendOption = () =>
  new Option('--backend <name>', 'tensor backend').choices(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto');

export function nonNegativeInt(v: string): number {
  return v === '0' ? 0 : positiveInt(v);
}
