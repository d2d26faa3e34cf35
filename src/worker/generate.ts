// Text generation: greedy by default, or sampling with temperature and top-k from a seeded generator.
// Each step reruns the model on the whole context (no KV cache): the models this runs are small,
// and the point of `generate` is to show a checkpoint loaded right. The logits come from ONNX
// Runtime's runner (onEngine), or from the TensorFlow.js model where the engine does not run (onTfjs).
import * as tf from '@tensorflow/tfjs';
import type { Model, Task } from './models/model.ts';
import type { Params } from './models/lora.ts';
import { disposeDual } from './fwd/dual.ts';
import type { HostValues, Runner } from './engine/runner.ts';
import { Rng } from '../shared/spry/rng.ts';

/** What decoding needs of a model: its task, its context length, and the logits of one unpadded sequence. */
export interface Decoder {
  task: Task;
  maxPositions: number;
  /** the logits [V] after the last token of `context` (causal LM), or its class logits [C]; no dropout */
  logits(context: number[]): Promise<Float32Array>;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** 0 = greedy */
  temperature?: number;
  topK?: number;
  seed?: number;
  /** stop when this token is produced */
  stopId?: number | null;
  onToken?: (id: number) => void;
}

/** The model on ONNX Runtime, with adapter tensors `values` (e.g. a loaded PEFT LoRA adapter). */
export function onEngine(runner: Runner, values: HostValues = new Map()): Decoder {
  const { task, dims } = runner.model;
  return {
    task,
    maxPositions: dims.maxPositions,
    async logits(context) {
      const t = context.length;
      // the batch's host feeds include the loss's targets, which a classifier needs labels for; the logits ignore them
      const labels = task.kind === 'classification' ? new Int32Array(1) : null;
      const out = await runner.logits({ b: 1, t, ids: Int32Array.from(context), mask: new Float32Array(t).fill(1), labels }, values);
      return task.kind === 'causal-lm' ? out.slice((t - 1) * dims.vocabSize) : out;
    },
  };
}

/** The TensorFlow.js model, with adapter `params`. */
export function onTfjs(model: Model, params: Params = new Map()): Decoder {
  return {
    task: model.task,
    maxPositions: model.dims.maxPositions,
    async logits(context) {
      const out = tf.tidy(() => {
        const batch = { ids: tf.tensor2d([context], undefined, 'int32'), mask: tf.ones([1, context.length]) as tf.Tensor2D };
        const dual = model.forward(batch, params, null);
        const last = model.task.kind === 'causal-lm' ? tf.slice(dual.p, [0, context.length - 1, 0], [1, 1, -1]) : dual.p;
        disposeDual(dual);
        return last.reshape([-1]);
      });
      const row = out.dataSync() as Float32Array;
      out.dispose();
      return row;
    },
  };
}

export async function generate(model: Decoder, prompt: number[], opts: GenerateOptions): Promise<number[]> {
  if (model.task.kind !== 'causal-lm') throw new Error('generate needs a causal language model');
  if (prompt.length === 0) throw new Error('the prompt has no tokens');
  const ids = prompt.slice();
  const rng = new Rng(opts.seed ?? 0);
  const temperature = opts.temperature ?? 0;
  for (let step = 0; step < opts.maxNewTokens; step++) {
    const row = await model.logits(ids.slice(-model.maxPositions));
    const next = temperature > 0 ? sample(row, temperature, opts.topK ?? 0, rng) : argmax(row);
    ids.push(next);
    opts.onToken?.(next);
    if (opts.stopId != null && next === opts.stopId) break;
  }
  return ids.slice(prompt.length);
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
