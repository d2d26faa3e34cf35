// Zero-order gradient estimates (FedMeZO: SPSA; FwdLLM+, Baffle+: finite differences) from plain
// forward losses at perturbed adapter weights, averaged over k directions z ~ N(0, I):
//   central:  (f(w + εz) − f(w − εz)) / 2ε · z
//   forward:  (f(w + εz) − f(w)) / ε · z
// Written once, over host arrays, as a generator that yields each perturbed adapter whose loss it
// needs: TensorFlow.js answers synchronously (runPasses, from train/gradients.ts), ONNX Runtime's
// runner asynchronously (runPassesAsync, from the Spry client), so both engines run one estimator.
import type { Seed } from '../../shared/spry/rng.ts';
import { combineDirections, directions } from '../../shared/spry/directions.ts';
import type { TensorSpec, Weights } from '../../shared/units.ts';

export interface ZeroOrderOptions {
  k: number;
  eps: number;
  scheme: 'central' | 'forward';
  seed: Seed;
}

export interface ZeroOrderEstimate {
  /** the loss at the unperturbed weights */
  loss: number;
  grads: Weights;
}

/**
 * The estimator's passes: each yield is a shift of the adapter (the perturbed tensors' new values
 * only; an empty map for the unperturbed loss), answered with the loss there.
 */
export function* zeroOrderPasses(trainable: TensorSpec[], values: Weights, names: string[], opts: ZeroOrderOptions): Generator<Weights, ZeroOrderEstimate, number> {
  const { k, eps, scheme, seed } = opts;
  const dirs = new Map(names.map((n) => [n, directions(seed, trainable, n, k)]));
  const at = (j: number, s: number): Weights =>
    new Map(names.map((n) => {
      const w = values.get(n);
      if (!w) throw new Error(`the adapter lacks tensor "${n}"`);
      const z = dirs.get(n)!.subarray(j * w.length, (j + 1) * w.length);
      return [n, Float32Array.from(w, (x, i) => x + s * z[i])];
    }));
  const f0 = yield new Map();
  const coef: number[] = [];
  for (let j = 0; j < k; j++) {
    const fp = yield at(j, eps);
    coef.push(scheme === 'central' ? (fp - (yield at(j, -eps))) / (2 * eps) : (fp - f0) / eps);
  }
  return { loss: f0, grads: new Map(names.map((n) => [n, combineDirections(coef, dirs.get(n)!)])) };
}

/** Run the passes with a synchronous loss (TensorFlow.js). */
export function runPasses(passes: Generator<Weights, ZeroOrderEstimate, number>, lossAt: (shift: Weights) => number): ZeroOrderEstimate {
  let step = passes.next();
  while (!step.done) step = passes.next(lossAt(step.value));
  return step.value;
}

/** Run the passes with an asynchronous loss (ONNX Runtime). */
export async function runPassesAsync(passes: Generator<Weights, ZeroOrderEstimate, number>, lossAt: (shift: Weights) => Promise<number>): Promise<ZeroOrderEstimate> {
  let step = passes.next();
  while (!step.done) step = passes.next(await lossAt(step.value));
  return step.value;
}
