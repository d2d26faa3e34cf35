// Llama on the IR and ONNX Runtime: Hugging Face's logits on stories260K (grouped-query attention,
// tied head), and the forward-mode jvp against the same graph run by TensorFlow.js ops (a check of
// the ONNX lowering and ORT's kernels) and against the engine's reverse mode.
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { loadHfDir } from '../../../src/worker/io/hf_dir.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { initTrainable } from '../../../src/worker/models/lora.ts';
import { makeBatch } from '../../../src/worker/data/batches.ts';
import { forwardGradient } from '../../../src/worker/train/gradients.ts';
import { directions } from '../../../src/shared/spry/directions.ts';
import { llama } from '../../../src/worker/engine/models/llama.ts';
import { Runner, hostBatch, hostValues } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';
import { relErr } from './harness.ts';

const LM = { kind: 'causal-lm' } as const;

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

describe.skipIf(!HAS_FIXTURES)('Llama on ONNX Runtime (stories260K) matches Hugging Face transformers', () => {
  it('logits of the "Lily" prompt at every position to 1e-4, and the golden sequence', async () => {
    const dir = join(FIXTURES, 'stories260K');
    const ref = JSON.parse(readFileSync(join(dir, 'reference_logits_hf.json'), 'utf8'));
    const hf = await loadHfDir(join(dir, 'hf'));
    const runner = new Runner(llama(hf.config, hf.tensors, LM, { r: 1, alpha: 1, dropout: 0, targetModules: [] }), 'fixture:stories260K');
    const run = (ids: number[]) => runner.logits({ b: 1, t: ids.length, ids: Int32Array.from(ids), mask: new Float32Array(ids.length).fill(1), labels: null }, new Map());
    const lily = await run(ref.lily.input_ids);
    const rows: number[][] = ref.lily.logits;
    let worst = 0;
    rows.forEach((row, i) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(lily[i * row.length + j] - x)))));
    expect(worst).toBeLessThan(1e-4);
    const golden = new Float32Array(readFileSync(join(dir, 'logits_golden_f32le.bin')).buffer.slice(0));
    const ours = await run(ref.golden_sequence.input_ids);
    expect(ours.length).toBe(golden.length);
    let g = 0;
    for (let i = 0; i < ours.length; i++) g = Math.max(g, Math.abs(ours[i] - golden[i]));
    expect(g).toBeLessThan(1e-4);
  });
});

describe('Llama on ONNX Runtime against the TensorFlow.js model (random weights, grouped-query heads)', () => {
  it('loss and jvp (classification, LoRA on q/v and the MLP) agree with tfjs and with reverse mode ∇f·v', async () => {
    const { config, tensors } = randomCheckpoint({ family: 'llama', layers: 2, hidden: 32, heads: 4, kvHeads: 2, vocab: 50, positions: 32 }, 3);
    const task = { kind: 'classification', numLabels: 3 } as const;
    const lora = { r: 2, alpha: 2, dropout: 0, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
    const tfModel = createModel(config, tensors, task, lora);
    const runner = new Runner(llama(config, tensors, task, { ...tfModel.lora }), 'random-llama');
    expect(runner.model.trainable).toEqual(tfModel.trainable);
    const values = initTrainable(tfModel.trainable, 2);
    for (const s of tfModel.trainable) if (s.name.endsWith('lora_B.weight')) values.set(s.name, tf.randomNormal(s.shape, 0, 0.3, 'float32', 8));
    const batch = makeBatch([[3, 9, 27, 4, 11, 49], [7, 2, 30]], [2, 0], 0);
    const names = tfModel.trainable.filter((s) => s.name.includes('layers.1.') || s.name === 'score.weight').map((s) => s.name);
    const k = 3;
    const ref = forwardGradient(tfModel, batch, values, names, k, 'llama-test', null);
    const mine = await runner.forwardGradient(hostBatch(batch), hostValues(values), names, k, 'llama-test', null);
    expect(Math.abs(mine.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(relErr(mine.jvp, ref.jvp!)).toBeLessThan(1e-4);
    const rev = await runner.backprop(hostBatch(batch), hostValues(values), names, null);
    const dots = Array.from({ length: k }, (_, j) =>
      names.reduce((acc, n) => {
        const v = directions('llama-test', tfModel.trainable, n, k);
        const g = rev.grads.get(n)!;
        let s = 0;
        for (let i = 0; i < g.length; i++) s += g[i] * v[j * g.length + i];
        return acc + s;
      }, 0),
    );
    expect(relErr(mine.jvp, dots)).toBeLessThan(1e-4);
    tf.dispose([...ref.grads.values(), ...values.values(), ...Object.values(batch)]);
    tfModel.dispose();
  });
});
