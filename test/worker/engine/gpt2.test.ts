// GPT-2 on the IR and ONNX Runtime: Hugging Face's logits on a real checkpoint (an independent
// oracle); on the embedded model, the same graph run by TensorFlow.js ops (its loss computed apart,
// in fwd/dual.ts: a check of the ONNX lowering, ORT's kernels and the graph's loss, not of the
// model's definition, which the fixtures and tf.grads check); and the engine's reverse mode (∇f·v).
import * as tf from '@tensorflow/tfjs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { readSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import { loadHfDir } from '../../../src/worker/io/hf_dir.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { EMBEDDED_MODEL_DIR } from '../../../src/worker/models/embedded.ts';
import { initTrainable } from '../../../src/worker/models/lora.ts';
import { type Model, type TensorMap, lossOf, plainParams } from '../../../src/worker/models/model.ts';
import { makeBatch } from '../../../src/worker/data/batches.ts';
import { forwardGradient } from '../../../src/worker/train/gradients.ts';
import { directions } from '../../../src/shared/spry/directions.ts';
import { disposeDual } from '../../../src/worker/fwd/dual.ts';
import { gpt2 } from '../../../src/worker/engine/models/gpt2.ts';
import { Runner, hostBatch, hostValues } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';
import { relErr } from './harness.ts';

const LM = { kind: 'causal-lm' } as const;
const CLS = { kind: 'classification', numLabels: 2 } as const;
const NO_LORA = { r: 1, alpha: 1, dropout: 0, targetModules: [] };

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

describe.skipIf(!HAS_FIXTURES)('GPT-2 on ONNX Runtime (gpt2-char-selftrained) matches Hugging Face transformers', () => {
  it('teacher-forced logits at all 128 positions to 1e-4', async () => {
    const dir = join(FIXTURES, 'gpt2-char-selftrained');
    const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8'));
    const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    const { tensors } = await readSafetensorsFile(join(dir, 'model.safetensors'));
    const runner = new Runner(gpt2(config, tensors as TensorMap, LM, NO_LORA), 'fixture:gpt2-char');
    const ids: number[] = ref.teacher_forced.input_ids;
    const t = ids.length;
    const logits = await runner.logits({ b: 1, t, ids: Int32Array.from(ids), mask: new Float32Array(t).fill(1), labels: null }, new Map());
    const rows: number[][] = ref.teacher_forced.logits;
    const v = rows[0].length;
    let worst = 0;
    rows.forEach((row, i) => row.forEach((x, j) => (worst = Math.max(worst, Math.abs(logits[i * v + j] - x)))));
    expect(worst).toBeLessThan(1e-4);
  });
});

describe('GPT-2 on ONNX Runtime against the TensorFlow.js model (embedded model, LoRA on attention, 2-class head)', () => {
  let tfModel: Model;
  let runner: Runner;
  let values: Map<string, tf.Tensor>;
  const lora = { r: 2, alpha: 4, dropout: 0, targetModules: ['c_attn', 'mlp.c_proj'] };
  beforeAll(async () => {
    const hf = await loadHfDir(EMBEDDED_MODEL_DIR);
    tfModel = createModel(hf.config, hf.tensors, CLS, lora);
    runner = new Runner(gpt2(hf.config, hf.tensors, CLS, { ...tfModel.lora }), 'embedded');
    values = initTrainable(tfModel.trainable, 3);
    // B ≠ 0, so that the LoRA branches change the output
    for (const s of tfModel.trainable) if (s.name.endsWith('lora_B.weight')) values.set(s.name, tf.randomNormal(s.shape, 0, 0.05, 'float32', 5));
  });

  // two rows, the second right-padded, so the masks and last-token pooling matter
  const batchOf = () => makeBatch([[5, 17, 300, 8000, 42, 9, 77, 1000], [12, 4000, 7]], [1, 0], 0);

  it('the same trainable tensors, in the same order', () => {
    expect(runner.model.trainable).toEqual(tfModel.trainable);
  });

  it('logits and loss agree to float32 precision (relative)', async () => {
    const batch = batchOf();
    const logits = tf.tidy(() => tfModel.forward(batch, plainParams(values), null).p.dataSync());
    const mine = await runner.logits(hostBatch(batch), hostValues(values));
    expect(relErr(mine, logits)).toBeLessThan(1e-5);
    const tfLoss = tf.tidy(() => lossOf(tfModel, batch, plainParams(values), null).p.dataSync()[0]);
    expect(Math.abs((await runner.loss(hostBatch(batch), hostValues(values), null)) - tfLoss) / tfLoss).toBeLessThan(1e-5);
    tf.dispose(Object.values(batch));
  });

  it('the forward-mode jvp equals the TensorFlow.js jvp and reverse mode ∇f·v (K = 4, a middle layer and the head)', async () => {
    const batch = batchOf();
    const names = ['transformer.h.2.attn.c_attn.lora_A.weight', 'transformer.h.2.attn.c_attn.lora_B.weight', 'transformer.h.3.mlp.c_proj.lora_A.weight', 'score.weight'];
    const k = 4;
    const seed = 'engine-test/0';
    const ref = forwardGradient(tfModel, batch, values, names, k, seed, null);
    const mine = await runner.forwardGradient(hostBatch(batch), hostValues(values), names, k, seed, null);
    expect(Math.abs(mine.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(relErr(mine.jvp, ref.jvp!)).toBeLessThan(1e-4);
    // reverse mode on the engine: ∇f·v_k with the same directions
    const rev = await runner.backprop(hostBatch(batch), hostValues(values), names, null);
    const dots = Array.from({ length: k }, (_, j) =>
      names.reduce((acc, n) => {
        const v = directions(seed, tfModel.trainable, n, k);
        const g = rev.grads.get(n)!;
        let s = 0;
        for (let i = 0; i < g.length; i++) s += g[i] * v[j * g.length + i];
        return acc + s;
      }, 0),
    );
    expect(relErr(mine.jvp, dots)).toBeLessThan(1e-4);
    tf.dispose([...ref.grads.values(), ...Object.values(batch)]);
  });

  it('a jvp with no tangent before the last layer changes nothing upstream: same loss as inference', async () => {
    const batch = batchOf();
    const r = await runner.forwardGradient(hostBatch(batch), hostValues(values), ['score.weight'], 2, 'engine-test/1', null);
    expect(r.loss).toBeCloseTo(await runner.loss(hostBatch(batch), hostValues(values), null), 6);
    tf.dispose(Object.values(batch));
  });
});

describe('GPT-2 causal LM on ONNX Runtime against the TensorFlow.js model (embedded model)', () => {
  it('next-token loss over real tokens and its jvp agree to float32 precision (relative)', async () => {
    const hf = await loadHfDir(EMBEDDED_MODEL_DIR);
    const lora = { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] };
    const tfModel = createModel(hf.config, hf.tensors, LM, lora);
    const runner = new Runner(gpt2(hf.config, hf.tensors, LM, { ...tfModel.lora }), 'embedded');
    const values = initTrainable(tfModel.trainable, 4);
    for (const s of tfModel.trainable) if (s.name.endsWith('lora_B.weight')) values.set(s.name, tf.randomNormal(s.shape, 0, 0.05, 'float32', 6));
    const batch = makeBatch([[5, 17, 300, 8000, 42, 9], [12, 4000, 7]], null, 0);
    const names = ['transformer.h.1.attn.c_attn.lora_A.weight', 'transformer.h.1.attn.c_attn.lora_B.weight'];
    const ref = forwardGradient(tfModel, batch, values, names, 3, 'engine-test/lm', null);
    const mine = await runner.forwardGradient(hostBatch(batch), hostValues(values), names, 3, 'engine-test/lm', null);
    expect(Math.abs(mine.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
    expect(relErr(mine.jvp, ref.jvp!)).toBeLessThan(1e-4);
    tf.dispose([...ref.grads.values(), ...values.values(), ...Object.values(batch)]);
    tfModel.dispose();
  });
});
