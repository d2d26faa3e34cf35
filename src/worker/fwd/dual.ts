// Forward-mode automatic differentiation over TensorFlow.js, in the manner of micrograd:
// every operation computes its primal and, right beside it, its tangent rule.
//
// A Dual carries a primal `p` and K tangents `t` stacked on a leading axis, shape [K, ...p.shape].
// `t === null` means "the tangent is zero": ops skip that term entirely, so the layers before the
// first perturbed weight run at plain inference cost, and K perturbations share one pass.
import * as tf from '@tensorflow/tfjs';

export interface Dual {
  p: tf.Tensor;
  t: tf.Tensor | null;
}

export const dual = (p: tf.Tensor, t: tf.Tensor | null = null): Dual => ({ p, t });
export const constant = (p: tf.Tensor): Dual => ({ p, t: null });

/** Number of tangents carried by any of the values (0 when none carries one). */
export function tangentCount(...xs: Dual[]): number {
  for (const x of xs) if (x.t) return x.t.shape[0];
  return 0;
}

/** x.t reshaped so that it broadcasts against an output of rank `rank` (leading tangent axis kept). */
function lift(x: Dual, rank: number): tf.Tensor | null {
  if (!x.t) return null;
  const s = x.p.shape;
  if (s.length === rank) return x.t;
  return tf.reshape(x.t, [x.t.shape[0], ...new Array(rank - s.length).fill(1), ...s]);
}

/** Sum of tangent terms, any of which may be absent; broadcast to the full [K, ...shape]. */
function sumTangents(shape: number[], ...terms: (tf.Tensor | null)[]): tf.Tensor | null {
  let acc: tf.Tensor | null = null;
  for (const term of terms) if (term) acc = acc ? tf.add(acc, term) : term;
  if (!acc) return null;
  const full = [acc.shape[0], ...shape];
  return acc.shape.every((d, i) => d === full[i]) && acc.rank === full.length ? acc : tf.broadcastTo(acc, full);
}

/** Dispose a value's tensors (used by callers that free activations layer by layer). */
export function disposeDual(x: Dual | null | undefined): void {
  if (!x) return;
  x.p.dispose();
  x.t?.dispose();
}

/**
 * Run `fn` in a tf.tidy scope and keep only the returned value: everything computed inside (an
 * op's temporaries, a layer's activations and their tangents) is freed as soon as the result exists.
 * The heavier ops below run their bodies this way, so forward mode's working memory stays at a few
 * activations and their tangents.
 */
export function tidyDual(fn: () => Dual): Dual {
  const out = tf.tidy(() => {
    const d = fn();
    return d.t ? { p: d.p, t: d.t } : { p: d.p };
  }) as { p: tf.Tensor; t?: tf.Tensor };
  return { p: out.p, t: out.t ?? null };
}

// ---------------------------------------------------------------- elementwise arithmetic

export function add(a: Dual, b: Dual): Dual {
  return tidyDual(() => {
    const p = tf.add(a.p, b.p);
    return { p, t: sumTangents(p.shape, lift(a, p.rank), lift(b, p.rank)) };
  });
}

export function sub(a: Dual, b: Dual): Dual {
  return tidyDual(() => {
    const p = tf.sub(a.p, b.p);
    const bt = lift(b, p.rank);
    return { p, t: sumTangents(p.shape, lift(a, p.rank), bt && tf.neg(bt)) };
  });
}

/** Product rule: (ab)' = a'b + ab'. */
export function mul(a: Dual, b: Dual): Dual {
  return tidyDual(() => {
    const p = tf.mul(a.p, b.p);
    const at = lift(a, p.rank);
    const bt = lift(b, p.rank);
    return { p, t: sumTangents(p.shape, at && tf.mul(at, b.p), bt && tf.mul(a.p, bt)) };
  });
}

/** Multiplication by a constant scalar. */
export function scale(a: Dual, c: number): Dual {
  return { p: tf.mul(a.p, c), t: a.t && tf.mul(a.t, c) };
}

// ---------------------------------------------------------------- shape operations (linear, so the tangent follows the primal)

export function reshape(x: Dual, shape: number[]): Dual {
  const p = tf.reshape(x.p, shape);
  return { p, t: x.t && tf.reshape(x.t, [x.t.shape[0], ...p.shape]) };
}

export function transpose(x: Dual, perm: number[]): Dual {
  return { p: tf.transpose(x.p, perm), t: x.t && tf.transpose(x.t, [0, ...perm.map((i) => i + 1)]) };
}

const axisOf = (x: Dual, axis: number) => (axis < 0 ? x.p.rank + axis : axis);

export function split(x: Dual, sizes: number[], axis = -1): Dual[] {
  const a = axisOf(x, axis);
  const ps = tf.split(x.p, sizes, a);
  const ts = x.t ? tf.split(x.t, sizes, a + 1) : null;
  return ps.map((p, i) => ({ p, t: ts ? ts[i] : null }));
}

export function concat(xs: Dual[], axis = -1): Dual {
  const a = axisOf(xs[0], axis);
  const p = tf.concat(xs.map((x) => x.p), a);
  if (!xs.some((x) => x.t)) return { p, t: null };
  const k = tangentCount(...xs);
  const ts = xs.map((x) => x.t ?? tf.zeros([k, ...x.p.shape]));
  return { p, t: tf.concat(ts, a + 1) };
}

/** Sum over `axis` (linear). */
export function sum(x: Dual, axis: number, keepDims = false): Dual {
  const a = axisOf(x, axis);
  return { p: tf.sum(x.p, a, keepDims), t: x.t && tf.sum(x.t, a + 1, keepDims) };
}

// ---------------------------------------------------------------- matrix products

/**
 * x @ w for x [..., n] and w [n, m]. Tangent: x'w + xw'. Both products are single matMuls:
 * the K tangents are folded into the row dimension (x') or the column dimension (w').
 */
export function matmul(x: Dual, w: Dual): Dual {
  return tidyDual(() => {
    const [n, m] = w.p.shape;
    const lead = x.p.shape.slice(0, -1);
    const rows = lead.reduce((a, b) => a * b, 1);
    const x2 = tf.reshape(x.p, [rows, n]);
    const p = tf.reshape(tf.matMul(x2, w.p), [...lead, m]);
    let t: tf.Tensor | null = null;
    if (x.t) {
      const k = x.t.shape[0];
      t = tf.reshape(tf.matMul(tf.reshape(x.t, [k * rows, n]), w.p), [k, ...lead, m]);
    }
    if (w.t) {
      const k = w.t.shape[0];
      const wk = tf.reshape(tf.transpose(w.t, [1, 0, 2]), [n, k * m]); // [n, K*m]
      const xw = tf.transpose(tf.reshape(tf.matMul(x2, wk), [rows, k, m]), [1, 0, 2]);
      const term = tf.reshape(xw, [k, ...lead, m]);
      t = t ? tf.add(t, term) : term;
    }
    return { p, t };
  });
}

/** Affine map x @ w + b (b optional). */
export function linear(x: Dual, w: Dual, b?: Dual | null): Dual {
  const y = matmul(x, w);
  return b ? add(y, b) : y;
}

/**
 * Batched a @ bᵀ or a @ b over the last two axes, for attention: a [..., T, d], b [..., S, d].
 * Tangent: a'b + ab'. The K tangents are folded into the T (or S) axis so each term is one batched matMul.
 */
export function batchMatmul(a: Dual, b: Dual, transposeB: boolean): Dual {
  return tidyDual(() => {
    const p = tf.matMul(a.p, b.p, false, transposeB);
    const r = a.p.rank;
    const batch = a.p.shape.slice(0, r - 2);
    // [K, ...batch, X, Y] -> [...batch, K*X, Y] and back
    const fold = (t: tf.Tensor) => {
      const k = t.shape[0];
      const [x, y] = t.shape.slice(-2);
      const perm = [...batch.map((_, i) => i + 1), 0, r - 1, r];
      return tf.reshape(tf.transpose(t, perm), [...batch, k * x, y]);
    };
    const unfold = (t: tf.Tensor, k: number, axis: 'rows' | 'cols') => {
      const [rows, cols] = t.shape.slice(-2);
      const nb = batch.length;
      if (axis === 'rows') {
        const u = tf.reshape(t, [...batch, k, rows / k, cols]);
        return tf.transpose(u, [nb, ...batch.map((_, i) => i), nb + 1, nb + 2]);
      }
      const u = tf.reshape(t, [...batch, rows, k, cols / k]);
      return tf.transpose(u, [nb + 1, ...batch.map((_, i) => i), nb, nb + 2]);
    };
    let t: tf.Tensor | null = null;
    if (a.t) {
      const k = a.t.shape[0];
      t = unfold(tf.matMul(fold(a.t), b.p, false, transposeB), k, 'rows');
    }
    if (b.t) {
      const k = b.t.shape[0];
      let term: tf.Tensor;
      if (transposeB) {
        // a @ (b')ᵀ with b' folded on its S axis gives [..., T, K*S]
        term = unfold(tf.matMul(a.p, fold(b.t), false, true), k, 'cols');
      } else {
        // a @ b' with b' [K, ..., S, d]: fold K into the columns: [..., S, K*d]
        const perm = [...batch.map((_, i) => i + 1), r - 1, 0, r];
        const [s, d] = b.t.shape.slice(-2);
        const bk = tf.reshape(tf.transpose(b.t, perm), [...batch, s, k * d]);
        term = unfold(tf.matMul(a.p, bk), k, 'cols');
      }
      t = t ? tf.add(t, term) : term;
    }
    return { p, t };
  });
}

// ---------------------------------------------------------------- lookups and selections

/** Rows of `table` [V, D] at integer `ids` (any shape); the tangent is a lookup of the table's tangent. */
export function embedding(table: Dual, ids: tf.Tensor): Dual {
  return { p: tf.gather(table.p, ids), t: table.t && tf.gather(table.t, ids, 1) };
}

/**
 * x [B, T, D] at one position per row, pos [B] (int32): last-token or first-token pooling.
 * A one-hot contraction rather than a gather, so that reverse mode works on the wasm backend.
 */
export function takePositions(x: Dual, pos: tf.Tensor): Dual {
  const select = tf.expandDims(tf.oneHot(tf.cast(pos, 'int32'), (x.p.shape as number[])[1]), -1); // [B, T, 1]
  return { p: tf.sum(tf.mul(x.p, select), 1), t: x.t && tf.sum(tf.mul(x.t, select), 2) };
}

/** Mean over the T axis of x [B, T, D] counting only positions where mask [B, T] is 1. */
export function maskedMeanPool(x: Dual, mask: tf.Tensor): Dual {
  const m = tf.expandDims(tf.cast(mask, 'float32'), -1); // [B, T, 1]
  const denom = tf.maximum(tf.sum(m, 1), 1); // [B, 1]
  const p = tf.div(tf.sum(tf.mul(x.p, m), 1), denom);
  const t = x.t && tf.div(tf.sum(tf.mul(x.t, m), 2), denom);
  return { p, t };
}

// ---------------------------------------------------------------- nonlinearities

/**
 * Elementwise f with derivative f'(x): tangent = f'(x) · x'. Each side in its own tidy scope, so the
 * temporaries of f and f' (several activation-sized tensors for GELU) are freed at once.
 */
function elementwise(x: Dual, f: (p: tf.Tensor) => tf.Tensor, df: (p: tf.Tensor) => tf.Tensor): Dual {
  return { p: tf.tidy(() => f(x.p)), t: x.t && tf.tidy(() => tf.mul(x.t!, df(x.p))) };
}

const GELU_C = Math.sqrt(2 / Math.PI);

/** GELU, tanh approximation (GPT-2's "gelu_new"): 0.5x(1 + tanh(c(x + 0.044715x³))). */
export function geluTanh(x: Dual): Dual {
  const u = (v: tf.Tensor) => tf.mul(GELU_C, tf.add(v, tf.mul(0.044715, tf.pow(v, 3))));
  return elementwise(
    x,
    (v) => tf.mul(tf.mul(0.5, v), tf.add(1, tf.tanh(u(v)))),
    (v) => {
      const th = tf.tanh(u(v));
      const du = tf.mul(GELU_C, tf.add(1, tf.mul(3 * 0.044715, tf.square(v))));
      return tf.add(tf.mul(0.5, tf.add(1, th)), tf.mul(tf.mul(0.5, v), tf.mul(tf.sub(1, tf.square(th)), du)));
    },
  );
}

/** Exact GELU (BERT's "gelu"): 0.5x(1 + erf(x/√2)); derivative Φ(x) + x φ(x). */
export function geluErf(x: Dual): Dual {
  return elementwise(
    x,
    (v) => tf.mul(tf.mul(0.5, v), tf.add(1, tf.erf(tf.mul(v, Math.SQRT1_2)))),
    (v) =>
      tf.add(
        tf.mul(0.5, tf.add(1, tf.erf(tf.mul(v, Math.SQRT1_2)))),
        tf.mul(v, tf.mul(1 / Math.sqrt(2 * Math.PI), tf.exp(tf.mul(-0.5, tf.square(v))))),
      ),
  );
}

/** SiLU x·σ(x); derivative σ(x)(1 + x(1 − σ(x))). */
export function silu(x: Dual): Dual {
  return elementwise(
    x,
    (v) => tf.mul(v, tf.sigmoid(v)),
    (v) => {
      const s = tf.sigmoid(v);
      return tf.mul(s, tf.add(1, tf.mul(v, tf.sub(1, s))));
    },
  );
}

export function tanh(x: Dual): Dual {
  return elementwise(x, tf.tanh, (v) => tf.sub(1, tf.square(tf.tanh(v))));
}

/** Softmax over the last axis; tangent s ⊙ (x' − Σ s x'). */
export function softmax(x: Dual): Dual {
  return tidyDual(() => {
    const s = tf.softmax(x.p);
    if (!x.t) return { p: s, t: null };
    const inner = tf.sum(tf.mul(s, x.t), -1, true);
    return { p: s, t: tf.mul(s, tf.sub(x.t, inner)) };
  });
}

/**
 * Dropout with one mask shared by the primal and every tangent (the perturbed function is the same
 * function). `rate` 0 or `seed` null (evaluation) is the identity.
 */
export function dropout(x: Dual, rate: number, seed: number | null): Dual {
  if (rate <= 0 || seed === null) return x;
  const keep = tf.div(tf.cast(tf.greaterEqual(tf.randomUniform(x.p.shape, 0, 1, 'float32', seed), rate), 'float32'), 1 - rate);
  return { p: tf.mul(x.p, keep), t: x.t && tf.mul(x.t, keep) };
}
