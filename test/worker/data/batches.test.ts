import { describe, it, expect, beforeAll } from 'vitest';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';
import { initBackend } from '../../../src/worker/backend.ts';
import { Tokenizer } from '../../../src/worker/io/tokenizer.ts';
import { Rng } from '../../../src/shared/spry/rng.ts';
import { batchesOf, encodeExamples, labelBalance, makeBatch } from '../../../src/worker/data/batches.ts';
import type { Example } from '../../../src/worker/data/examples.ts';

beforeAll(async () => {
  await initBackend('cpu');
});

describe('makeBatch', () => {
  it('pads on the right, mask 1 on tokens and 0 on padding, int32 labels', async () => {
    const b = makeBatch([[5, 6, 7], [8], [9, 10]], [1, 0, 1], 0);
    expect(b.ids.shape).toEqual([3, 3]);
    expect(b.ids.dtype).toBe('int32');
    expect(b.mask.dtype).toBe('float32');
    expect(await b.ids.array()).toEqual([[5, 6, 7], [8, 0, 0], [9, 10, 0]]);
    expect(await b.mask.array()).toEqual([[1, 1, 1], [1, 0, 0], [1, 1, 0]]);
    expect(b.labels!.dtype).toBe('int32');
    expect(await b.labels!.array()).toEqual([1, 0, 1]);
    tf.dispose([b.ids, b.mask, b.labels!]);
  });

  it('fixed length, pad id, no labels for LM; errors', async () => {
    const b = makeBatch([[1, 2]], null, 99, { length: 4 });
    expect(await b.ids.array()).toEqual([[1, 2, 99, 99]]);
    expect(await b.mask.array()).toEqual([[1, 1, 0, 0]]);
    expect(b.labels).toBeUndefined();
    tf.dispose([b.ids, b.mask]);
    expect(() => makeBatch([[1, 2, 3]], null, 0, { length: 2 })).toThrow(/3 tokens, more than the batch length 2/);
    expect(() => makeBatch([[1], []], null, 0)).toThrow(/row 1 has no tokens/);
    expect(() => makeBatch([[1]], [0, 1], 0)).toThrow(/2 labels for 1 rows/);
    expect(() => makeBatch([[1]], [-1], 0)).toThrow(/label -1/);
    expect(() => makeBatch([], null, 0)).toThrow(/at least one row/);
  });
});

describe('batchesOf / labelBalance', () => {
  it('covers every index once, shuffled by the rng, deterministic per seed', () => {
    const batches = batchesOf(10, 4, new Rng(1));
    expect(batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(batches.flat().sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(batches).toEqual(batchesOf(new Array(10), 4, new Rng(1)));
    expect(batchesOf(10, 4, new Rng(2))).not.toEqual(batches);
    expect(batchesOf(10, 4, null)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]);
    expect(batchesOf(10, 4, null, true)).toEqual([[0, 1, 2, 3], [4, 5, 6, 7]]);
  });

  it('labelBalance counts labels and gives the majority-class accuracy', () => {
    const ex: Example[] = [0, 1, 1, 2, 1].map((label) => ({ text: 'x', label }));
    expect(labelBalance(ex, 3)).toEqual({ counts: [1, 3, 1], fractions: [0.2, 0.6, 0.2], majority: 0.6 });
    expect(() => labelBalance([{ text: 'x', label: -1 }], 2)).toThrow(/label -1, outside 0..1/);
  });
});

describe.skipIf(!HAS_FIXTURES)('encodeExamples with real tokenizers', () => {
  it('gpt2-char (no special tokens): ids are the characters, truncation keeps the start', async () => {
    const tok = await Tokenizer.fromFiles(path.join(FIXTURES, 'gpt2-char-selftrained', 'tokenizer.json'));
    const ex: Example[] = [
      { text: 'Once upon a time', label: 1 },
      { text: 'Hi', label: 0 },
    ];
    const enc = encodeExamples(tok, ex, 8);
    expect(enc[0]).toHaveLength(8);
    expect(tok.decode(enc[0])).toBe('Once upo');
    expect(tok.decode(enc[1])).toBe('Hi');
    const b = makeBatch(enc, ex.map((e) => e.label), tok.padId ?? 0);
    expect(b.ids.shape).toEqual([2, 8]);
    expect(await b.mask.array()).toEqual([[1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0, 0, 0]]);
    expect((await b.ids.array())[1].slice(0, 2)).toEqual(tok.encode('Hi'));
    tf.dispose([b.ids, b.mask, b.labels!]);
  });

  it('stories260K (Llama, BOS added by the post-processor): BOS kept, the end of the text cut', async () => {
    const hf = path.join(FIXTURES, 'stories260K', 'hf');
    const tok = await Tokenizer.fromFiles(path.join(hf, 'tokenizer.json'), path.join(hf, 'tokenizer_config.json'));
    const text = 'Once upon a time there was a little girl named Lily who loved to play outside.';
    const full = tok.encode(text);
    expect(full[0]).toBe(tok.bosId);
    const [short] = encodeExamples(tok, [{ text, label: -1 }], 6);
    expect(short).toEqual(full.slice(0, 6));
    const [whole] = encodeExamples(tok, [{ text, label: -1 }], 1000);
    expect(whole).toEqual(full);
  });
});
