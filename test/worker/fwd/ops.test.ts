// The tangent rule of the loss computed on top of a model's logits (fwd/dual.ts crossEntropy) agrees
// with reverse mode and finite differences; the models' own ops are tested in test/worker/engine/ops.test.ts.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import * as D from '../../../src/worker/fwd/dual.ts';
import { checkTangents, expectAgreement } from './oracle.ts';

const rn = (shape: number[], seed: number, scale = 1) => tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), scale));

beforeAll(async () => {
  await initBackend('wasm');
});

describe('the loss on top of the logits', () => {
  it('cross-entropy with padding: tangent = reverse mode = finite difference', () => {
    const inputs = [rn([2, 3, 5], 1, 2)];
    const f = ([x]: D.Dual[]) => D.crossEntropy(x, tf.tensor2d([[1, 4, 0], [2, 2, 3]], undefined, 'int32'), tf.tensor2d([[1, 1, 0], [1, 0, 1]]));
    expectAgreement(checkTangents(f, inputs));
    tf.dispose(inputs);
  });

  it('tidyDual keeps only the returned value', () => {
    const before = tf.memory().numTensors;
    const x = { p: rn([2, 3], 1), t: rn([1, 2, 3], 2) };
    const y = D.tidyDual(() => ({ p: tf.mul(tf.exp(x.p), 2), t: tf.mul(tf.exp(x.t!), 2) }));
    expect(tf.memory().numTensors).toBe(before + 4);
    D.disposeDual(y);
    D.disposeDual(x);
    expect(tf.memory().numTensors).toBe(before);
  });
});
