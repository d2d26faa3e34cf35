import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import * as D from '../../../src/worker/fwd/dual.ts';
import * as B from '../../../src/worker/fwd/blocks.ts';
import { checkTangents, expectAgreement } from './oracle.ts';

const rn = (shape: number[], seed: number, scale = 1) => tf.tidy(() => tf.mul(tf.randomNormal(shape, 0, 1, 'float32', seed), scale));

beforeAll(async () => {
  await initBackend('wasm');
});

describe('tangent rules agree with reverse mode and finite differences', () => {
  const cases: [string, (xs: D.Dual[]) => D.Dual, () => tf.Tensor[], boolean[]?][] = [
    ['add (broadcast bias)', ([a, b]) => D.add(a, b), () => [rn([2, 3, 4], 1), rn([4], 2)]],
    ['sub', ([a, b]) => D.sub(a, b), () => [rn([3, 4], 1), rn([3, 4], 2)]],
    ['mul', ([a, b]) => D.mul(a, b), () => [rn([2, 3, 4], 1), rn([3, 4], 2)]],
    ['matmul x and w', ([x, w]) => D.matmul(x, w), () => [rn([2, 3, 5], 1), rn([5, 4], 2)]],
    ['matmul w only', ([x, w]) => D.matmul(x, w), () => [rn([2, 3, 5], 1), rn([5, 4], 2)], [false, true]],
    ['linear with bias', ([x, w, b]) => D.linear(x, w, b), () => [rn([2, 3, 5], 1), rn([5, 4], 2), rn([4], 3)]],
    ['batchMatmul a·bᵀ', ([a, b]) => D.batchMatmul(a, b, true), () => [rn([2, 2, 3, 4], 1), rn([2, 2, 5, 4], 2)]],
    ['batchMatmul a·b', ([a, b]) => D.batchMatmul(a, b, false), () => [rn([2, 2, 3, 5], 1), rn([2, 2, 5, 4], 2)]],
    ['takePositions', ([x]) => D.takePositions(x, tf.tensor1d([2, 0], 'int32')), () => [rn([2, 3, 4], 1)]],
    ['maskedMeanPool', ([x]) => D.maskedMeanPool(x, tf.tensor2d([[1, 1, 0], [1, 0, 0]])), () => [rn([2, 3, 4], 1)]],
    ['geluTanh', ([x]) => D.geluTanh(x), () => [rn([3, 4], 1, 2)]],
    ['geluErf', ([x]) => D.geluErf(x), () => [rn([3, 4], 1, 2)]],
    ['silu', ([x]) => D.silu(x), () => [rn([3, 4], 1, 2)]],
    ['tanh', ([x]) => D.tanh(x), () => [rn([3, 4], 1)]],
    ['softmax', ([x]) => D.softmax(x), () => [rn([2, 3, 5], 1, 2)]],
    ['split + concat', ([x]) => { const [a, b] = D.split(x, [2, 3]); return D.concat([b, D.scale(a, 3)]); }, () => [rn([2, 5], 1)]],
    ['transpose + reshape', ([x]) => D.reshape(D.transpose(x, [1, 0, 2]), [3, 8]), () => [rn([2, 3, 4], 1)]],
    ['layerNorm', ([x, g, b]) => B.layerNorm(x, g, b, 1e-5), () => [rn([2, 3, 6], 1, 3), rn([6], 2), rn([6], 3)]],
    ['rmsNorm', ([x, g]) => B.rmsNorm(x, g, 1e-5), () => [rn([2, 3, 6], 1, 3), rn([6], 2)]],
    ['rope', ([x]) => { const { cos, sin } = B.ropeTables(3, [1, 0.01]); return B.rope(x, cos, sin); }, () => [rn([2, 2, 3, 4], 1)]],
    ['attention causal GQA with padding', ([q, k, v]) => B.attention(q, k, v, B.attentionBias(tf.tensor2d([[1, 1, 1, 1], [1, 1, 1, 0]]), true)),
      () => [rn([2, 4, 4, 3], 1), rn([2, 2, 4, 3], 2), rn([2, 2, 4, 3], 3)]],
    ['attention bidirectional', ([q, k, v]) => B.attention(q, k, v, B.attentionBias(tf.tensor2d([[1, 1, 0]]), false)),
      () => [rn([1, 2, 3, 4], 1), rn([1, 2, 3, 4], 2), rn([1, 2, 3, 4], 3)]],
    ['cross-entropy with padding', ([x]) => B.crossEntropy(x, tf.tensor2d([[1, 4, 0], [2, 2, 3]], undefined, 'int32'), tf.tensor2d([[1, 1, 0], [1, 0, 1]])),
      () => [rn([2, 3, 5], 1, 2)]],
  ];
  for (const [name, f, make, perturbed] of cases) {
    it(name, () => {
      const inputs = make();
      expectAgreement(checkTangents(f, inputs, perturbed));
      tf.dispose(inputs);
    });
  }

  it('embedding (reverse-mode oracle on the cpu backend: wasm has no UnsortedSegmentSum kernel)', async () => {
    await tf.setBackend('cpu');
    try {
      const ids = tf.tensor2d([[0, 3], [2, 2]], undefined, 'int32');
      expectAgreement(checkTangents(([t]) => D.embedding(t, ids), [rn([5, 4], 1)]));
    } finally {
      await tf.setBackend('wasm');
    }
  });

  it('dropout shares one mask between primal and tangents', () => {
    const x = rn([4, 50], 1);
    const t = rn([2, 4, 50], 2);
    const y = D.dropout({ p: x, t }, 0.5, 123);
    const zp = tf.equal(y.p, 0).dataSync();
    const zt0 = tf.equal(tf.gather(y.t!, 0), 0).dataSync();
    expect(Array.from(zp)).toEqual(Array.from(zt0));
    const dropped = Array.from(zp).reduce((a, b) => a + b, 0);
    expect(dropped).toBeGreaterThan(50);
    expect(dropped).toBeLessThan(150);
    // surviving entries are scaled by 1/(1-rate) in both
    const ratio = tf.div(tf.gather(y.t!, 0), tf.gather(t, 0)).dataSync();
    expect(ratio.filter((_, i) => !zp[i]).every((r) => Math.abs(r - 2) < 1e-5)).toBe(true);
    // and through dropout, the tangent matches reverse mode for the same mask
    expectAgreement(checkTangents(([a]) => D.dropout(a, 0.3, 9), [rn([3, 8], 3)]));
  });

  it('a value without a tangent costs nothing: the result carries none', () => {
    const y = D.linear({ p: rn([2, 3], 1), t: null }, { p: rn([3, 4], 2), t: null }, { p: rn([4], 3), t: null });
    expect(y.t).toBeNull();
    const ce = B.crossEntropy(y, tf.tensor1d([1, 2], 'int32'), tf.ones([2]));
    expect(ce.t).toBeNull();
  });

  it('K tangents in one pass equal K separate passes', () => {
    const x = rn([2, 3, 5], 1);
    const w = rn([5, 4], 2);
    const v = rn([3, 5, 4], 3);
    const together = D.geluTanh(D.matmul({ p: x, t: null }, { p: w, t: v })).t!;
    for (let k = 0; k < 3; k++) {
      const alone = D.geluTanh(D.matmul({ p: x, t: null }, { p: w, t: tf.slice(v, [k], [1]) })).t!;
      const diff = tf.max(tf.abs(tf.sub(tf.gather(together, k), tf.gather(alone, 0)))).dataSync()[0];
      expect(diff).toBeLessThan(1e-5);
    }
  });

  it('tidyDual keeps only the returned value', () => {
    const before = tf.memory().numTensors;
    const x = { p: rn([2, 3], 1), t: rn([1, 2, 3], 2) };
    const y = D.tidyDual(() => D.silu(D.mul(x, x)));
    expect(tf.memory().numTensors).toBe(before + 4);
    D.disposeDual(y);
    D.disposeDual(x);
    expect(tf.memory().numTensors).toBe(before);
  });
});
