// The zero-order methods (FedMeZO, FwdLLM+, Baffle+) on ONNX Runtime: the TensorFlow.js update for
// a fixed seed, and, as an independent oracle, differences along z that converge to the engine's
// reverse-mode ∇f·z at the order of their scheme (ε² central, ε forward).
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { localTrain } from '../../../src/worker/spry/client.ts';
import { runnerFor } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { directions } from '../../../src/shared/spry/directions.ts';
import { runPassesAsync, zeroOrderPasses } from '../../../src/worker/train/zero_order.ts';
import { HyperParams, METHODS } from '../../../src/shared/methods.ts';
import { SHAPE, TARGETS, clientData, globalsOf } from '../../main/spry/per_iteration_setup.ts';

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

function setup(key: string) {
  const { config, tensors } = randomCheckpoint(SHAPE, 5);
  const model = createModel(config, tensors, { kind: 'classification', numLabels: 2 }, { r: 1, alpha: 1, dropout: 0, targetModules: TARGETS });
  return { model, runner: runnerFor(model, key), globals: globalsOf(model.trainable) };
}

describe('zero-order local training on ONNX Runtime', () => {
  for (const method of ['fedmezo', 'fwdllm', 'baffle'] as const)
    it(`${method}: the TensorFlow.js update for the same seed, to float32 precision`, async () => {
      const { model, runner, globals } = setup(`random/gpt2/zero-order/${method}`);
      const task = { client: 'c0', roundSeed: 'zero-order', method: METHODS[method], hp: HyperParams.parse({ batchSize: 4, lr: 1e-2 }), units: model.units.map((u) => u.name), globals };
      const data = clientData('c0');
      const ort = await localTrain(model, task, data, undefined, runner);
      const tfjs = await localTrain(model, task, data);
      expect(Math.abs(ort.loss - tfjs.loss) / tfjs.loss).toBeLessThan(1e-6);
      // the engines' losses agree to a few float32 ulps; a difference quotient divides that by ε
      const { eps } = METHODS[method].estimator as { eps: number };
      let diff = 0;
      let update = 0;
      for (const [name, w] of tfjs.weights!) {
        const start = globals.get(name)!;
        const mine = ort.weights!.get(name)!;
        w.forEach((x, i) => {
          diff = Math.max(diff, Math.abs(mine[i] - x));
          update = Math.max(update, Math.abs(x - start[i]));
        });
      }
      expect(update).toBeGreaterThan(0);
      expect(diff / update).toBeLessThan(2 ** -18 / eps);
      model.dispose();
    });
});

describe('zero-order differences on ONNX Runtime against the engine reverse mode', () => {
  it('converge to ∇f·z: central differences at order ε², forward differences at order ε', async () => {
    const { model, runner, globals } = setup('random/gpt2/zero-order/oracle');
    const names = model.trainable.map((s) => s.name);
    const batch = { b: 2, t: 5, ids: Int32Array.from([3, 9, 27, 4, 11, 7, 2, 20, 0, 0]), mask: Float32Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0]), labels: Int32Array.from([1, 0]) };
    const z = new Map(names.map((n) => [n, directions('oracle', model.trainable, n, 1)]));
    const dot = (g: Map<string, Float32Array>) => names.reduce((acc, n) => acc + g.get(n)!.reduce((s, x, i) => s + x * z.get(n)![i], 0), 0);
    const exact = dot((await runner.backprop(batch, globals, names, null)).grads);
    const zz = dot(z);
    // K = 1: the estimate is c·z, so its coefficient is (estimate·z) / (z·z)
    const errorAt = async (scheme: 'central' | 'forward', eps: number) => {
      const r = await runPassesAsync(zeroOrderPasses(model.trainable, globals, names, { k: 1, eps, scheme, seed: 'oracle' }), (shift) => runner.loss(batch, new Map([...globals, ...shift]), null));
      return Math.abs(dot(r.grads) / zz - exact) / Math.abs(exact);
    };
    for (const [scheme, order, epss] of [['central', 2, [0.025, 0.0125, 0.00625]], ['forward', 1, [0.01, 0.005, 0.0025]]] as const) {
      const errs = [];
      for (const eps of epss) errs.push(await errorAt(scheme, eps));
      // halving ε divides the error by 2^order (floating-point error stays far below it at these ε)
      for (let i = 1; i < errs.length; i++) {
        expect(errs[i - 1] / errs[i]).toBeGreaterThan(2 ** order * 0.85);
        expect(errs[i - 1] / errs[i]).toBeLessThan(2 ** order * 1.15);
      }
      expect(errs.at(-1)).toBeLessThan(10 * epss.at(-1)! ** order);
    }
    model.dispose();
  });
});
