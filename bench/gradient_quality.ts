// How much of the true gradient one mini-batch estimate carries, per estimator and per set of
// trainable tensors: the cosine between the estimate and the gradient over the whole training set,
// at the untrained adapter. This is what separates the methods before any federation is involved:
// a forward gradient's expected cosine falls like 1/√d in the number d of perturbed weights (Spry's
// split makes d small), backprop's is set by the mini-batch alone.
//
//   node bench/gradient_quality.ts [--model embedded] [--task sentiment] [--batch 8] [--trials 40] [--json FILE]
import * as tf from '@tensorflow/tfjs';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/worker/backend.ts';
import { encodeExamples, makeBatch } from '../src/worker/data/batches.ts';
import { loadDataset } from '../src/worker/data/task_data.ts';
import { resolveModelDir } from '../src/worker/models/embedded.ts';
import { loadModel } from '../src/worker/models/index.ts';
import { initTrainable } from '../src/worker/models/lora.ts';
import { type GradientEstimate, backpropGradient, forwardGradient, zeroOrderGradient } from '../src/worker/train/gradients.ts';
import { Rng } from '../src/shared/spry/rng.ts';
import { writeFileAtomic } from '../src/shared/atomic_write.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'embedded' },
    task: { type: 'string', default: 'sentiment' },
    batch: { type: 'string', default: '8' },
    trials: { type: 'string', default: '40' },
    json: { type: 'string' },
  },
});
const BATCH = Number(args.batch);
const TRIALS = Number(args.trials);

const backend = await initBackend('auto');
const ds = await loadDataset(args.task);
if (ds.labels.length === 0) throw new Error(`--task ${args.task} has no labels; this benchmark needs a classification task`);
const { model, tokenizer } = await loadModel(resolveModelDir(args.model), { kind: 'classification', numLabels: ds.labels.length });
if (!tokenizer) throw new Error(`${args.model} has no tokenizer.json`);
const examples = ds.examples;
const encoded = encodeExamples(tokenizer, examples, 64);
const batchOf = (idx: number[]) => makeBatch(idx.map((i) => encoded[i]), idx.map((i) => examples[i].label), tokenizer.padId ?? 0);
const disposeBatch = (b: ReturnType<typeof batchOf>) => tf.dispose([b.ids, b.mask, b.labels!]);
const values = initTrainable(model.trainable, 0);
const all = model.trainable.map((s) => s.name);

// the full-data gradient, in float64
const full = new Map(all.map((n) => [n, new Float64Array(values.get(n)!.size)]));
for (let s = 0; s < encoded.length; s += 48) {
  const idx = Array.from({ length: Math.min(48, encoded.length - s) }, (_, i) => s + i);
  const b = batchOf(idx);
  const g = backpropGradient(model, b, values, all, null);
  for (const [n, t] of g.grads) {
    const d = t.dataSync(), f = full.get(n)!;
    for (let i = 0; i < d.length; i++) f[i] += (d[i] * idx.length) / encoded.length;
    t.dispose();
  }
  disposeBatch(b);
}

function cosine(names: string[], est: GradientEstimate): number {
  let dot = 0, a = 0, b = 0;
  for (const n of names) {
    const d = est.grads.get(n)!.dataSync(), f = full.get(n)!;
    for (let i = 0; i < d.length; i++) {
      dot += d[i] * f[i];
      a += d[i] * d[i];
      b += f[i] * f[i];
    }
  }
  for (const t of est.grads.values()) t.dispose();
  return dot / Math.sqrt(a * b);
}

// Spry perturbs one unit per client when clients ≥ units: the head, or one LoRA pair; FedFgd and FedMeZO perturb all
const lastPair = model.units.filter((u) => u.name !== 'head').at(-1)!;
const sets: { name: string; tensors: string[] }[] = [
  { name: 'head', tensors: ['score.weight'] },
  { name: `LoRA pair ${lastPair.name}`, tensors: lastPair.tensors },
  { name: 'every trainable tensor', tensors: all },
];
const estimators: { name: string; run: (b: ReturnType<typeof batchOf>, names: string[], t: number) => GradientEstimate }[] = [
  { name: 'backprop', run: (b, names) => backpropGradient(model, b, values, names, null) },
  { name: 'forward K=1', run: (b, names, t) => forwardGradient(model, b, values, names, 1, `trial-${t}`, null) },
  { name: 'forward K=8', run: (b, names, t) => forwardGradient(model, b, values, names, 8, `trial-${t}`, null) },
  { name: 'SPSA K=1', run: (b, names, t) => zeroOrderGradient(model, b, values, names, { scheme: 'central', k: 1, eps: 1e-3, seed: `trial-${t}`, dropoutSeed: null }) },
];

const rows: { set: string; weights: number; estimator: string; meanCos: number }[] = [];
console.log(`${args.model} on ${args.task} (${backend.detail}): cosine of a batch-${BATCH} estimate with the full-data gradient, mean over ${TRIALS} batches`);
for (const set of sets) {
  const weights = set.tensors.reduce((s, n) => s + values.get(n)!.size, 0);
  const rng = new Rng(3, 0);
  const cos = new Map(estimators.map((e) => [e.name, [] as number[]]));
  for (let t = 0; t < TRIALS; t++) {
    const b = batchOf(Array.from({ length: BATCH }, () => rng.int(encoded.length)));
    for (const e of estimators) cos.get(e.name)!.push(cosine(set.tensors, e.run(b, set.tensors, t)));
    disposeBatch(b);
  }
  for (const [estimator, c] of cos) rows.push({ set: set.name, weights, estimator, meanCos: c.reduce((s, x) => s + x, 0) / c.length });
  console.log(`  ${set.name} (${weights} weights): ` + rows.filter((r) => r.set === set.name).map((r) => `${r.estimator} ${r.meanCos.toFixed(3)}`).join(', '));
}
if (args.json) await writeFileAtomic(args.json, JSON.stringify({ model: args.model, task: args.task, batch: BATCH, trials: TRIALS, backend: backend.detail, rows }, null, 2) + '\n');
