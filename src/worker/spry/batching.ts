// A client's private examples, tokenized once, and the mini-batches cut from them.
import * as tf from '@tensorflow/tfjs';
import type { Batch } from '../models/model.ts';

/** Token ids per example, labels (-1 for language modelling), and the id used for padding. */
export interface EncodedSet {
  ids: number[][];
  labels: number[];
  pad: number;
}

/** The examples at `indices`, truncated to maxLength and right-padded; mask 1 on real tokens. */
export function batchOf(data: EncodedSet, indices: number[], maxLength: number): Batch {
  const rows = indices.map((i) => data.ids[i].slice(0, maxLength));
  const len = Math.max(1, ...rows.map((r) => r.length));
  const ids = new Int32Array(rows.length * len).fill(data.pad);
  const mask = new Float32Array(rows.length * len);
  rows.forEach((r, b) => r.forEach((id, t) => {
    ids[b * len + t] = id;
    mask[b * len + t] = 1;
  }));
  const labels = indices.map((i) => data.labels[i]);
  return {
    ids: tf.tensor2d(ids, [rows.length, len], 'int32'),
    mask: tf.tensor2d(mask, [rows.length, len]),
    labels: labels.every((l) => l >= 0) ? tf.tensor1d(labels, 'int32') : undefined,
  };
}
