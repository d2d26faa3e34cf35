// Gradient estimators for one mini-batch, over a chosen subset of the trainable tensors.
// They share one model forward and differ only in how they get a gradient out of it:
//   forward mode (Spry, FedFgd): g = (1/K) Σ_k (∇f·v_k) v_k, one pass carrying K tangents
//   reverse mode (FedAvg, FedYogi, FedSGD): tf.grads, keeps the activations for the backward pass
//   zero order (FedMeZO: SPSA; FwdLLM+, Baffle+: finite differences): plain forward passes at
//   perturbed weights, the estimator in zero_order.ts
import * as tf from '@tensorflow/tfjs';
import { disposeDual } from '../fwd/dual.ts';
import { type Batch, type Model, lossOf } from '../models/model.ts';
import type { Params } from '../models/lora.ts';
import type { Seed } from '../../shared/spry/rng.ts';
import { combine, perturbation } from './perturb.ts';
import { type ZeroOrderOptions, runPasses, zeroOrderPasses } from './zero_order.ts';
import type { Weights } from '../../shared/units.ts';

export interface GradientEstimate {
  loss: number;
  /** estimated gradient for each of the requested tensors (caller disposes) */
  grads: Map<string, tf.Tensor>;
  /** forward mode: the K directional derivatives ∇f·v_k (what per-iteration Spry uploads) */
  jvp?: number[];
}

export type Values = Map<string, tf.Tensor>;

/**
 * Forward gradient on `names` only: those tensors carry K tangents, every other tensor carries none
 * (so the layers before the first perturbed one run at inference cost).
 */
export function forwardGradient(model: Model, batch: Batch, values: Values, names: string[], k: number, seed: Seed, dropoutSeed: number | null): GradientEstimate {
  if (names.length === 0 || k < 1) throw new Error('a forward gradient needs at least one perturbed tensor and K >= 1');
  const dirs = new Map(names.map((n) => [n, perturbation(seed, model.trainable, n, k)]));
  const params: Params = new Map();
  for (const [n, v] of values) params.set(n, { p: v, t: dirs.get(n) ?? null });
  const out = lossOf(model, batch, params, dropoutSeed);
  const loss = out.p.dataSync()[0];
  const jvp = Array.from(out.t!.dataSync());
  disposeDual(out);
  const grads = new Map<string, tf.Tensor>();
  for (const [n, v] of dirs) {
    grads.set(n, combine(jvp, v));
    v.dispose();
  }
  return { loss, grads, jvp };
}

/** Exact gradient by reverse mode (backpropagation) on `names`. */
export function backpropGradient(model: Model, batch: Batch, values: Values, names: string[], dropoutSeed: number | null): GradientEstimate {
  const { value, grads } = tf.tidy(() => {
    const f = (...xs: tf.Tensor[]) => {
      const params: Params = new Map();
      for (const [n, v] of values) params.set(n, { p: v, t: null });
      names.forEach((n, i) => params.set(n, { p: xs[i], t: null }));
      return lossOf(model, batch, params, dropoutSeed).p as tf.Scalar;
    };
    const r = tf.valueAndGrads(f)(names.map((n) => values.get(n)!));
    return { value: r.value, grads: r.grads };
  });
  const loss = value.dataSync()[0];
  value.dispose();
  return { loss, grads: new Map(names.map((n, i) => [n, grads[i]])) };
}

function lossAt(model: Model, batch: Batch, values: Values, shift: Weights, dropoutSeed: number | null): number {
  const out = tf.tidy(() => {
    const params: Params = new Map();
    for (const [n, v] of values) params.set(n, { p: shift.has(n) ? tf.tensor(shift.get(n)!, v.shape, 'float32') : v, t: null });
    return lossOf(model, batch, params, dropoutSeed).p;
  });
  const loss = out.dataSync()[0];
  out.dispose();
  return loss;
}

/** Zero-order estimate (train/zero_order.ts) with TensorFlow.js's losses. The same dropout mask is used in every pass of a step. */
export function zeroOrderGradient(model: Model, batch: Batch, values: Values, names: string[], opts: ZeroOrderOptions & { dropoutSeed: number | null }): GradientEstimate {
  const host = new Map(names.map((n) => [n, values.get(n)!.dataSync() as Float32Array]));
  const r = runPasses(zeroOrderPasses(model.trainable, host, names, opts), (shift) => lossAt(model, batch, values, shift, opts.dropoutSeed));
  return { loss: r.loss, grads: new Map([...r.grads].map(([n, g]) => [n, tf.tensor(g, values.get(n)!.shape, 'float32')])) };
}
