// A client's private examples, tokenized once, and the mini-batches cut from them.
import type { Batch } from '../models/model.ts';
import { makeBatch } from '../data/batches.ts';

/** Token ids per example, labels (-1 for language modelling), and the id used for padding. */
export interface EncodedSet {
  ids: number[][];
  labels: number[];
  pad: number;
}

/** The examples at `indices`, truncated to maxLength and right-padded; mask 1 on real tokens. */
export function batchOf(data: EncodedSet, indices: number[], maxLength: number): Batch {
  const labels = indices.map((i) => data.labels[i]);
  return makeBatch(indices.map((i) => data.ids[i].slice(0, maxLength)), labels.every((l) => l >= 0) ? labels : null, data.pad);
}
