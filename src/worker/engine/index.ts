// The engine's entry points: which families run on ONNX Runtime, and the bridge from the
// TensorFlow.js side's types (batches and adapter values as tensors) to host arrays.
import type * as tf from '@tensorflow/tfjs';
import type { Batch, Model, Task, TensorMap } from '../models/model.ts';
import type { LoraConfig } from '../models/lora.ts';
import { familyOf } from '../models/index.ts';
import type { HostBatch, IrModel } from './model.ts';
import { gpt2 } from './models/gpt2.ts';
import { llama } from './models/llama.ts';
import { bert } from './models/bert.ts';
import { Runner, type HostValues } from './runner.ts';
import { initEngine } from './session.ts';

const FAMILIES = { gpt2, llama, bert } as Record<string, typeof gpt2 | undefined>;

/** The family written against the IR, or null when it still runs on TensorFlow.js only. */
export function irModel(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): IrModel | null {
  const make = FAMILIES[familyOf(config)];
  return make ? make(config, tensors, task, lora) : null;
}

/**
 * A runner with the same task and adapter as a loaded TensorFlow.js model, over the checkpoint's
 * tensors as read from disk (Hugging Face layout: the TensorFlow.js families keep some weights
 * transposed, so their copies are not the checkpoint's).
 */
export function runnerFor(model: Model, config: Record<string, unknown>, tensors: TensorMap, key: string): Runner | null {
  const ir = irModel(config, tensors, model.task, model.lora);
  return ir && new Runner(ir, key);
}

/**
 * The runner for a loaded model and what it runs on (the line printed beside the backend), or no
 * runner, with the reason where there is one, when the family is not ported, FEDFORWARD_ENGINE=tfjs
 * asks for TensorFlow.js, or no execution provider starts: TensorFlow.js then runs it, as before.
 */
export async function startRunner(model: Model, config: Record<string, unknown>, tensors: TensorMap, key: string): Promise<{ runner: Runner | null; detail: string | null }> {
  if (process.env.FEDFORWARD_ENGINE === 'tfjs') return { runner: null, detail: null };
  try {
    const info = await initEngine();
    const runner = runnerFor(model, config, tensors, key);
    return { runner, detail: runner && info.detail };
  } catch (e) {
    return { runner: null, detail: `ONNX Runtime unavailable (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})` };
  }
}

export function hostBatch(batch: Batch): HostBatch {
  const [b, t] = batch.ids.shape;
  return { b, t, ids: batch.ids.dataSync() as Int32Array, mask: batch.mask.dataSync() as Float32Array, labels: batch.labels ? (batch.labels.dataSync() as Int32Array) : null };
}

export function hostValues(values: Map<string, tf.Tensor>): HostValues {
  return new Map([...values].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

export { Runner };
