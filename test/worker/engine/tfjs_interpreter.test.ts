// The engine's graphs run by TensorFlow.js ops (src/worker/engine/tfjs.ts) give what ONNX Runtime
// gives for every family: logits and loss (with LoRA dropout, the same masks), tf.grads through the
// whole model (TensorFlow.js's own gradients of its own kernels, independent of the IR's rules) =
// the engine's reverse mode, and the forward-mode graph's jvp. (The interpreted families against
// Hugging Face's logits: test/worker/models/fixtures.test.ts.)
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { type RandomShape, randomCheckpoint } from '../../../src/worker/models/random.ts';
import { Runner, irModel } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import type { HostBatch } from '../../../src/worker/engine/model.ts';
import { jvpGraph, tangentName } from '../../../src/worker/engine/jvp.ts';
import { directions } from '../../../src/shared/spry/directions.ts';
import { globalsOf } from '../../main/spry/per_iteration_setup.ts';
import { relErr } from './harness.ts';
import { constants, interpret } from '../../../src/worker/engine/tfjs.ts';
import { feedsOf } from './tfjs_interpreter.ts';

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

const BATCH: HostBatch = { b: 2, t: 6, ids: Int32Array.from([3, 9, 27, 4, 11, 7, 2, 20, 5, 1, 0, 0]), mask: Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0]), labels: Int32Array.from([1, 0]) };

const FAMILIES: [RandomShape, string[]][] = [
  [{ family: 'gpt2', layers: 2, hidden: 16, heads: 2, vocab: 29, positions: 16 }, ['c_attn', 'c_fc']],
  [{ family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 29, positions: 16 }, ['q_proj', 'v_proj', 'down_proj']],
  [{ family: 'bert', layers: 2, hidden: 16, heads: 2, intermediate: 24, vocab: 29, positions: 16 }, ['query', 'value']],
];

describe('the engine graphs run by TensorFlow.js ops = ONNX Runtime', () => {
  for (const [shape, targetModules] of FAMILIES)
    it(`${shape.family}: logits, loss with dropout, tf.grads = reverse mode, jvp`, async () => {
      const { config, tensors } = randomCheckpoint(shape, 3);
      const task = { kind: 'classification', numLabels: 3 } as const;
      const model = irModel(config, tensors, task, { r: 2, alpha: 4, dropout: 0.2, targetModules });
      const runner = new Runner(model, `random/${shape.family}/tfjs-interpreter`);
      const values = globalsOf(model.trainable);
      const names = model.trainable.map((s) => s.name);
      const t = model.trace(false);
      const consts = constants(t.graph);
      const feeds = feedsOf(model, BATCH, values);

      const out = interpret(t.graph, consts, { logits: t.logits, loss: t.loss }, feeds);
      const ref = await runner.lossAndLogits(BATCH, values);
      expect(relErr(out.logits.dataSync(), ref.logits)).toBeLessThan(1e-5);
      expect(Math.abs(out.loss.dataSync()[0] - ref.loss) / ref.loss).toBeLessThan(1e-5);

      // the same dropout masks from the same seed
      const dropped = model.trace(true);
      const withDrop = interpret(dropped.graph, constants(dropped.graph), { loss: dropped.loss }, feedsOf(model, BATCH, values, { sites: dropped.dropout, seed: 11 }));
      const dropRef = await runner.loss(BATCH, values, 11);
      expect(Math.abs(withDrop.loss.dataSync()[0] - dropRef) / dropRef).toBeLessThan(1e-5);
      expect(Math.abs(dropRef - ref.loss) / ref.loss).toBeGreaterThan(1e-3);

      const loss = (...xs: tf.Tensor[]) => interpret(t.graph, consts, { loss: t.loss }, { ...feeds, ...Object.fromEntries(names.map((n, i) => [n, xs[i]])) }).loss as tf.Scalar;
      const grads = tf.grads(loss)(names.map((n) => feeds[n]));
      const rev = await runner.backprop(BATCH, values, names, null);
      names.forEach((n, i) => expect(relErr(grads[i].dataSync(), rev.grads.get(n)!)).toBeLessThan(1e-4));

      const k = 3;
      const j = jvpGraph(t.graph, [t.loss], names);
      const dirs = new Map(names.map((n) => [n, directions('tfjs-interpreter', model.trainable, n, k)]));
      const tangents = Object.fromEntries(model.trainable.map((s) => [tangentName(s.name), tf.tensor(dirs.get(s.name)!, [k, ...s.shape], 'float32')]));
      const jvp = interpret(j.graph, constants(j.graph), { jvp: j.tangents[0]! }, { ...feeds, ...tangents });
      expect(relErr(jvp.jvp.dataSync(), (await runner.jvp(BATCH, values, dirs, k, null)).jvp)).toBeLessThan(1e-4);
    });
});
