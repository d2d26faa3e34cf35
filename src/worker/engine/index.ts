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

export function hostBatch(batch: Batch): HostBatch {
  const [b, t] = batch.ids.shape;
  return { b, t, ids: batch.ids.dataSync() as Int32Array, mask: batch.mask.dataSync() as Float32Array, labels: batch.labels ? (batch.labels.dataSync() as Int32Array) : null };
}

export function hostValues(values: Map<string, tf.Tensor>): HostValues {
  return new Map([...values].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

export { Runner };
