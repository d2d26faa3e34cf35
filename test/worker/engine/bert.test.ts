// BERT and RoBERTa on ONNX Runtime against the same graphs run by TensorFlow.js ops (the Model that
// test/worker/models/bert.test.ts checks against a float64 Hugging Face-style oracle, and its
// tangent against tf.grads and finite differences), which checks the ONNX lowering and ORT's
// kernels, and against the engine's reverse mode.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { initTrainable } from '../../../src/worker/models/lora.ts';
import { plainParams } from '../../../src/worker/models/model.ts';
import { makeBatch } from '../../../src/worker/data/batches.ts';
import { forwardGradient } from '../../../src/worker/train/gradients.ts';
import { directions } from '../../../src/shared/spry/directions.ts';
import { bert } from '../../../src/worker/engine/models/bert.ts';
import { Runner, hostBatch, hostValues } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { relErr } from './harness.ts';

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

for (const [type, bare] of [['bert', false], ['roberta', false], ['bert', true]] as const)
  describe(`${type}${bare ? ' (a bare BertModel checkpoint)' : ''} on ONNX Runtime against the TensorFlow.js encoder (random weights, right padding)`, () => {
    it('logits, loss and jvp agree with tfjs; jvp equals reverse mode ∇f·v', async () => {
      const checkpoint = randomCheckpoint({ family: 'bert', layers: 2, hidden: 32, heads: 4, vocab: 60, positions: 40 }, 4);
      const config = checkpoint.config;
      // a bare BertModel stores its tensors without the "bert." prefix
      const tensors = bare ? new Map([...checkpoint.tensors].map(([k, v]) => [k.replace(/^bert\./, ''), v])) : checkpoint.tensors;
      if (type === 'roberta') Object.assign(config, { model_type: 'roberta', pad_token_id: 1 });
      const task = { kind: 'classification', numLabels: 2 } as const;
      const lora = { r: 2, alpha: 4, dropout: 0, targetModules: ['query', 'value', 'intermediate.dense'] };
      const tfModel = createModel(config, tensors, task, lora);
      const runner = new Runner(bert(config, tensors, task, { ...tfModel.lora }), `random-${type}`);
      expect(runner.model.trainable).toEqual(tfModel.trainable);
      const values = initTrainable(tfModel.trainable, 2);
      for (const s of tfModel.trainable) if (s.name.endsWith('lora_B.weight') || s.name === 'classifier.bias') values.set(s.name, tf.randomNormal(s.shape, 0, 0.3, 'float32', 9));
      const batch = makeBatch([[0, 9, 27, 4, 11, 2], [0, 30, 2]], [1, 0], 1);
      const logits = tf.tidy(() => tfModel.forward(batch, plainParams(values), null).p.dataSync());
      expect(relErr(await runner.logits(hostBatch(batch), hostValues(values)), logits)).toBeLessThan(1e-5);
      const names = tfModel.trainable.filter((s) => s.name.includes('layer.1.') || s.name.startsWith('classifier')).map((s) => s.name);
      const k = 3;
      const ref = forwardGradient(tfModel, batch, values, names, k, `${type}-test`, null);
      const mine = await runner.forwardGradient(hostBatch(batch), hostValues(values), names, k, `${type}-test`, null);
      expect(Math.abs(mine.loss - ref.loss) / ref.loss).toBeLessThan(1e-5);
      expect(relErr(mine.jvp, ref.jvp!)).toBeLessThan(1e-4);
      const rev = await runner.backprop(hostBatch(batch), hostValues(values), names, null);
      const dots = Array.from({ length: k }, (_, j) =>
        names.reduce((acc, n) => {
          const v = directions(`${type}-test`, tfModel.trainable, n, k);
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
