// Spry step 3, local training on a client, and step 4, what it returns. A pure piece: inputs are the
// global adapter, the units assigned to this client, its private data, the round seed and the
// hyperparameters; the output is an update. The simulation and the federation run this same code.
import * as tf from '@tensorflow/tfjs';
import type { Model } from '../models/model.ts';
import { AdamW } from '../train/adamw.ts';
import { type GradientEstimate, backpropGradient, forwardGradient, zeroOrderGradient } from '../train/gradients.ts';
import { runPassesAsync, zeroOrderPasses } from '../train/zero_order.ts';
import { type EncodedSet, batchOf } from './batching.ts';
import { Rng } from '../../shared/spry/rng.ts';
import { type HyperParams, type MethodSpec, estimatorOf, perIteration } from '../../shared/methods.ts';
import { stepSeed } from '../../shared/spry/seeds.ts';
import { type Weights, tensorsOf } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';
import { type Runner, hostBatch, hostValues } from '../engine/index.ts';

export interface ClientTask {
  client: string;
  roundSeed: string;
  method: MethodSpec;
  hp: HyperParams;
  /** the units assigned to this client this round */
  units: string[];
  /** the current global adapter (all trainable tensors: the forward pass needs the whole model) */
  globals: Weights;
}

export interface ClientProgress {
  step: number;
  steps: number;
  loss: number;
}

/**
 * Train locally and return the update (assigned tensors' values, or jvp scalars in per-iteration mode).
 * With a `runner` every estimator (forward gradients, backprop, zero order) runs on ONNX Runtime;
 * without one, on TensorFlow.js.
 */
export async function localTrain(model: Model, task: ClientTask, data: EncodedSet, onStep?: (p: ClientProgress) => void, runner?: Runner | null): Promise<ClientUpdate> {
  const { method, hp, client, roundSeed } = task;
  if (data.ids.length === 0) throw new Error(`client ${client} has no training examples`);
  const names = tensorsOf(model.units, task.units);
  const values = new Map(model.trainable.map((s) => {
    const w = task.globals.get(s.name);
    if (!w) throw new Error(`the global adapter lacks tensor "${s.name}"`);
    return [s.name, tf.tensor(w, s.shape, 'float32')] as [string, tf.Tensor];
  }));
  const estimator = estimatorOf(method, hp);
  const rng = new Rng(stepSeed(roundSeed, client, -1));
  const estimate = async (step: number, batch: ReturnType<typeof batchOf>): Promise<GradientEstimate> => {
    const seed = stepSeed(roundSeed, client, step);
    const dropoutSeed = rng.int(2 ** 31);
    if (runner) {
      const host = hostValues(values);
      const hb = hostBatch(batch);
      const r =
        estimator.kind === 'forward' ? await runner.forwardGradient(hb, host, names, estimator.k, seed, dropoutSeed)
        : estimator.kind === 'backprop' ? await runner.backprop(hb, host, names, dropoutSeed)
        : await runPassesAsync(zeroOrderPasses(model.trainable, host, names, { ...estimator, seed }), (shift) => runner.loss(hb, new Map([...host, ...shift]), dropoutSeed));
      return { ...r, grads: new Map([...r.grads].map(([n, g]) => [n, tf.tensor(g, values.get(n)!.shape, 'float32')])) };
    }
    if (estimator.kind === 'forward') return forwardGradient(model, batch, values, names, estimator.k, seed, dropoutSeed);
    if (estimator.kind === 'backprop') return backpropGradient(model, batch, values, names, dropoutSeed);
    return zeroOrderGradient(model, batch, values, names, { ...estimator, seed, dropoutSeed });
  };

  try {
    // one step, uploaded as a gradient: per-iteration Spry (K jvp scalars) and FedSGD (Δ = −lr·g)
    if (method.local === 'step' || perIteration(method, hp)) {
      const order = rng.shuffle(range(data.ids.length)).slice(0, hp.batchSize);
      const batch = batchOf(data, order, hp.maxLength);
      const est = await estimate(0, batch);
      tf.dispose(Object.values(batch));
      onStep?.({ step: 1, steps: 1, loss: est.loss });
      const update: ClientUpdate = { client, units: task.units, numExamples: order.length, loss: est.loss };
      if (perIteration(method, hp)) update.jvp = est.jvp;
      else update.weights = new Map(names.map((n) => [n, sgdStep(values.get(n)!, est.grads.get(n)!, hp.lr)]));
      tf.dispose([...est.grads.values()]);
      return update;
    }

    const opt = new AdamW({ lr: hp.lr, weightDecay: hp.weightDecay, beta1: hp.beta1, beta2: hp.beta2 });
    const perEpoch = Math.ceil(data.ids.length / hp.batchSize);
    const steps = hp.maxLocalSteps > 0 ? Math.min(hp.maxLocalSteps, perEpoch * hp.localEpochs) : perEpoch * hp.localEpochs;
    let lossSum = 0;
    let step = 0;
    for (let epoch = 0; epoch < hp.localEpochs && step < steps; epoch++) {
      const order = rng.shuffle(range(data.ids.length));
      for (let b = 0; b < perEpoch && step < steps; b++, step++) {
        const batch = batchOf(data, order.slice(b * hp.batchSize, (b + 1) * hp.batchSize), hp.maxLength);
        const est = await estimate(step, batch);
        tf.dispose(Object.values(batch));
        opt.step(values, est.grads);
        tf.dispose([...est.grads.values()]);
        lossSum += est.loss;
        onStep?.({ step: step + 1, steps, loss: est.loss });
      }
    }
    opt.dispose();
    const weights: Weights = new Map(names.map((n) => [n, values.get(n)!.dataSync() as Float32Array]));
    return { client, units: task.units, numExamples: data.ids.length, loss: lossSum / steps, weights };
  } finally {
    tf.dispose([...values.values()]);
  }
}

function sgdStep(w: tf.Tensor, g: tf.Tensor, lr: number): Float32Array {
  return tf.tidy(() => tf.sub(w, tf.mul(g, lr)).dataSync() as Float32Array);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
