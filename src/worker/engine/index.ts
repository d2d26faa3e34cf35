// The engine's entry points: a model's runner on ONNX Runtime, and the bridge from the
// TensorFlow.js side's types (batches and adapter values as tensors) to host arrays.
import type * as tf from '@tensorflow/tfjs';
import type { Model } from '../models/model.ts';
import { irModel } from '../models/index.ts';
import { hostBatch } from './model.ts';
import { Runner, type HostValues } from './runner.ts';
import { initEngine } from './session.ts';

/** A runner for a loaded model: its own graph on ONNX Runtime. `key` identifies the base weights. */
export function runnerFor(model: Model, key: string): Runner {
  return new Runner(model.ir, key);
}

/**
 * The runner for a loaded model and what it runs on (the line printed beside the backend), or no
 * runner, with the reason where there is one, when FEDFORWARD_ENGINE=tfjs asks for TensorFlow.js or
 * no execution provider starts: TensorFlow.js ops then run the same graphs (models/ir_model.ts).
 */
export async function startRunner(model: Model, key: string): Promise<{ runner: Runner | null; detail: string | null }> {
  if (process.env.FEDFORWARD_ENGINE === 'tfjs') return { runner: null, detail: null };
  try {
    const info = await initEngine();
    const runner = runnerFor(model, key);
    return { runner, detail: info.detail };
  } catch (e) {
    return { runner: null, detail: `ONNX Runtime unavailable (${(e instanceof Error ? e.message : String(e)).split('\n')[0]})` };
  }
}

export function hostValues(values: Map<string, tf.Tensor>): HostValues {
  return new Map([...values].map(([n, v]) => [n, v.dataSync() as Float32Array]));
}

export { Runner, hostBatch, irModel };
