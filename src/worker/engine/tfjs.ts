// The IR run by TensorFlow.js ops, node by node: the fallback backend (models/ir_model.ts runs the
// families' graphs with it when ONNX Runtime is off or unavailable) and a second executor of the
// very graphs sent to ONNX Runtime, so that tf.grads through a whole model is an oracle for the
// engine's reverse mode, and the emitter's lowerings are checked against kernels written by others.
import * as tf from '@tensorflow/tfjs';
import type { Graph, Value } from './ir.ts';
import { live } from './jvp.ts';

type Kernel = (xs: tf.Tensor[], a: Record<string, unknown>) => tf.Tensor;

const GELU_C = Math.sqrt(2 / Math.PI);
const stats = (x: tf.Tensor, eps: number) => {
  const m = tf.moments(x, -1, true);
  return { mean: m.mean, rstd: tf.rsqrt(tf.add(m.variance, eps)) };
};
const axisOf = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** zeros of `shape` plus each row of ct at its index (tf.scatterND adds duplicates; wasm lacks UnsortedSegmentSum) */
const scatterRows = (ct: tf.Tensor, idx: tf.Tensor, shape: number[]) =>
  tf.scatterND(idx.reshape([-1, 1]), ct.reshape([idx.size, ...ct.shape.slice(idx.rank)]), shape);

/**
 * gather on axis 0, its gradient written with scatterND so that tf.grads runs on the wasm backend.
 * The indices are saved with the value (not captured), since a caller may free its feeds before
 * the backward pass runs.
 */
const gather0 = (x: tf.Tensor, idx: tf.Tensor) =>
  tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xs, ids, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([ids]);
    return {
      value: tf.gather(xs, ids, 0),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [scatterRows(dy as tf.Tensor, saved[0], xs.shape), tf.zerosLike(saved[0])],
    };
  })(x, idx) as tf.Tensor;

function matmul([a, b]: tf.Tensor[]): tf.Tensor {
  // a frozen weight: one 2-D product over all rows
  if (b.rank === 2 && a.rank > 2) return tf.matMul(a.reshape([-1, a.shape.at(-1)!]), b).reshape([...a.shape.slice(0, -1), b.shape[1]!]);
  const r = Math.max(a.rank, b.rank);
  const [ua, ub] = [a, b].map((t) => (t.rank < r ? t.reshape([...Array<number>(r - t.rank).fill(1), ...t.shape]) : t));
  // tfjs 4.22 returns a wrong-sized product when both operands broadcast ([1, B] against [K, 1]): expand both first
  const batch = ua.shape.slice(0, -2).map((d, i) => Math.max(d, ub.shape[i]));
  const full = (t: tf.Tensor) => (t.shape.slice(0, -2).every((d, i) => d === batch[i]) ? t : tf.broadcastTo(t, [...batch, ...t.shape.slice(-2)]));
  return tf.matMul(full(ua), full(ub));
}

const KERNELS: Record<string, Kernel> = {
  add: ([a, b]) => tf.add(a, b),
  sub: ([a, b]) => tf.sub(a, b),
  mul: ([a, b]) => tf.mul(a, b),
  div: ([a, b]) => tf.div(a, b),
  tanh: ([x]) => tf.tanh(x),
  exp: ([x]) => tf.exp(x),
  log: ([x]) => tf.log(x),
  sigmoid: ([x]) => tf.sigmoid(x),
  erf: ([x]) => tf.erf(x),
  pow: ([x], a) => tf.pow(x, a.p as number),
  gelu: ([x], a) =>
    a.approximate === 'tanh'
      ? tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(tf.mul(GELU_C, tf.add(x, tf.mul(0.044715, tf.mul(x, tf.mul(x, x))))))))
      : tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2)))),
  softmax: ([x]) => tf.softmax(x, -1),
  logSoftmax: ([x]) => tf.logSoftmax(x, -1),
  normalize: ([x], a) => {
    const { mean, rstd } = stats(x, a.eps as number);
    return tf.mul(tf.sub(x, mean), rstd);
  },
  invStd: ([x], a) => stats(x, a.eps as number).rstd,
  layerNorm: ([x, g, b], a) => {
    const { mean, rstd } = stats(x, a.eps as number);
    const y = tf.mul(tf.mul(tf.sub(x, mean), rstd), g);
    return b ? tf.add(y, b) : y;
  },
  matmul,
  // ONNX Reshape: 0 copies the input's dim, −1 is inferred
  reshape: ([x], a) => tf.reshape(x, (a.shape as number[]).map((d, i) => (d === 0 ? x.shape[i] : d))),
  reshapeLike: ([x, like]) => tf.reshape(x, like.shape),
  transpose: ([x], a) => tf.transpose(x, a.perm as number[]),
  unsqueeze: ([x], a) => [...(a.axes as number[])].sort((p, q) => p - q).reduce((y, ax) => tf.expandDims(y, ax), x),
  squeeze: ([x], a) => tf.squeeze(x, a.axes as number[]),
  slice: ([x], a) => {
    const ax = axisOf(a.axis as number, x.rank);
    const begin = x.shape.map((_, i) => (i === ax ? (a.start as number) : 0));
    const size = x.shape.map((d, i) => (i === ax ? Math.min(a.end as number, d) - (a.start as number) : -1));
    return tf.slice(x, begin, size);
  },
  pad: ([x], a) => tf.pad(x, x.shape.map((_, i) => (i === a.axis ? [a.before as number, a.after as number] : [0, 0])) as [number, number][]),
  concat: (xs, a) => tf.concat(xs, a.axis as number),
  zerosTangent: ([x, ref]) => tf.zeros([ref.shape[0], ...x.shape], x.dtype),
  expandLike: ([x, like]) => tf.broadcastTo(x, [x.shape[0], ...like.shape]),
  broadcastLike: ([x, like]) => tf.broadcastTo(x, like.shape),
  reduceSum: ([x], a) => tf.sum(x, a.axes as number[], a.keepdims as boolean),
  gather: ([x, idx], a) => (a.axis === 0 ? gather0(x, idx) : tf.gather(x, idx, a.axis as number)),
  scatterAddRows: ([ct, idx, like]) => scatterRows(ct, idx, like.shape),
};

/** A host array as a tensor, int64 as int32 (TensorFlow.js has no int64). */
export function hostTensor(data: Float32Array | Float64Array | BigInt64Array, shape: number[]): tf.Tensor {
  return data instanceof BigInt64Array ? tf.tensor(Int32Array.from(data, Number), shape, 'int32') : tf.tensor(data, shape, 'float32');
}

/**
 * A graph's constants (the frozen weights) as tensors. `shared` maps a constant's host array to
 * its tensor: the graphs traced from one model (with and without dropout, their jvp replays) hold
 * the same arrays, so each weight becomes a tensor once. The tensors are kept out of any enclosing
 * tf.tidy, since a graph may first run inside one; the owner of `shared` disposes them.
 */
export function constants(g: Graph, shared = new Map<object, tf.Tensor>()): Map<Value, tf.Tensor> {
  const out = new Map<Value, tf.Tensor>();
  for (const [v, c] of g.consts) {
    let t = shared.get(c.data);
    if (!t) {
      t = tf.keep(hostTensor(c.data, v.shape as number[]));
      shared.set(c.data, t);
    }
    out.set(v, t);
  }
  return out;
}

/** Run the nodes `outputs` need, freeing each intermediate after its last use. */
export function interpret(g: Graph, consts: Map<Value, tf.Tensor>, outputs: Record<string, Value>, feeds: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
  const need = live(g, Object.values(outputs));
  const vals = new Map<Value, tf.Tensor>(consts);
  for (const { value, name } of g.inputs) {
    if (!need.has(value)) continue;
    const f = feeds[name];
    if (!f) throw new Error(`no value for graph input "${name}"`);
    vals.set(value, f);
  }
  const nodes = g.nodes.filter((n) => need.has(n.out));
  const last = new Map<Value, number>();
  nodes.forEach((n, i) => n.inputs.forEach((x) => last.set(x, i)));
  const keep = new Set<Value>([...Object.values(outputs), ...consts.keys(), ...g.inputs.map((i) => i.value)]);
  nodes.forEach((n, i) => {
    const kernel = KERNELS[n.op];
    if (!kernel) throw new Error(`no TensorFlow.js kernel for op "${n.op}"`);
    // a kernel's temporaries (LayerNorm's statistics, GELU's terms) go as soon as its output exists
    vals.set(n.out, tf.tidy(() => kernel(n.inputs.map((x) => vals.get(x)!), n.attrs)));
    for (const x of new Set(n.inputs))
      if (last.get(x) === i && !keep.has(x)) {
        vals.get(x)!.dispose();
        vals.delete(x);
      }
  });
  return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, vals.get(v)!]));
}
