// Running small IR graphs in double precision on ONNX Runtime's CPU provider, for the derivative tests.
import { Graph, type Value } from '../../../src/worker/engine/ir.ts';
import { toOnnx, serialize } from '../../../src/worker/engine/onnx.ts';
import { ort } from '../../../src/worker/engine/session.ts';

export type Feeds = Record<string, { data: Float64Array | BigInt64Array; shape: number[] }>;

export async function run(g: Graph, outputs: Record<string, Value>, feeds: Feeds): Promise<Record<string, Float64Array>> {
  const bytes = serialize(toOnnx(g, outputs));
  const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3 });
  const inputs: Record<string, ort.Tensor> = {};
  for (const name of s.inputNames) {
    const f = feeds[name];
    if (!f) throw new Error(`no feed for ${name}`);
    inputs[name] =
      f.data instanceof BigInt64Array ? new ort.Tensor('int64', f.data, f.shape)
      : g.float === 'double' ? new ort.Tensor('float64', f.data, f.shape)
      : new ort.Tensor('float32', Float32Array.from(f.data), f.shape);
  }
  const out = await s.run(inputs);
  await s.release();
  return Object.fromEntries(Object.keys(outputs).map((k) => [k, Float64Array.from(out[k].data as Float64Array | Float32Array)]));
}

/** Deterministic pseudo-random numbers in [-1, 1) (a linear congruential generator: tests only). */
export function randoms(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = lo + ((hi - lo) * s) / 2 ** 32;
  }
  return out;
}

/** max |a − b| / max |b|: float32 agreement relative to the values' size */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

export const size = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
export { Graph };
