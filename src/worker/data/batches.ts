// Examples -> token ids -> padded minibatches (the Batch every model family takes).
import * as tf from '@tensorflow/tfjs';
import type { Rng } from '../../shared/spry/rng.ts';
import type { Tokenizer } from '../io/tokenizer.ts';
import type { Batch } from '../models/model.ts';
import type { Example } from './examples.ts';

/**
 * Token ids of each example, with the special tokens the tokenizer's post-processor adds (BOS for
 * Llama, [CLS] ... [SEP] for BERT). Longer texts keep their START: the end of the text is cut, but
 * tokens the post-processor adds at the end (e.g. [SEP], EOS) are kept, so every row still ends the
 * way the model saw it in training. Decoders pool the last real token, which is then the last kept one.
 */
export function encodeExamples(tok: Tokenizer, examples: readonly Example[], maxLen: number): number[][] {
  if (!Number.isSafeInteger(maxLen) || maxLen < 1) throw new Error(`maxLen must be a positive integer, got ${maxLen}`);
  return examples.map((e, i) => {
    const full = tok.encode(e.text);
    if (full.length === 0) throw new Error(`example ${i} encodes to no tokens: ${JSON.stringify(e.text.slice(0, 60))}`);
    if (full.length <= maxLen) return full;
    const plain = tok.encode(e.text, { addSpecialTokens: false });
    const at = findRun(full, plain);
    if (at < 0) return full.slice(0, maxLen); // the post-processor rewrote the text's tokens: plain cut
    const prefix = full.slice(0, at);
    const suffix = full.slice(at + plain.length);
    const room = maxLen - prefix.length - suffix.length;
    if (room < 1) throw new Error(`maxLen ${maxLen} leaves no room for text between the tokenizer's ${prefix.length + suffix.length} special tokens`);
    return [...prefix, ...plain.slice(0, room), ...suffix];
  });
}

/** Start of `needle` as a contiguous run inside `hay`, or -1. */
function findRun(hay: number[], needle: number[]): number {
  outer: for (let s = 0; s + needle.length <= hay.length; s++) {
    for (let j = 0; j < needle.length; j++) if (hay[s + j] !== needle[j]) continue outer;
    return s;
  }
  return -1;
}

export interface MakeBatchOptions {
  /** pad every row to this length (fixed shapes avoid recompiling kernels); default: the longest row */
  length?: number;
}

/**
 * A right-padded Batch: ids [B, T] int32 (pad id after each row's tokens), mask [B, T] float32 (1 on
 * tokens, 0 on padding), labels [B] int32 when `labels` is given. The caller disposes the tensors.
 */
export function makeBatch(
  encoded: readonly (readonly number[])[],
  labels: readonly number[] | null | undefined,
  pad: number,
  opts: MakeBatchOptions = {},
): Batch {
  const b = encoded.length;
  if (b === 0) throw new Error('makeBatch needs at least one row');
  if (!Number.isSafeInteger(pad) || pad < 0) throw new Error(`pad id must be a non-negative integer, got ${pad}`);
  let longest = 0;
  for (const row of encoded) longest = Math.max(longest, row.length);
  const t = opts.length ?? longest;
  if (longest > t) throw new Error(`a row has ${longest} tokens, more than the batch length ${t}`);
  encoded.forEach((row, i) => {
    if (row.length === 0) throw new Error(`batch row ${i} has no tokens`);
  });
  const ids = new Int32Array(b * t).fill(pad);
  const mask = new Float32Array(b * t);
  encoded.forEach((row, i) => {
    ids.set(row, i * t);
    mask.fill(1, i * t, i * t + row.length);
  });
  const batch: Batch = { ids: tf.tensor2d(ids, [b, t], 'int32'), mask: tf.tensor2d(mask, [b, t], 'float32') };
  if (labels !== null && labels !== undefined) {
    if (labels.length !== b) {
      tf.dispose([batch.ids, batch.mask]);
      throw new Error(`${labels.length} labels for ${b} rows`);
    }
    const bad = labels.findIndex((l) => !Number.isSafeInteger(l) || l < 0);
    if (bad >= 0) {
      tf.dispose([batch.ids, batch.mask]);
      throw new Error(`batch row ${bad} has label ${labels[bad]}; classification labels are indices >= 0`);
    }
    batch.labels = tf.tensor1d(Int32Array.from(labels), 'int32');
  }
  return batch;
}

/**
 * Minibatches of example indices covering 0..n-1 once: shuffled by `rng` (in order when rng is
 * null, e.g. for evaluation); the last batch is smaller when batchSize does not divide n, unless
 * dropLast.
 */
export function batchesOf(examples: { length: number } | number, batchSize: number, rng: Rng | null, dropLast = false): number[][] {
  const n = typeof examples === 'number' ? examples : examples.length;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
  const order = Array.from({ length: n }, (_, i) => i);
  if (rng) rng.shuffle(order);
  const out: number[][] = [];
  for (let s = 0; s < n; s += batchSize) {
    const chunk = order.slice(s, s + batchSize);
    if (dropLast && chunk.length < batchSize) break;
    out.push(chunk);
  }
  return out;
}

export interface LabelBalance {
  counts: number[];
  /** counts / total (all 0 for no examples) */
  fractions: number[];
  /** largest fraction: the accuracy of always predicting the most common label */
  majority: number;
}

/** How the examples spread over labels 0..nLabels-1. */
export function labelBalance(examples: readonly Example[], nLabels: number): LabelBalance {
  if (!Number.isSafeInteger(nLabels) || nLabels < 1) throw new Error(`nLabels must be a positive integer, got ${nLabels}`);
  const counts = new Array<number>(nLabels).fill(0);
  examples.forEach((e, i) => {
    if (!Number.isInteger(e.label) || e.label < 0 || e.label >= nLabels) {
      throw new Error(`example ${i} has label ${e.label}, outside 0..${nLabels - 1}`);
    }
    counts[e.label]++;
  });
  const total = examples.length;
  const fractions = counts.map((c) => (total === 0 ? 0 : c / total));
  return { counts, fractions, majority: Math.max(...fractions) };
}
