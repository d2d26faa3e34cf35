// Forward-mode values over TensorFlow.js, in the manner of micrograd: a primal and, beside it,
// its tangents. The models' own ops are the IR's (src/worker/engine/ops.ts, each with its tangent
// rule); what stays here is the value type the Model interface returns and the loss computed on
// top of its logits.
//
// A Dual carries a primal `p` and K tangents `t` stacked on a leading axis, shape [K, ...p.shape].
// `t === null` means "the tangent is zero".
import * as tf from '@tensorflow/tfjs';

export interface Dual {
  p: tf.Tensor;
  t: tf.Tensor | null;
}

/** Dispose a value's tensors. */
export function disposeDual(x: Dual | null | undefined): void {
  if (!x) return;
  x.p.dispose();
  x.t?.dispose();
}

/**
 * Run `fn` in a tf.tidy scope and keep only the returned value: everything computed inside (an
 * op's temporaries) is freed as soon as the result exists.
 */
export function tidyDual(fn: () => Dual): Dual {
  const out = tf.tidy(() => {
    const d = fn();
    return d.t ? { p: d.p, t: d.t } : { p: d.p };
  }) as { p: tf.Tensor; t?: tf.Tensor };
  return { p: out.p, t: out.t ?? null };
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
