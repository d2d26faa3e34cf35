// The oracle for tangent rules: a function's forward-mode directional derivative must equal the
// reverse-mode gradient (tf.grads) dotted with the same direction, and a central finite difference.
import * as tf from '@tensorflow/tfjs';
import { expect } from 'vitest';
import { type Dual } from '../../../src/worker/fwd/dual.ts';

export interface OracleResult { forward: number[]; reverse: number[]; finiteDiff: number[] }

/**
 * f maps Duals to a Dual. The scalar probed is L = Σ f(x) ⊙ R for a fixed random R.
 * `perturbed[i]` says whether input i carries a tangent (the others are held constant).
 */
export function checkTangents(
  f: (xs: Dual[]) => Dual,
  inputs: tf.Tensor[],
  perturbed: boolean[] = inputs.map(() => true),
  opts: { k?: number; h?: number; seed?: number } = {},
): OracleResult {
  const k = opts.k ?? 2;
  const h = opts.h ?? 1e-2;
  const seed = opts.seed ?? 7;
  return tf.tidy(() => {
    const dirs = inputs.map((x, i) => (perturbed[i] ? tf.randomNormal([k, ...x.shape], 0, 1, 'float32', seed + i) : null));
    const out = f(inputs.map((p) => ({ p, t: null })));
    const r = tf.randomNormal(out.p.shape, 0, 1, 'float32', seed + 100);
    const scalar = (xs: tf.Tensor[]) => tf.sum(tf.mul(f(xs.map((p) => ({ p, t: null }))).p, r));

    const fwd = f(inputs.map((p, i) => ({ p, t: dirs[i] })));
    const forward = Array.from(tf.sum(tf.reshape(tf.mul(fwd.t!, r), [k, -1]), 1).dataSync());

    const idx = inputs.map((_, i) => i).filter((i) => perturbed[i]);
    const grads = tf.grads((...xs: tf.Tensor[]) => {
      const all = inputs.slice();
      idx.forEach((i, j) => (all[i] = xs[j]));
      return scalar(all);
    })(idx.map((i) => inputs[i]));
    const reverse: number[] = [];
    const finiteDiff: number[] = [];
    for (let kk = 0; kk < k; kk++) {
      let dot = 0;
      idx.forEach((i, j) => (dot += tf.sum(tf.mul(grads[j], tf.gather(dirs[i]!, kk))).dataSync()[0]));
      reverse.push(dot);
      const shifted = (sign: number) =>
        scalar(inputs.map((x, i) => (dirs[i] ? tf.add(x, tf.mul(tf.gather(dirs[i]!, kk), sign * h)) : x))).dataSync()[0];
      finiteDiff.push((shifted(1) - shifted(-1)) / (2 * h));
    }
    return { forward, reverse, finiteDiff } as unknown as tf.TensorContainer;
  }) as unknown as OracleResult;
}

/**
 * Tolerances are relative to the size of the derivative itself (the largest |reverse| over the K
 * directions), never to a floor, so a tangent rule that is 10 % off fails however small the
 * derivative is. Forward vs reverse: both are exact derivatives evaluated in float32 and differ
 * only by rounding: relative 1e-3. Finite difference: central differences have O(h²) truncation
 * error and O(ε_f32·|L|/h) rounding error, so they get `fdTol` (3e-2 by default).
 */
export function expectAgreement(res: OracleResult, fdTol = 3e-2): void {
  const s = Math.max(...res.reverse.map(Math.abs));
  // the directions differ, so the derivative must be non-zero (guards against a zero tangent)
  expect(s).toBeGreaterThan(0);
  res.forward.forEach((v, i) => {
    expect(Number.isFinite(v)).toBe(true);
    expect(Math.abs(v - res.reverse[i])).toBeLessThanOrEqual(1e-3 * s);
    expect(Math.abs(v - res.finiteDiff[i])).toBeLessThanOrEqual(fdTol * s);
  });
}
