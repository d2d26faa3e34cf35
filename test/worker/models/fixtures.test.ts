// The loaders must reproduce Hugging Face transformers' logits on real checkpoints, and greedy
// decoding on ONNX Runtime (and on TensorFlow.js, the fallback) the published continuations.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { readSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import type { Model, TensorMap } from '../../../src/worker/models/model.ts';
import { type Decoder, generate, onEngine, onTfjs } from '../../../src/worker/generate.ts';
import { runnerFor } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';

const LM = { kind: 'causal-lm' } as const;
const NO_LORA = { r: 1, alpha: 1, dropout: 0, targetModules: [] };

/** The model run by TensorFlow.js ops, and the same graphs on ONNX Runtime. */
async function load(dir: string): Promise<{ model: Model; engine: Decoder }> {
  const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  const { tensors } = await readSafetensorsFile(join(dir, 'model.safetensors'));
  const model = createModel(config, tensors as TensorMap, LM, NO_LORA);
  return { model, engine: onEngine(runnerFor(model, `fixture:${dir}`)) };
}

function logitsOf(model: Model, ids: number[]): Float32Array {
  return tf.tidy(() => {
    const out = model.forward({ ids: tf.tensor2d([ids], undefined, 'int32'), mask: tf.ones([1, ids.length]) as tf.Tensor2D }, new Map(), null);
    return out.p;
  }).dataSync() as Float32Array;
}

function maxAbsDiff(a: Float32Array, rows: number[][]): number {
  const v = rows[0].length;
  let worst = 0;
  rows.forEach((row, i) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(a[i * v + j] - x)))));
  return worst;
}

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

// HF float32 logits: an independent float32 implementation agrees to ~3e-5 (fixtures/README.md), so 1e-4.
const ATOL = 1e-4;

describe.skipIf(!HAS_FIXTURES)('GPT-2 (gpt2-char-selftrained) matches Hugging Face transformers', () => {
  const dir = join(FIXTURES, 'gpt2-char-selftrained');
  const ref = HAS_FIXTURES ? JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) : null;
  let model: Model;
  let engine: Decoder;
  beforeAll(async () => {
    ({ model, engine } = await load(dir));
  });

  it('teacher-forced logits at all 128 positions', () => {
    const { input_ids, logits } = ref.teacher_forced;
    expect(maxAbsDiff(logitsOf(model, input_ids), logits)).toBeLessThan(ATOL);
  });

  it('greedy continuation equals HF generate(), on ONNX Runtime and on TensorFlow.js', async () => {
    const { prompt_ids, output_ids, max_new_tokens } = ref.greedy;
    for (const decoder of [engine, onTfjs(model)]) {
      const out = await generate(decoder, prompt_ids, { maxNewTokens: max_new_tokens });
      expect([...prompt_ids, ...out]).toEqual(output_ids);
    }
  });
});

describe.skipIf(!HAS_FIXTURES)('Llama (stories260K) matches Hugging Face transformers and llama2.c', () => {
  const dir = join(FIXTURES, 'stories260K');
  const ref = HAS_FIXTURES ? JSON.parse(readFileSync(join(dir, 'reference_logits_hf.json'), 'utf8')) : null;
  const expected = HAS_FIXTURES ? JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) : null;
  let model: Model;
  let engine: Decoder;
  beforeAll(async () => {
    ({ model, engine } = await load(join(dir, 'hf')));
  });

  it('logits of the "Lily" prompt at every position', () => {
    const { input_ids, logits } = ref.lily;
    expect(maxAbsDiff(logitsOf(model, input_ids), logits)).toBeLessThan(ATOL);
  });

  it('all 257 positions of the golden sequence against the float32 golden file', () => {
    const ids: number[] = ref.golden_sequence.input_ids;
    const golden = new Float32Array(readFileSync(join(dir, 'logits_golden_f32le.bin')).buffer.slice(0));
    const ours = logitsOf(model, ids);
    expect(ours.length).toBe(golden.length);
    let worst = 0;
    for (let i = 0; i < ours.length; i++) worst = Math.max(worst, Math.abs(ours[i] - golden[i]));
    expect(worst).toBeLessThan(ATOL);
  });

  it("greedy text from BOS equals llama2.c's published 200-token output, on ONNX Runtime", async () => {
    const want: number[] = expected.test_all_py.output_ids;
    const got = await generate(engine, [1], { maxNewTokens: want.length });
    expect(got).toEqual(want);
  });
});
