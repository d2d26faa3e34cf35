// Whole-model oracles: the forward-mode derivative of a model's loss with respect to its LoRA and
// head tensors equals reverse mode dotted with the same direction, and a central finite difference.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { type Batch, type Model, lossOf } from '../../../src/worker/models/model.ts';
import { type RandomShape, randomCheckpoint } from '../../../src/worker/models/random.ts';
import { backpropGradient, forwardGradient, zeroOrderGradient } from '../../../src/worker/train/gradients.ts';
import type { Params } from '../../../src/worker/models/lora.ts';
import { checkTangents, expectAgreement } from '../fwd/oracle.ts';

beforeAll(async () => {
  await initBackend('wasm');
});

const SHAPES: Record<string, RandomShape> = {
  gpt2: { family: 'gpt2', layers: 2, hidden: 16, heads: 2, vocab: 23, positions: 16 },
  llama: { family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, intermediate: 24, vocab: 23, positions: 16 },
};

function batchOf(withLabels: boolean): Batch {
  return {
    ids: tf.tensor2d([[3, 7, 1, 9, 4, 2], [5, 5, 8, 0, 0, 0]], undefined, 'int32'),
    mask: tf.tensor2d([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]]),
    labels: withLabels ? tf.tensor1d([1, 0], 'int32') : undefined,
  };
}

/** Trainable values with B ≠ 0, so that every LoRA tensor has a non-zero gradient. */
function values(model: Model, seed: number): Map<string, tf.Tensor> {
  return new Map(model.trainable.map((s, i) => [s.name, tf.randomNormal(s.shape, 0, 0.2, 'float32', seed + i)]));
}

for (const family of ['gpt2', 'llama'] as const) {
  for (const kind of ['causal-lm', 'classification'] as const) {
    describe(`${family} ${kind}`, () => {
      const task = kind === 'causal-lm' ? ({ kind } as const) : ({ kind, numLabels: 3 } as const);
      const { config, tensors } = randomCheckpoint(SHAPES[family], 11);
      const targets = family === 'gpt2' ? ['c_attn', 'c_fc'] : ['q_proj', 'v_proj', 'down_proj'];

      it('loss tangent = reverse-mode gradient · v = finite difference (LoRA dropout on, shared mask)', () => {
        const model = createModel(config, tensors, task, { r: 2, alpha: 4, dropout: 0.1, targetModules: targets });
        const vals = values(model, 3);
        const names = [...vals.keys()];
        const batch = batchOf(kind === 'classification');
        const f = (xs: { p: tf.Tensor; t: tf.Tensor | null }[]) => {
          const params: Params = new Map(names.map((n, i) => [n, xs[i]]));
          return lossOf(model, batch, params, 1234);
        };
        expectAgreement(checkTangents(f, names.map((n) => vals.get(n)!), undefined, { k: 2, h: 3e-3 }));
        model.dispose();
      });

      it('perturbing a subset leaves the others without tangents and still matches reverse mode', () => {
        const model = createModel(config, tensors, task, { r: 1, alpha: 1, dropout: 0, targetModules: targets });
        const vals = values(model, 5);
        const names = [...vals.keys()];
        const subset = names.map((n) => n.includes('layers.1') || n.includes('h.1'));
        const batch = batchOf(kind === 'classification');
        const f = (xs: { p: tf.Tensor; t: tf.Tensor | null }[]) => lossOf(model, batch, new Map(names.map((n, i) => [n, xs[i]])), null);
        expectAgreement(checkTangents(f, names.map((n) => vals.get(n)!), subset));
        model.dispose();
      });
    });
  }
}

describe('gradients with respect to the frozen weights (scripts/pretrain.ts trains them through model.base)', () => {
  it("tf.grads through GPT-2's tied embedding (its lookup and the LM head) = central finite difference", () => {
    const { config, tensors } = randomCheckpoint(SHAPES.gpt2, 1);
    const lm = { kind: 'causal-lm' } as const;
    const model = createModel(config, tensors, lm, { targetModules: [] });
    const batch = batchOf(false);
    const names = [...model.base.keys()];
    // the base names lack the checkpoint's "transformer." prefix, which pretrain.ts adds back
    expect(names.map((n) => `transformer.${n}`).sort()).toEqual([...tensors.keys()].sort());
    const grads = tf.grads(() => lossOf(model, batch, new Map(), null).p as tf.Scalar)(names.map((n) => model.base.get(n)!));
    const { shape, data } = tensors.get('transformer.wte.weight')!;
    const v = tf.randomNormal(shape, 0, 1, 'float32', 3).dataSync();
    const dot = tf.sum(tf.mul(grads[names.indexOf('wte.weight')], tf.tensor(v, shape))).dataSync()[0];
    const lossAt = (s: number) => {
      const moved = createModel(config, new Map([...tensors, ['transformer.wte.weight', { shape, data: Float32Array.from(data as Float32Array, (x, i) => x + s * v[i]) }]]), lm, { targetModules: [] });
      const l = tf.tidy(() => lossOf(moved, batch, new Map(), null).p.dataSync()[0]);
      moved.dispose();
      return l;
    };
    // h = 1e-3: truncation and float32 rounding (~1e-7·|L|/h) both stay near 1e-4 of the derivative
    const h = 1e-3;
    expect(Math.abs((lossAt(h) - lossAt(-h)) / (2 * h) - dot)).toBeLessThan(5e-3 * Math.abs(dot));
    tf.dispose(grads);
    model.dispose();
  });
});

describe('gradient estimators', () => {
  const { config, tensors } = randomCheckpoint(SHAPES.gpt2, 3);
  const task = { kind: 'classification', numLabels: 2 } as const;

  it('the forward gradient is unbiased, direction and scale: its projection on the true gradient is ‖g‖² (K = 8192)', () => {
    const model = createModel(config, tensors, task, { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] });
    const vals = values(model, 9);
    const names = [...vals.keys()];
    const batch = batchOf(true);
    const exact = backpropGradient(model, batch, vals, names, null);
    const k = 8192;
    const est = forwardGradient(model, batch, vals, names, k, 'unbiased', null);
    const flat = (m: Map<string, tf.Tensor>) => tf.concat(names.map((n) => m.get(n)!.reshape([-1])));
    const g = flat(exact.grads);
    const gHat = flat(est.grads);
    // ⟨ĝ, g⟩/‖g‖² = (1/K) Σ_k (g·v_k)²/‖g‖², a mean of K χ²₁ draws: 1 ± √(2/K) = 1 ± 0.016.
    // A tangent rule 10 % off moves it to ≈ 1.1 (or 1.21), far outside 4σ.
    const ratio = tf.sum(tf.mul(gHat, g)).dataSync()[0] / tf.sum(tf.mul(g, g)).dataSync()[0];
    expect(Math.abs(ratio - 1)).toBeLessThan(4 * Math.sqrt(2 / k));
    // the mean over tangents points along g: relative error √(d/K) with d ≈ 150 weights
    const cos = tf.div(tf.sum(tf.mul(g, gHat)), tf.mul(tf.norm(g), tf.norm(gHat))).dataSync()[0];
    expect(cos).toBeGreaterThan(0.95);
    expect(Math.abs(est.loss - exact.loss)).toBeLessThan(1e-5 * exact.loss);
    model.dispose();
  });

  // The zero-order estimators share the forward gradient's combination (1/K) Σ c_k v_k, so each is
  // unbiased with the right scale exactly when its coefficient c_k equals the jvp g·v_k.
  for (const [scheme, eps, tol] of [['central', 1e-2, 0.02], ['forward', 1e-3, 0.05]] as const) {
    it(`zero order (${scheme} differences): each coefficient is the jvp along the same direction, to ${tol * 100} %`, () => {
      const model = createModel(config, tensors, task, { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] });
      const vals = values(model, 4);
      const names = [...vals.keys()];
      const batch = batchOf(true);
      const fwd = forwardGradient(model, batch, vals, names, 4, 'same-z', null);
      const zo = zeroOrderGradient(model, batch, vals, names, { k: 4, eps, scheme, seed: 'same-z', dropoutSeed: null });
      for (const n of names) {
        const diff = tf.norm(tf.sub(fwd.grads.get(n)!, zo.grads.get(n)!)).dataSync()[0];
        const size = tf.norm(fwd.grads.get(n)!).dataSync()[0];
        expect(size).toBeGreaterThan(0);
        expect(diff).toBeLessThan(tol * size);
      }
      model.dispose();
    });
  }

  it('forward mode holds no activations: its peak tensor memory stays below backprop on a deeper model', async () => {
    const deep = randomCheckpoint({ family: 'gpt2', layers: 8, hidden: 32, heads: 2, vocab: 23, positions: 64 }, 1);
    const model = createModel(deep.config, deep.tensors, task, { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] });
    const vals = values(model, 2);
    const names = [...vals.keys()];
    const ids = tf.randomUniform([4, 64], 0, 23, 'int32') as tf.Tensor2D;
    const batch = { ids, mask: tf.ones([4, 64]) as tf.Tensor2D, labels: tf.tensor1d([0, 1, 1, 0], 'int32') };
    const peak = async (fn: () => { grads: Map<string, tf.Tensor> }) => {
      const info = await tf.profile(() => { tf.dispose([...fn().grads.values()]); });
      return info.peakBytes;
    };
    const fwd = await peak(() => forwardGradient(model, batch, vals, names, 1, 's', null));
    const bwd = await peak(() => backpropGradient(model, batch, vals, names, null));
    expect(fwd).toBeLessThan(bwd / 2);
    model.dispose();
  });
});
