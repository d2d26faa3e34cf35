// The federation's weight formats, shared by the aggregator and the members:
// - a checkpoint is a safetensors file (F32) with the global adapter under its own tensor names,
//   plus the server optimizer's state as `server.m.<name>` / `server.v.<name>`, so a new
//   aggregator resumes the FedYogi moments exactly where the old one stopped;
// - on the wire, weights travel as one raw float32 attachment with a layout (name, shape, offset);
// - the hash of a global adapter is the sha256 of its raw float32 bytes in spec order.
import { parseSafetensors, serializeSafetensors, type TensorToWrite } from '../../worker/io/safetensors.ts';
import { sha256Hex } from './wire.ts';
import type { TensorLayout } from '../../shared/messages.ts';
import type { ServerOptState } from '../spry/server_optimizer.ts';
import { sizeOf, type TensorSpec, type Weights } from '../../shared/units.ts';

const M = 'server.m.';
const V = 'server.v.';
export const CHECKPOINT_FORMAT = 'fedforward-checkpoint-1';

export interface Checkpoint {
  round: number;
  globals: Weights;
  server: ServerOptState;
}

export function serializeCheckpoint(c: Checkpoint, federationId: string): Uint8Array {
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, data] of c.globals) tensors.set(name, { shape: [data.length], data });
  for (const [name, data] of c.server.m) tensors.set(M + name, { shape: [data.length], data });
  for (const [name, data] of c.server.v) tensors.set(V + name, { shape: [data.length], data });
  return serializeSafetensors(tensors, { metadata: { format: CHECKPOINT_FORMAT, round: String(c.round), federation: federationId } });
}

/** Parse and check a checkpoint against the adapter's tensor specs; throws a one-line Error. */
export function parseCheckpoint(bytes: Uint8Array, specs: TensorSpec[]): Checkpoint {
  const parsed = parseSafetensors(bytes, 'checkpoint');
  if (parsed.metadata.format !== CHECKPOINT_FORMAT) throw new Error('checkpoint: not a FedForward checkpoint');
  const round = Number(parsed.metadata.round);
  if (!Number.isSafeInteger(round) || round < 0) throw new Error('checkpoint: bad round number');
  const sizes = new Map(specs.map((s) => [s.name, sizeOf(s.shape)]));
  const globals: Weights = new Map();
  const server: ServerOptState = { m: new Map(), v: new Map() };
  for (const [name, t] of parsed.tensors) {
    if (t.dtype !== 'F32' || !(t.data instanceof Float32Array)) throw new Error(`checkpoint: tensor ${name} is not F32`);
    const base = name.startsWith(M) ? name.slice(M.length) : name.startsWith(V) ? name.slice(V.length) : name;
    const size = sizes.get(base);
    if (size === undefined || t.data.length !== size) throw new Error(`checkpoint: tensor ${name} does not match the model's adapter`);
    const data = new Float32Array(t.data); // own buffer: the server optimizer mutates m and v in place
    if (name.startsWith(M)) server.m.set(base, data);
    else if (name.startsWith(V)) server.v.set(base, data);
    else globals.set(name, data);
  }
  for (const s of specs) if (!globals.has(s.name)) throw new Error(`checkpoint: tensor ${s.name} is missing`);
  return { round, globals, server };
}

/** Pack tensors (in the given order) into one raw float32 buffer and its layout. */
export function packWeights(weights: Weights, specs: readonly TensorSpec[]): { layout: TensorLayout; data: Uint8Array } {
  let total = 0;
  for (const s of specs) total += sizeOf(s.shape);
  const out = new Float32Array(total);
  const layout: TensorLayout = [];
  let at = 0;
  for (const s of specs) {
    const w = weights.get(s.name);
    if (w === undefined) throw new Error(`tensor ${s.name} is missing`);
    if (w.length !== sizeOf(s.shape)) throw new Error(`tensor ${s.name} has ${w.length} values, expected ${sizeOf(s.shape)}`);
    out.set(w, at);
    layout.push({ name: s.name, shape: [...s.shape], offset: at * 4 });
    at += w.length;
  }
  return { layout, data: new Uint8Array(out.buffer) };
}

/**
 * Unpack weights received over the wire, checking that they are exactly the expected tensors
 * (names, shapes, contiguous offsets covering the whole attachment) and that every value is finite.
 * Throws a one-line Error saying what is wrong.
 */
export function unpackWeights(layout: TensorLayout | undefined, data: Uint8Array | undefined, expected: readonly TensorSpec[]): Weights {
  if (layout === undefined || data === undefined) throw new Error('weights without a layout or data');
  if (layout.length !== expected.length) throw new Error(`expected ${expected.length} tensors, got ${layout.length}`);
  const want = new Map(expected.map((s) => [s.name, s]));
  const aligned = data.byteOffset % 4 === 0 ? data : new Uint8Array(data);
  const all = new Float32Array(aligned.buffer, aligned.byteOffset, aligned.byteLength / 4);
  const out: Weights = new Map();
  let at = 0;
  for (const t of layout) {
    const spec = want.get(t.name);
    if (spec === undefined) throw new Error(`unexpected tensor "${t.name.slice(0, 100)}"`);
    if (out.has(t.name)) throw new Error(`tensor "${t.name}" appears twice`);
    if (t.shape.length !== spec.shape.length || t.shape.some((d, i) => d !== spec.shape[i])) {
      throw new Error(`tensor "${t.name}" has shape [${t.shape.join(', ')}], expected [${spec.shape.join(', ')}]`);
    }
    if (t.offset !== at * 4) throw new Error(`tensor "${t.name}" is not at the expected offset`);
    const n = sizeOf(spec.shape);
    if (at + n > all.length) throw new Error(`tensor "${t.name}" runs past the end of the data`);
    const w = all.slice(at, at + n);
    for (let i = 0; i < n; i++) if (!Number.isFinite(w[i]!)) throw new Error(`tensor "${t.name}" has a non-finite value`);
    out.set(t.name, w);
    at += n;
  }
  if (at !== all.length) throw new Error(`data has ${all.length - at} values beyond the tensors`);
  return out;
}

/** sha256 of the global adapter: its raw float32 bytes in spec order. */
export function hashWeights(weights: Weights, specs: readonly TensorSpec[]): string {
  return sha256Hex(packWeights(weights, specs).data);
}

export function copyWeights(w: Weights): Weights {
  return new Map([...w].map(([k, v]) => [k, new Float32Array(v)]));
}

/** packWeights that tolerates missing tensors (sent as they are; the receiver refuses them). */
export function packLoose(weights: Weights, specs: TensorSpec[]): { layout: TensorLayout; data: Uint8Array } {
  const present = specs.filter((s) => weights.has(s.name));
  const out: Float32Array[] = [];
  const layout: TensorLayout = [];
  let at = 0;
  for (const s of present) {
    const w = weights.get(s.name)!;
    out.push(w);
    // the actual length decides the shape on the wire, so a wrong-sized tensor shows as such
    layout.push({ name: s.name, shape: w.length === sizeOf(s.shape) ? [...s.shape] : [w.length], offset: at * 4 });
    at += w.length;
  }
  const all = new Float32Array(at);
  let p = 0;
  for (const w of out) {
    all.set(w, p);
    p += w.length;
  }
  return { layout, data: new Uint8Array(all.buffer) };
}
