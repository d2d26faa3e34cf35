// The embedded model as Hugging Face tools read it: a pad token declared where transformers looks
// (tokenizer_config.json, special_tokens_map.json, config.json's pad_token_id), float32 declared in
// config.json (FedForward computes in float32; transformers would otherwise load it in half
// precision), and FedForward still loads it and pads with that token.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { EMBEDDED_MODEL_DIR } from '../../../src/worker/models/embedded.ts';
import { loadModel } from '../../../src/worker/models/index.ts';

const json = (name: string) => JSON.parse(readFileSync(path.join(EMBEDDED_MODEL_DIR, name), 'utf8')) as Record<string, unknown>;

beforeAll(async () => {
  await initBackend('wasm');
});

describe('the embedded model for Hugging Face', () => {
  it('declares its pad token and float32', () => {
    const config = json('config.json');
    expect(config).toMatchObject({ torch_dtype: 'float32', dtype: 'float32', pad_token_id: 8191, eos_token_id: 8191 });
    expect(json('tokenizer_config.json')).toMatchObject({ pad_token: '<|endoftext|>', eos_token: '<|endoftext|>' });
    expect(json('special_tokens_map.json')).toEqual({ bos_token: '<|endoftext|>', eos_token: '<|endoftext|>', unk_token: '<|endoftext|>', pad_token: '<|endoftext|>' });
  });

  it('loads, pads with that token, and a right-padded row gives the logits of the row alone', async () => {
    const { model, tokenizer } = await loadModel(EMBEDDED_MODEL_DIR, { kind: 'causal-lm' }, { targetModules: [] });
    try {
      expect(tokenizer!.padId).toBe(8191);
      const short = tokenizer!.encode('The sea was calm.');
      const long = tokenizer!.encode('It was the best of times, it was the worst of times.');
      const padded = [...short, ...Array(long.length - short.length).fill(tokenizer!.padId)];
      const mask = [short.map(() => 1).concat(Array(long.length - short.length).fill(0)), long.map(() => 1)];
      const both = tf.tidy(() => model.forward({ ids: tf.tensor2d([padded, long], undefined, 'int32'), mask: tf.tensor2d(mask) }, new Map(), null).p);
      const alone = tf.tidy(() => model.forward({ ids: tf.tensor2d([short], undefined, 'int32'), mask: tf.ones([1, short.length]) as tf.Tensor2D }, new Map(), null).p);
      const v = model.dims.vocabSize;
      const a = both.dataSync().subarray(0, short.length * v);
      const b = alone.dataSync();
      let worst = 0;
      let scale = 0;
      for (let i = 0; i < b.length; i++) {
        worst = Math.max(worst, Math.abs(a[i] - b[i]));
        scale = Math.max(scale, Math.abs(b[i]));
      }
      expect(worst).toBeLessThan(1e-5 * scale);
      tf.dispose([both, alone]);
    } finally {
      model.dispose();
    }
  });
});
