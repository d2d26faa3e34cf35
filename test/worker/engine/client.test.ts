// The Spry client's local training with its forward gradients on ONNX Runtime: the same update as
// on TensorFlow.js (with LoRA dropout too: both draw the masks from the seed by dropoutFeeds), and
// bit-identical reruns with dropout.
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { type RandomShape, randomCheckpoint } from '../../../src/worker/models/random.ts';
import { localTrain } from '../../../src/worker/spry/client.ts';
import { runnerFor } from '../../../src/worker/engine/index.ts';
import { initEngine } from '../../../src/worker/engine/session.ts';
import { HyperParams, METHODS } from '../../../src/shared/methods.ts';
import { SHAPE, TARGETS, clientData, globalsOf } from '../../main/spry/per_iteration_setup.ts';

const CLS = { kind: 'classification', numLabels: 2 } as const;

beforeAll(async () => {
  await initBackend('wasm');
  await initEngine('cpu');
});

const LLAMA: RandomShape = { family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 29, positions: 16 };

function setup(dropout: number, shape: RandomShape = SHAPE, targets = TARGETS) {
  const { config, tensors } = randomCheckpoint(shape, 5);
  const model = createModel(config, tensors, CLS, { r: 1, alpha: 1, dropout, targetModules: targets });
  const runner = runnerFor(model, `random/${shape.family}/${dropout}`);
  const task = {
    client: 'c0',
    roundSeed: 'engine-client',
    method: METHODS.spry,
    hp: HyperParams.parse({ k: 2, batchSize: 4, lr: 1e-2, localEpochs: 1 }),
    units: [model.units[1].name, model.units[model.units.length - 1].name],
    globals: globalsOf(model.trainable),
  };
  return { model, runner, task };
}

describe('Spry local training with forward gradients on ONNX Runtime', () => {
  for (const [family, shape, targets, dropout] of [['gpt2', SHAPE, TARGETS, 0.3], ['llama (grouped-query heads)', LLAMA, ['q_proj', 'k_proj', 'v_proj'], 0]] as const)
  it(`gives the TensorFlow.js update to float32 precision: ${family}, LoRA dropout ${dropout}`, async () => {
    const { model, runner, task } = setup(dropout, shape, [...targets]);
    const data = clientData('c0');
    const ort = await localTrain(model, task, data, undefined, runner);
    const tfjs = await localTrain(model, task, data);
    expect(ort.loss).toBeCloseTo(tfjs.loss, 5);
    for (const [name, w] of tfjs.weights!) {
      const mine = ort.weights!.get(name)!;
      const scale = Math.max(...Array.from(w, Math.abs));
      w.forEach((x, i) => expect(Math.abs(mine[i] - x) / scale).toBeLessThan(1e-4));
    }
    // the step moved the weights: the comparison is not of two unchanged adapters
    const [first, moved] = [...tfjs.weights!][0];
    expect(moved.some((x, i) => x !== task.globals.get(first)![i])).toBe(true);
  });

  it('is deterministic with LoRA dropout: same seed, same update, bit for bit', async () => {
    const { model, runner, task } = setup(0.3);
    const data = clientData('c1');
    const a = await localTrain(model, { ...task, client: 'c1' }, data, undefined, runner);
    const b = await localTrain(model, { ...task, client: 'c1' }, data, undefined, runner);
    const c = await localTrain(model, { ...task, client: 'c1', roundSeed: 'other' }, data, undefined, runner);
    for (const [name, w] of a.weights!) expect(b.weights!.get(name)).toEqual(w);
    expect([...c.weights!.values()][0]).not.toEqual([...a.weights!.values()][0]);
  });
});

describe('FedAvg local training with backprop on ONNX Runtime', () => {
  it('gives the TensorFlow.js update (no dropout) to float32 precision', async () => {
    const { model, runner, task } = setup(0);
    const data = clientData('c2');
    const fedavg = { ...task, client: 'c2', method: METHODS.fedavg, units: model.units.map((u) => u.name) };
    const ort = await localTrain(model, fedavg, data, undefined, runner);
    const tfjs = await localTrain(model, fedavg, data);
    expect(ort.loss).toBeCloseTo(tfjs.loss, 5);
    for (const [name, w] of tfjs.weights!) {
      const mine = ort.weights!.get(name)!;
      const scale = Math.max(...Array.from(w, Math.abs));
      w.forEach((x, i) => expect(Math.abs(mine[i] - x) / scale).toBeLessThan(1e-4));
    }
  });
});
