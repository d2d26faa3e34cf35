// Perturbation directions v ~ N(0, I), generated on the CPU by the counter-based Philox generator,
// never by a backend's random ops: the aggregator of Spry's per-iteration mode regenerates exactly
// the vectors a client used, on any machine and backend, from the seed it handed out.
import * as tf from '@tensorflow/tfjs';
import type { Seed } from '../../shared/spry/rng.ts';
import { combineDirections, directions } from '../../shared/spry/directions.ts';
import type { TensorSpec } from '../../shared/units.ts';

/** K directions for one trainable tensor, as a tensor [K, ...shape] (the shared rule, src/shared/spry). */
export function perturbation(seed: Seed, trainable: TensorSpec[], name: string, k: number): tf.Tensor {
  const spec = trainable.find((s) => s.name === name);
  return tf.tensor(directions(seed, trainable, name, k), [k, ...(spec?.shape ?? [])], 'float32');
}

/** (1/K) Σ_k c_k v_k for directions v [K, ...shape], by the shared rule. */
export function combine(c: number[], v: tf.Tensor): tf.Tensor {
  return tf.tensor(combineDirections(c, v.dataSync() as Float32Array), v.shape.slice(1), 'float32');
}
