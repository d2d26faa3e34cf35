// The feeds of a graph run by TensorFlow.js ops (src/worker/engine/tfjs.ts) from host values, as
// the runner feeds ONNX Runtime.
import type * as tf from '@tensorflow/tfjs';
import { type HostBatch, type IrModel, hostInputs } from '../../../src/worker/engine/model.ts';
import { hostTensor } from '../../../src/worker/engine/tfjs.ts';

/** The graph inputs of a batch, the adapter and (with a seed) the LoRA dropout masks, as the runner feeds them. */
export function feedsOf(model: IrModel, batch: HostBatch, values: Map<string, Float32Array>, dropout: { sites: { name: string; features: number }[]; seed: number } | null = null): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  for (const [k, f] of Object.entries(hostInputs(model, batch, dropout))) out[k] = hostTensor(f.data, f.shape);
  for (const s of model.trainable) out[s.name] = hostTensor(values.get(s.name)!, s.shape);
  return out;
}
