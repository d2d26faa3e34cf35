// How far can a classification head on this model's features go? Fits a linear head (as
// GPT2ForSequenceClassification's score layer: last real token after ln_f, no bias) to convergence
// with full-batch Adam on each organisation's training split of the demo's task, and reports its
// accuracy on that organisation's test split. An upper bound on what finetuning only the head can
// reach; the demo's gains are measured against it.
//   node bench/head_probe.ts [--task demo|sentiment] [--model embedded] [--steps 3000]
// --task demo (default): the demo's three organisations and their mail files; sentiment: the
// review sentences' natural domains (imdb, yelp, amazon), the reproduction's task.
import * as tf from '@tensorflow/tfjs';
import { Command, Option } from 'commander';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../src/worker/backend.ts';
import { loadModel } from '../src/worker/models/index.ts';
import { resolveModelDir } from '../src/worker/models/embedded.ts';
import { initTrainable } from '../src/worker/models/lora.ts';
import { plainParams } from '../src/worker/models/model.ts';
import { loadTaskData } from '../src/worker/data/task_data.ts';
import { encodeExamples, makeBatch } from '../src/worker/data/batches.ts';
import type { Example } from '../src/worker/data/examples.ts';
import { ORGS, TRAIN_FRACTION, writeMailFiles } from '../src/main/demo_data.ts';

const o = new Command()
  .option('--model <dir>', 'model directory, or "embedded"', 'embedded')
  .option('--steps <n>', 'full-batch Adam steps', Number, 3000)
  .option('--max-length <n>', 'tokens per example (the demo uses 48)', Number, 48)
  .addOption(new Option('--task <name>', "the demo's organisations, or the sentiment domains").choices(['demo', 'sentiment']).default('demo'))
  .parse()
  .opts();

await initBackend('wasm');
const probe = await loadModel(resolveModelDir(o.model), { kind: 'classification', numLabels: 1 });
const d = probe.model.dims.hidden;
probe.model.dispose();
// a "head" of d outputs set to the identity returns the features themselves
const { model, tokenizer } = await loadModel(resolveModelDir(o.model), { kind: 'classification', numLabels: d });
const values = initTrainable(model.trainable, 0);
values.set('score.weight', tf.eye(d));
const params = plainParams(values);

function features(examples: Example[]): tf.Tensor2D {
  const ids = encodeExamples(tokenizer!, examples, o.maxLength);
  const rows: tf.Tensor[] = [];
  for (let s = 0; s < ids.length; s += 64) {
    const batch = makeBatch(ids.slice(s, s + 64), examples.slice(s, s + 64).map((e) => e.label), tokenizer!.padId ?? 0);
    rows.push(model.forward(batch, params, null).p);
  }
  return tf.concat(rows) as tf.Tensor2D;
}

const accuracy = (w: tf.Tensor, x: tf.Tensor2D, y: number[]) =>
  (tf.argMax(tf.matMul(x, w), 1).arraySync() as number[]).filter((p, i) => p === y[i]).length / y.length;

const mailFiles = o.task === 'demo' ? await writeMailFiles(await mkdtemp(path.join(os.tmpdir(), 'ff-probe-'))) : [];
const orgs: readonly string[] = o.task === 'demo' ? ORGS : ['imdb', 'yelp', 'amazon'];
for (const [i, org] of orgs.entries()) {
  const data = await loadTaskData(
    o.task === 'demo'
      ? { source: mailFiles[i], split: { kind: 'local', client: org }, seed: 0, trainFraction: TRAIN_FRACTION, limit: 0 }
      : { source: 'sentiment', split: { kind: 'local', client: org, domain: org }, seed: 0, trainFraction: 0.8, limit: 0 },
  );
  const { train, test } = data.clients[0];
  const [xTrain, xTest] = [features(train), features(test)];
  const yTrain = train.map((e) => e.label);
  const w = tf.variable(tf.zeros([d, data.labels.length]));
  const target = tf.oneHot(tf.tensor1d(yTrain, 'int32'), data.labels.length);
  const adam = tf.train.adam(1e-2);
  for (let i = 0; i < o.steps; i++) adam.minimize(() => tf.losses.softmaxCrossEntropy(target, tf.matMul(xTrain, w)) as tf.Scalar);
  const mean = tf.mean(xTrain, 0);
  console.log(
    `${org}: a head fitted to convergence reaches ${(100 * accuracy(w, xTest, test.map((e) => e.label))).toFixed(1)} % on the test split` +
      ` (train ${(100 * accuracy(w, xTrain, yTrain)).toFixed(1)} %); feature mean: norm ${tf.norm(mean).dataSync()[0].toFixed(1)}, largest |component| ${tf.max(tf.abs(mean)).dataSync()[0].toFixed(1)}`,
  );
}
