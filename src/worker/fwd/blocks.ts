// Composite blocks of the model families, each with its tangent rule in plain view:
// normalisations, rotary embeddings, attention, and the losses.
import * as tf from '@tensorflow/tfjs';
import { type Dual, add, batchMatmul, concat, disposeDual, mul, reshape, scale, softmax, split, tidyDual, transpose } from './dual.ts';

const mean = (x: tf.Tensor) => tf.mean(x, -1, true);

/**
 * LayerNorm over the last axis: x̂ = (x − μ)/σ, y = γx̂ + β.
 * Tangent of x̂: (x'c − x̂ ⟨x̂, x'c⟩/n) / σ with x'c = x' − mean(x').
 */
export function layerNorm(x: Dual, gamma: Dual, beta: Dual | null, eps: number): Dual {
  return tidyDual(() => {
    const xc = tf.sub(x.p, mean(x.p));
    const rstd = tf.rsqrt(tf.add(mean(tf.square(xc)), eps));
    const xhat = tf.mul(xc, rstd);
    let xhatT: tf.Tensor | null = null;
    if (x.t) {
      const tc = tf.sub(x.t, mean(x.t));
      xhatT = tf.mul(rstd, tf.sub(tc, tf.mul(xhat, mean(tf.mul(xhat, tc)))));
    }
    const y = mul({ p: xhat, t: xhatT }, gamma);
    return beta ? add(y, beta) : y;
  });
}

/**
 * RMSNorm (Llama): x̂ = x / √(mean(x²) + ε), y = γx̂.
 * Tangent of x̂: (x' − x̂ ⟨x̂, x'⟩/n) / rms.
 */
export function rmsNorm(x: Dual, gamma: Dual, eps: number): Dual {
  return tidyDual(() => {
    const r = tf.rsqrt(tf.add(mean(tf.square(x.p)), eps));
    const xhat = tf.mul(x.p, r);
    const xhatT = x.t && tf.mul(r, tf.sub(x.t, tf.mul(xhat, mean(tf.mul(xhat, x.t)))));
    return mul({ p: xhat, t: xhatT }, gamma);
  });
}

/** cos and sin tables [T, d] at positions 0..T-1 from the d/2 inverse frequencies (HF layout: halves repeated). */
export function ropeTables(seqLen: number, invFreq: ArrayLike<number>): { cos: tf.Tensor; sin: tf.Tensor } {
  return tf.tidy(() => {
    const angles = tf.outerProduct(tf.range(0, seqLen, 1, 'float32'), tf.tensor1d(Float32Array.from(invFreq)));
    const emb = tf.concat([angles, angles], -1);
    return { cos: tf.cos(emb), sin: tf.sin(emb) };
  });
}

/** x·cos + rotate_half(x)·sin on x [B, H, T, d], Hugging Face's rotate-half convention. Linear in x. */
export function rope(x: Dual, cos: tf.Tensor, sin: tf.Tensor): Dual {
  const d = x.p.shape[x.p.rank - 1];
  const [x1, x2] = split(x, [d / 2, d / 2], -1);
  const rotated = concat([scale(x2, -1), x1], -1);
  return add(mul(x, { p: cos, t: null }), mul(rotated, { p: sin, t: null }));
}

/**
 * Repeat each key/value head `rep` times consecutively ([h0, h0, h1, h1]), as HF's repeat_kv.
 * Written as a rank-3 tile (not gather, not a higher-rank tile) so that reverse mode works on wasm.
 */
function repeatKv(x: Dual, rep: number): Dual {
  if (rep === 1) return x;
  const expand = (v: tf.Tensor) => {
    const s = v.shape;
    const h = s.length - 3; // the head axis
    const lead = s.slice(0, h + 1).reduce((a, b) => a * b, 1);
    const tiled = tf.tile(tf.reshape(v, [lead, 1, s[h + 1] * s[h + 2]]), [1, rep, 1]);
    return tf.reshape(tiled, [...s.slice(0, h), s[h] * rep, s[h + 1], s[h + 2]]);
  };
  return { p: expand(x.p), t: x.t && expand(x.t) };
}

/**
 * Additive attention bias [B, 1, T, S]: −1e9 where a key is padding (keyMask 0) or, if causal,
 * in the future. Built once per forward pass and shared by every layer.
 */
export function attentionBias(keyMask: tf.Tensor, causal: boolean): tf.Tensor {
  return tf.tidy(() => {
    const [, s] = keyMask.shape;
    let allowed = tf.reshape(tf.cast(keyMask, 'float32'), [keyMask.shape[0], 1, 1, s]);
    if (causal) allowed = tf.mul(allowed, tf.reshape(tf.linalg.bandPart(tf.ones([s, s]), -1, 0), [1, 1, s, s]));
    return tf.mul(tf.sub(1, allowed), -1e9);
  });
}

/**
 * Scaled dot-product attention: softmax(q kᵀ/√d + bias) v, for q [B, H, T, d] and k, v [B, Hkv, S, d]
 * (grouped-query when Hkv < H). Every step is a Dual op, so the tangent is exact.
 */
export function attention(q: Dual, k: Dual, v: Dual, bias: tf.Tensor): Dual {
  const [, heads, , d] = q.p.shape as number[];
  const rep = heads / (k.p.shape as number[])[1];
  const kk = repeatKv(k, rep);
  const vv = repeatKv(v, rep);
  // the scores and their tangents are freed as soon as the probabilities exist
  const probs = tidyDual(() => softmax(add(scale(batchMatmul(q, kk, true), 1 / Math.sqrt(d)), { p: bias, t: null })));
  const out = batchMatmul(probs, vv, false);
  disposeDual(probs);
  return out;
}

/** [B, T, H*d] → [B, H, T, d]. */
export function splitHeads(x: Dual, heads: number): Dual {
  const [b, t, hd] = x.p.shape;
  return transpose(reshape(x, [b, t, heads, hd / heads]), [0, 2, 1, 3]);
}

/** [B, H, T, d] → [B, T, H*d]. */
export function mergeHeads(x: Dual): Dual {
  const [b, h, t, d] = x.p.shape;
  return reshape(transpose(x, [0, 2, 1, 3]), [b, t, h * d]);
}

/**
 * Cross-entropy of logits [..., C] against integer targets [...], averaged over positions where
 * `weights` [...] is non-zero (padding excluded). Returns the scalar loss and, per tangent, its
 * directional derivative: −Σ w (x'[y] − Σ softmax(x) x') / Σ w, shape [K].
 */
export function crossEntropy(logits: Dual, targets: tf.Tensor, weights: tf.Tensor): Dual {
  return tidyDual(() => {
    const c = logits.p.shape[logits.p.rank - 1];
    const onehot = tf.oneHot(tf.cast(targets, 'int32'), c);
    const w = tf.cast(weights, 'float32');
    const n = tf.maximum(tf.sum(w), 1);
    const logp = tf.logSoftmax(logits.p);
    const p = tf.div(tf.neg(tf.sum(tf.mul(w, tf.sum(tf.mul(onehot, logp), -1)))), n);
    if (!logits.t) return { p, t: null };
    const probs = tf.exp(logp);
    const dlogp = tf.sub(logits.t, tf.sum(tf.mul(probs, logits.t), -1, true)); // tangent of log-softmax
    const picked = tf.sum(tf.mul(onehot, dlogp), -1); // [K, ...]
    const t = tf.div(tf.neg(tf.sum(tf.reshape(tf.mul(w, picked), [picked.shape[0], -1]), 1)), n);
    return { p, t };
  });
}
