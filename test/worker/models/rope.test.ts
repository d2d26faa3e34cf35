// RoPE settings of Llama configs in both transformers layouts, with the scalings real checkpoints use.
// Oracle: rope/rope.json, numpy after transformers' formulas (rope/make_rope.py).
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path, { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { readSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { ropeInvFreq } from '../../../src/worker/models/rope.ts';
import type { TensorMap } from '../../../src/worker/models/model.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';

const ORACLE = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'rope', 'rope.json'), 'utf8')) as {
  cases: { name: string; config: Record<string, unknown>; head_dim: number; inv_freq: number[] }[];
};

describe('RoPE inverse frequencies match transformers', () => {
  it.each(ORACLE.cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const ours = ropeInvFreq(c.config, c.head_dim);
    expect(ours.length).toBe(c.inv_freq.length);
    c.inv_freq.forEach((want, i) => expect(Math.abs(ours[i] - want) / want).toBeLessThan(1e-12));
  });

  it('refuses other rope types and broken settings in one line', () => {
    const base = { model_type: 'llama', rope_theta: 10000 };
    expect(() => ropeInvFreq({ ...base, rope_scaling: { rope_type: 'yarn', factor: 4 } }, 8)).toThrow(/^config\.json: rope_type "yarn" is not supported \(supported: default, linear, llama3\)$/);
    expect(() => ropeInvFreq({ rope_parameters: { type: 'dynamic', factor: 2, rope_theta: 1e4 } }, 8)).toThrow(/rope_type "dynamic" is not supported/);
    expect(() => ropeInvFreq({ ...base, rope_parameters: { rope_type: 'linear' } }, 8)).toThrow(/^config\.json: RoPE factor must be a positive number, got null$/);
    expect(() => ropeInvFreq({ rope_parameters: { rope_type: 'llama3', rope_theta: 5e5, factor: 8, low_freq_factor: 4, high_freq_factor: 1, original_max_position_embeddings: 8192 } }, 8)).toThrow(/high_freq_factor 1 must exceed low_freq_factor 4/);
    expect(() => ropeInvFreq({ ...base, partial_rotary_factor: 0.5 }, 8)).toThrow(/partial_rotary_factor 0.5 is not supported/);
  });
});

describe.skipIf(!HAS_FIXTURES)('stories260K with its RoPE settings in either layout', () => {
  const dir = join(FIXTURES, 'stories260K');
  const ref = HAS_FIXTURES ? JSON.parse(readFileSync(join(dir, 'reference_logits_hf.json'), 'utf8')) : null;
  let config: Record<string, unknown>;
  let tensors: TensorMap;
  beforeAll(async () => {
    await initBackend('wasm');
    config = JSON.parse(readFileSync(join(dir, 'hf', 'config.json'), 'utf8'));
    tensors = (await readSafetensorsFile(join(dir, 'hf', 'model.safetensors'))).tensors as TensorMap;
  });

  /** the worst |ours − HF| over the "Lily" prompt's logits, with config.json edited by `edit` */
  function worst(edit: (c: Record<string, unknown>) => Record<string, unknown>): number {
    const model = createModel(edit({ ...config }), tensors, { kind: 'causal-lm' }, { r: 1, alpha: 1, dropout: 0, targetModules: [] });
    const { input_ids, logits } = ref.lily as { input_ids: number[]; logits: number[][] };
    const out = tf.tidy(() => model.forward({ ids: tf.tensor2d([input_ids], undefined, 'int32'), mask: tf.ones([1, input_ids.length]) as tf.Tensor2D }, new Map(), null).p);
    const ours = out.dataSync();
    out.dispose();
    model.dispose();
    const v = logits[0].length;
    let w = 0;
    logits.forEach((row, i) => row.forEach((x, j) => (w = Math.max(w, Math.abs(ours[i * v + j] - x)))));
    return w;
  }

  it('rope_parameters {rope_type: default, rope_theta} in place of rope_theta gives the reference logits', () => {
    expect(worst((c) => {
      const theta = c.rope_theta;
      delete c.rope_theta;
      delete c.rope_scaling;
      return { ...c, rope_parameters: { rope_type: 'default', rope_theta: theta } };
    })).toBeLessThan(1e-4);
  });

  it('a rope_theta under rope_parameters is used, not a default: another theta moves the logits', () => {
    expect(worst((c) => ({ ...c, rope_theta: undefined, rope_parameters: { rope_type: 'default', rope_theta: 500 } }))).toBeGreaterThan(1e-2);
  });

  it('linear scaling by 1 is the reference, by 2 is not', () => {
    expect(worst((c) => ({ ...c, rope_parameters: { rope_type: 'linear', factor: 1, rope_theta: 10000 } }))).toBeLessThan(1e-4);
    expect(worst((c) => ({ ...c, rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 10000 } }))).toBeGreaterThan(1e-2);
  });
});
