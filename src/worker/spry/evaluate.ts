// Spry step 6, evaluation of the global adapter on clients' local test splits ("generalized accuracy").
import * as tf from '@tensorflow/tfjs';
import { type Model, lossOf, plainParams } from '../models/model.ts';
import { disposeDual } from '../fwd/dual.ts';
import { crossEntropy } from '../fwd/blocks.ts';
import { type EncodedSet, batchOf } from './batching.ts';
import type { Weights } from '../../shared/units.ts';
import type { EvalCounts } from '../../shared/worker_protocol.ts';

export type EvalResult = EvalCounts;

export function evaluate(model: Model, globals: Weights, data: EncodedSet, batchSize: number, maxLength: number): EvalResult {
  const values = new Map(model.trainable.map((s) => [s.name, tf.tensor(globals.get(s.name)!, s.shape, 'float32')]));
  const params = plainParams(values);
  let loss = 0;
  let correct = 0;
  const total = data.ids.length;
  const classes = model.task.kind === 'classification' ? model.task.numLabels : 0;
  const predicted = new Array<number>(classes).fill(0);
  const actual = new Array<number>(classes).fill(0);
  try {
    for (let start = 0; start < total; start += batchSize) {
      const idx = Array.from({ length: Math.min(batchSize, total - start) }, (_, i) => start + i);
      const batch = batchOf(data, idx, maxLength);
      if (model.task.kind === 'classification') {
        // one forward pass gives both the loss and the predictions
        const logits = model.forward(batch, params, null);
        const [l, pred] = tf.tidy(() => [crossEntropy(logits, batch.labels!, tf.onesLike(batch.labels!)).p.dataSync()[0], tf.argMax(logits.p, -1).dataSync()]);
        disposeDual(logits);
        loss += (l as number) * idx.length;
        idx.forEach((ex, j) => {
          const p = (pred as Int32Array)[j];
          predicted[p]++;
          actual[data.labels[ex]]++;
          if (p === data.labels[ex]) correct++;
        });
      } else {
        const l = lossOf(model, batch, params, null);
        loss += l.p.dataSync()[0] * idx.length;
        disposeDual(l);
      }
      tf.dispose(Object.values(batch));
    }
  } finally {
    tf.dispose([...values.values()]);
  }
  const result: EvalResult = { loss: total ? loss / total : 0, correct, total };
  return classes > 0 ? { ...result, predicted, actual } : result;
}
