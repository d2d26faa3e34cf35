// Decoding with ONNX Runtime's logits: sampling (temperature, top-k) draws what TensorFlow.js's
// logits draw for the same seed, top-k 1 is greedy, and the seed alone decides the draw.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { runnerFor } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { generate, onEngine, onTfjs } from '../../../src/worker/generate.ts';

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

const SHAPE = { family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 37, positions: 12 } as const;

function decoders(task: { kind: 'causal-lm' } | { kind: 'classification'; numLabels: number }) {
  const { config, tensors } = randomCheckpoint(SHAPE, 9);
  // larger weights than randomCheckpoint's, so the next-token distribution is far from uniform
  for (const t of tensors.values()) if (t.shape.length === 2) (t.data as Float32Array).forEach((x, i, a) => (a[i] = 10 * x));
  const model = createModel(config, tensors, task, { targetModules: [] });
  return { model, engine: onEngine(runnerFor(model, `random/llama/generate/${task.kind}`)), tfjs: onTfjs(model) };
}

describe('generate on ONNX Runtime', () => {
  it('samples what TensorFlow.js samples for the same seed; top-k 1 is greedy; the seed decides', async () => {
    const { model, engine, tfjs } = decoders({ kind: 'causal-lm' });
    const prompt = [3, 17, 5];
    // 20 new tokens from a 3-token prompt: the context slides past the 12 positions
    const opts = { maxNewTokens: 20, temperature: 0.8, topK: 5, seed: 4 };
    const sampled = await generate(engine, prompt, opts);
    expect(sampled).toHaveLength(20);
    expect(await generate(tfjs, prompt, opts)).toEqual(sampled);
    expect(await generate(engine, prompt, opts)).toEqual(sampled);
    expect(await generate(engine, prompt, { ...opts, seed: 5 })).not.toEqual(sampled);
    const greedy = await generate(engine, prompt, { maxNewTokens: 20 });
    expect(greedy).not.toEqual(sampled);
    expect(await generate(engine, prompt, { ...opts, topK: 1 })).toEqual(greedy);
    expect(await generate(tfjs, prompt, { maxNewTokens: 20 })).toEqual(greedy);
    // the stop token ends the continuation where it first appears
    expect(await generate(engine, prompt, { maxNewTokens: 20, stopId: greedy[3] })).toEqual(greedy.slice(0, greedy.indexOf(greedy[3]) + 1));
    model.dispose();
  });

  it('refuses a classifier and an empty prompt in one line', async () => {
    const { model, engine } = decoders({ kind: 'classification', numLabels: 2 });
    await expect(generate(engine, [1, 2], { maxNewTokens: 1 })).rejects.toThrow(/^generate needs a causal language model$/);
    model.dispose();
    const lm = decoders({ kind: 'causal-lm' });
    await expect(generate(lm.engine, [], { maxNewTokens: 1 })).rejects.toThrow(/^the prompt has no tokens$/);
    lm.model.dispose();
  });
});
