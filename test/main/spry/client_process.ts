// A Spry client in a process of its own, for the end-to-end test of per-iteration Spry: it trains
// its assigned units with the real client code (localTrain) and also reports the forward gradient it
// computed on the same batch, so the aggregator (in the test's process) can be checked against it.
// Input: one JSON argument; output: one JSON line.
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { makeBatch } from '../../../src/worker/data/batches.ts';
import { localTrain } from '../../../src/worker/spry/client.ts';
import { forwardGradient } from '../../../src/worker/train/gradients.ts';
import { stepSeed } from '../../../src/shared/spry/seeds.ts';
import { tensorsOf } from '../../../src/shared/units.ts';
import { HyperParams, METHODS } from '../../../src/shared/methods.ts';
import { SHAPE, TARGETS, clientData, globalsOf } from './per_iteration_setup.ts';

const { roundSeed, assignment, k } = JSON.parse(process.argv[2]) as { roundSeed: string; assignment: [string, string[]][]; k: number };
await initBackend('wasm');
const { config, tensors } = randomCheckpoint(SHAPE, 5);
const model = createModel(config, tensors, { kind: 'classification', numLabels: 2 }, { r: 1, alpha: 1, dropout: 0, targetModules: TARGETS });
const globals = globalsOf(model.trainable);
const hp = HyperParams.parse({ spryMode: 'iteration', k, batchSize: 8, lr: 0.5 });
const out = [];
for (const [client, units] of assignment) {
  const data = clientData(client);
  const update = await localTrain(model, { client, roundSeed, method: METHODS.spry, hp, units, globals }, data);
  // the client's own forward gradient: the same step (seed of step 0, all its examples, no dropout)
  const values = new Map(model.trainable.map((s) => [s.name, tf.tensor(globals.get(s.name)!, s.shape)]));
  const batch = makeBatch(data.ids, data.labels, data.pad);
  const est = forwardGradient(model, batch, values, tensorsOf(model.units, units), k, stepSeed(roundSeed, client, 0), null);
  out.push({ client, units, numExamples: update.numExamples, jvp: update.jvp, ownJvp: est.jvp, grads: Object.fromEntries([...est.grads].map(([n, g]) => [n, Array.from(g.dataSync())])) });
}
console.log(JSON.stringify(out));
