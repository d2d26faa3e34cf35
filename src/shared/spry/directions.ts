// The one rule by which a Spry client draws its perturbations and the aggregator of per-iteration
// Spry regenerates them: the same seed, the same stream per tensor, the same combination. Both sides
// import this file, so they cannot drift apart.
import { type Seed, normals } from './rng.ts';
import { type TensorSpec, sizeOf } from '../units.ts';

/**
 * The Philox stream of a trainable tensor: its index in the model's trainable list (module order),
 * so every tensor draws an independent stream under one step seed.
 */
export function streamOf(trainable: TensorSpec[], name: string): number {
  const i = trainable.findIndex((s) => s.name === name);
  if (i < 0) throw new Error(`"${name}" is not a trainable tensor of this model`);
  return i;
}

/** K directions v_k ~ N(0, I) for one trainable tensor, [K, ...shape] flattened row-major. */
export function directions(seed: Seed, trainable: TensorSpec[], name: string, k: number): Float32Array {
  const i = streamOf(trainable, name);
  return normals(seed, i, k * sizeOf(trainable[i].shape));
}

/** (1/K) Σ_k c_k v_k over directions v of [K, size]: the forward gradient when c are the jvps. */
export function combineDirections(c: ArrayLike<number>, v: Float32Array): Float32Array {
  const k = c.length;
  const size = v.length / k;
  if (k === 0 || !Number.isInteger(size)) throw new Error(`${v.length} direction values do not split into ${k} directions`);
  const out = new Float32Array(size);
  for (let j = 0; j < k; j++) {
    const cj = c[j] / k;
    for (let i = 0; i < size; i++) out[i] += cj * v[j * size + i];
  }
  return out;
}
