// Spry step 6, evaluation of the global adapter on clients' local test splits ("generalized accuracy").
// With a runner it runs on ONNX Runtime (inference sessions, no tangents), else on TensorFlow.js.
import * as tf from '@tensorflow/tfjs';
import { type Batch, type Model, lossOf, plainParams } from '../models/model.ts';
import type { Params } from '../models/lora.ts';
import { crossEntropy, disposeDual } from '../fwd/dual.ts';
import { type EncodedSet, batchOf } from './batching.ts';
import { type Runner, hostBatch } from '../engine/index.ts';
import { argmax } from '../generate.ts';
import type { Weights } from '../../shared/units.ts';
import type { EvalCounts } from '../../shared/worker_protocol.ts';

export type EvalResult = EvalCounts;

/** A batch's mean loss and, for classification, the class predicted for each row. */
type Scorer = (batch: Batch) => Promise<{ loss: number; predicted: ArrayLike<number> | null }>;

export async function evaluate(model: Model, globals: Weights, data: EncodedSet, batchSize: number, maxLength: number, runner?: Runner | null): Promise<EvalResult> {
  const classes = model.task.kind === 'classification' ? model.task.numLabels : 0;
  if (runner) return evaluateWith(onEngine(runner, globals, classes), data, batchSize, maxLength, classes);
  const values = new Map(model.trainable.map((s) => [s.name, tf.tensor(globals.get(s.name)!, s.shape, 'float32')]));
  try {
    return await evaluateWith(onTfjs(model, plainParams(values), classes), data, batchSize, maxLength, classes);
  } finally {
    tf.dispose([...values.values()]);
  }
}

async function evaluateWith(score: Scorer, data: EncodedSet, batchSize: number, maxLength: number, classes: number): Promise<EvalResult> {
  let loss = 0;
  let correct = 0;
  const total = data.ids.length;
  const predicted = new Array<number>(classes).fill(0);
  const actual = new Array<number>(classes).fill(0);
  for (let start = 0; start < total; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, total - start) }, (_, i) => start + i);
    const batch = batchOf(data, idx, maxLength);
    try {
      const s = await score(batch);
      loss += s.loss * idx.length;
      if (s.predicted)
        idx.forEach((ex, j) => {
          const p = s.predicted![j];
          predicted[p]++;
          actual[data.labels[ex]]++;
          if (p === data.labels[ex]) correct++;
        });
    } finally {
      tf.dispose(Object.values(batch));
    }
  }
  const result: EvalResult = { loss: total ? loss / total : 0, correct, total };
  return classes > 0 ? { ...result, predicted, actual } : result;
}

function onEngine(runner: Runner, globals: Weights, classes: number): Scorer {
  return async (batch) => {
    const host = hostBatch(batch);
    if (classes === 0) return { loss: await runner.loss(host, globals, null), predicted: null };
    // one inference pass gives both the loss and the predictions
    const { loss, logits } = await runner.lossAndLogits(host, globals);
    return { loss, predicted: Array.from({ length: host.b }, (_, i) => argmax(logits.subarray(i * classes, (i + 1) * classes))) };
  };
}

function onTfjs(model: Model, params: Params, classes: number): Scorer {
  return async (batch) => {
    if (classes === 0) {
      const l = lossOf(model, batch, params, null);
      const loss = l.p.dataSync()[0];
      disposeDual(l);
      return { loss, predicted: null };
    }
    const logits = model.forward(batch, params, null);
    const [loss, predicted] = tf.tidy(() => [crossEntropy(logits, batch.labels!, tf.onesLike(batch.labels!)).p.dataSync()[0], tf.argMax(logits.p, -1).dataSync()]);
    disposeDual(logits);
    return { loss: loss as number, predicted: predicted as Int32Array };
  };
}
