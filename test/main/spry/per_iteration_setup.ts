// What the aggregator and the client process of the per-iteration test both know: the model's
// shape, the global adapter of the round, and each client's private examples.
import { Rng } from '../../../src/shared/spry/rng.ts';
import type { RandomShape } from '../../../src/worker/models/random.ts';
import type { TensorSpec, Weights } from '../../../src/shared/units.ts';
import type { EncodedSet } from '../../../src/worker/spry/batching.ts';

export const SHAPE: RandomShape = { family: 'gpt2', layers: 2, hidden: 16, heads: 2, vocab: 29, positions: 16 };
/** 2 layers × (c_attn, c_fc) LoRA pairs + the head: U = 5 units */
export const TARGETS = ['c_attn', 'c_fc'];

/** A global adapter with every tensor non-zero (LoRA B too), so every tangent reaches the loss. */
export function globalsOf(specs: TensorSpec[]): Weights {
  const rng = new Rng('per-iteration globals');
  return new Map(specs.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => 0.3 * rng.normal())]));
}

/** 3 to 8 examples per client (a batch of 8 holds them all), with both labels. */
export function clientData(client: string): EncodedSet {
  const rng = new Rng(`data/${client}`);
  const n = 3 + rng.int(6);
  const ids = Array.from({ length: n }, () => Array.from({ length: 2 + rng.int(8) }, () => 1 + rng.int(28)));
  return { ids, labels: ids.map((_, i) => i % 2), pad: 0 };
}
