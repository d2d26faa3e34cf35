// Perturbation directions v ~ N(0, I), generated on the CPU by the counter-based Philox generator,
// never by a backend's random ops: the aggregator of Spry's per-iteration mode regenerates exactly
// the vectors a client used, on any machine and backend, from the seed it handed out.
import * as tf from '@tensorflow/tfjs';
import { type Seed, normals } from '../rng.ts';

/**
 * K directions for one trainable tensor, shape [K, ...shape]. `stream` is the tensor's index in the
 * model's trainable list, so every tensor gets an independent stream under the same step seed.
 */
export function perturbation(seed: Seed, stream: number, shape: number[], k: number): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(normals(seed, stream, k * size), [k, ...shape], 'float32');
}
