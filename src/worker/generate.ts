// Text generation: greedy by default, or sampling with temperature and top-k from a seeded generator.
// Each step reruns the model on the whole context (no KV cache): the models this runs are small,
// and the point of `generate` is to show a checkpoint loaded right.
import * as tf from '@tensorflow/tfjs';
import type { Model } from './models/model.ts';
import type { Params } from './models/lora.ts';
import { disposeDual } from './fwd/dual.ts';
import { Rng } from '../shared/spry/rng.ts';

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy */
  temperature?: number;
  topK?: number;
  seed?: number;
  /** stop when this token is produced */
  stopId?: number | null;
  /** adapter tensors (e.g. a loaded PEFT LoRA adapter); none: the base model */
  params?: Params;
  onToken?: (id: number) => void;
}

export function generate(model: Model, prompt: number[], opts: GenerateOptions): number[] {
  if (model.task.kind !== 'causal-lm') throw new Error('generate needs a causal language model');
  if (prompt.length === 0) throw new Error('the prompt has no tokens');
  const ids = prompt.slice();
  const rng = new Rng(opts.seed ?? 0);
  const temperature = opts.temperature ?? 0;
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const row = nextTokenLogits(model, ids.slice(-model.dims.maxPositions), opts.params);
    const next = temperature > 0 ? sample(row, temperature, opts.topK ?? 0, rng) : argmax(row);
    ids.push(next);
    opts.onToken?.(next);
    if (opts.stopId != null && next === opts.stopId) break;
  }
  return ids.slice(prompt.length);
}

/** The logits [V] the model gives after the last token of `context` (no padding, no dropout). */
export function nextTokenLogits(model: Model, context: number[], params: Params = new Map()): Float32Array {
  const logits = tf.tidy(() => {
    const batch = { ids: tf.tensor2d([context], undefined, 'int32'), mask: tf.ones([1, context.length]) as tf.Tensor2D };
    const out = model.forward(batch, params, null);
    const last = tf.slice(out.p, [0, context.length - 1, 0], [1, 1, -1]).reshape([-1]);
    disposeDual(out);
    return last;
  });
  const row = logits.dataSync() as Float32Array;
  logits.dispose();
  return row;
}

export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

function sample(row: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let order = Array.from(row.keys());
  if (topK > 0) order = order.sort((a, b) => row[b] - row[a]).slice(0, topK);
  const max = Math.max(...order.map((i) => row[i]));
  const weights = order.map((i) => Math.exp((row[i] - max) / temperature));
  let u = rng.uniform() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < order.length; j++) {
    u -= weights[j];
    if (u <= 0) return order[j];
  }
  return order[order.length - 1];
}
