// The primitive ops of the IR, JAX-style: each op's shape rule, its ONNX lowering, its tangent rule
// (jvp) and its transpose rule (vjp) side by side, so a reader checks a derivative without leaving
// the op. The builders at the bottom (add, matmul, softmax, ...) are what models are written with.
//
// Tangents carry K directions on a leading axis: the tangent of a value of shape S has shape
// [K, ...S]. Axes in attrs are negative where they count from the end, so a rule applies the same
// op to the tangent unchanged; positive axes are shifted by one. A null tangent is zero and costs
// nothing. Cotangents (vjp) have the primal's shape: reverse mode is run on one loss at a time.
import { type Attrs, type DType, type Dim, type Node, Value, broadcastShapes, normAxis, staticSize } from './ir.ts';

/** What a lowering writes into the ONNX graph. */
export interface Emit {
  /** one ONNX node; returns its output names */
  node(op: string, inputs: string[], attrs?: Attrs, outputs?: number): string[];
  /** an int64 constant (shapes, axes, indices) */
  i64(values: number[]): string;
  /** a real scalar constant of the graph's float type */
  real(x: number): string;
  /** a vector of n copies of x in the graph's float type */
  reals(x: number, n: number): string;
  /** the graph's float type as an ONNX TensorProto data type */
  floatType: number;
  double: boolean;
}

export interface OpDef {
  shape(ins: Value[], a: Attrs): Dim[];
  dtype?(ins: Value[], a: Attrs): DType;
  onnx(e: Emit, ins: string[], a: Attrs, node: Node): string;
  /** tangent of the output, from the inputs' tangents (null = zero) and the primal output y */
  jvp?(ins: Value[], tans: (Value | null)[], y: Value, a: Attrs): Value | null;
  /** the output and its tangent computed together (a frozen-weight MatMul stacks them) */
  jvpWithPrimal?(ins: Value[], tans: (Value | null)[], a: Attrs): [Value, Value | null] | null;
  /** cotangent of each input from the output's cotangent ct */
  vjp?(ins: Value[], y: Value, ct: Value, a: Attrs): (Value | null)[];
}

export const OPS: Record<string, OpDef> = {};

/** Append `op` to the graph of its first input, with its output shape from the op's shape rule. */
export function emit(op: string, ins: Value[], a: Attrs = {}): Value {
  const def = OPS[op];
  if (!def) throw new Error(`unknown op "${op}"`);
  return ins[0].g.apply(op, ins, a, def.shape(ins, a), def.dtype?.(ins, a) ?? ins[0].dtype);
}

const one = (e: Emit, op: string, ins: string[], a: Attrs = {}) => e.node(op, ins, a)[0];
/** a positive axis moves by one on a tangent (the K axis comes first); a negative one stays */
const tanAxis = (axis: number) => (axis < 0 ? axis : axis + 1);
const sumTerms = (...ts: (Value | null)[]): Value | null => ts.reduce<Value | null>((acc, t) => (t ? (acc ? add(acc, t) : t) : acc), null);

/** x's tangent [K, ...s] with 1s inserted after K so that it broadcasts against rank `rank` outputs. */
export function lift(t: Value, rank: number): Value {
  const missing = rank + 1 - t.rank;
  return missing > 0 ? unsqueeze(t, Array.from({ length: missing }, (_, i) => i + 1)) : t;
}

/** Sum ct down to `shape` over the axes a broadcast expanded (the transpose of broadcasting). */
export function unbroadcast(ct: Value, shape: Dim[]): Value {
  const lead = ct.rank - shape.length;
  let out = ct;
  if (lead > 0) out = reduceSum(out, Array.from({ length: lead }, (_, i) => i), false);
  const ones = shape.map((d, i) => (d === 1 && out.shape[i] !== 1 ? i : -1)).filter((i) => i >= 0);
  return ones.length ? reduceSum(out, ones, true) : out;
}

// ---------------------------------------------------------------- elementwise binary ops

const broadcast = (name: string) => (ins: Value[]) => broadcastShapes(ins[0].shape, ins[1].shape, name);
const liftTo = (t: Value | null, y: Value) => t && lift(t, y.rank);

OPS.add = {
  shape: broadcast('add'),
  onnx: (e, [a, b]) => one(e, 'Add', [a, b]),
  jvp: (_, [ta, tb], y) => sumTerms(liftTo(ta, y), liftTo(tb, y)),
  vjp: ([a, b], _, ct) => [unbroadcast(ct, a.shape), unbroadcast(ct, b.shape)],
};

OPS.sub = {
  shape: broadcast('sub'),
  onnx: (e, [a, b]) => one(e, 'Sub', [a, b]),
  jvp: (_, [ta, tb], y) => (tb ? (ta ? sub(liftTo(ta, y)!, liftTo(tb, y)!) : neg(liftTo(tb, y)!)) : liftTo(ta, y)),
  vjp: ([a, b], _, ct) => [unbroadcast(ct, a.shape), unbroadcast(neg(ct), b.shape)],
};

/** Product rule: (ab)' = a'b + ab'. */
OPS.mul = {
  shape: broadcast('mul'),
  onnx: (e, [a, b]) => one(e, 'Mul', [a, b]),
  jvp: ([a, b], [ta, tb], y) => sumTerms(ta && mul(liftTo(ta, y)!, b), tb && mul(a, liftTo(tb, y)!)),
  vjp: ([a, b], _, ct) => [unbroadcast(mul(ct, b), a.shape), unbroadcast(mul(a, ct), b.shape)],
};

/** Quotient rule: (a/b)' = a'/b − (a/b)·b'/b. */
OPS.div = {
  shape: broadcast('div'),
  onnx: (e, [a, b]) => one(e, 'Div', [a, b]),
  jvp: ([, b], [ta, tb], y) => sumTerms(ta && div(liftTo(ta, y)!, b), tb && neg(div(mul(y, liftTo(tb, y)!), b))),
  vjp: ([a, b], y, ct) => [unbroadcast(div(ct, b), a.shape), unbroadcast(neg(div(mul(ct, y), b)), b.shape)],
};

// ---------------------------------------------------------------- elementwise unary ops: y = f(x), y' = f'(x)·x'

function unary(onnxOp: string, d: (x: Value, y: Value, a: Attrs) => Value, lower?: (e: Emit, x: string, a: Attrs) => string): OpDef {
  return {
    shape: ([x]) => x.shape,
    onnx: (e, [x], a) => (lower ? lower(e, x, a) : one(e, onnxOp, [x])),
    jvp: ([x], [t], y, a) => t && mul(t, d(x, y, a)),
    vjp: ([x], y, ct, a) => [mul(ct, d(x, y, a))],
  };
}

OPS.tanh = unary('Tanh', (_, y) => sub(y.g.scalar(1), mul(y, y)));
OPS.exp = unary('Exp', (_, y) => y);
OPS.log = unary('Log', (x) => div(x.g.scalar(1), x));
OPS.sigmoid = unary('Sigmoid', (_, y) => mul(y, sub(y.g.scalar(1), y)));
/** erf'(x) = 2/√π · exp(−x²) */
OPS.erf = unary('Erf', (x) => mul(x.g.scalar(2 / Math.sqrt(Math.PI)), exp(mul(x.g.scalar(-1), mul(x, x)))));
/** x^p for a constant p: p·x^(p−1) */
OPS.pow = unary('Pow', (x, _, a) => mul(x.g.scalar(a.p as number), pow(x, (a.p as number) - 1)), (e, x, a) => one(e, 'Pow', [x, e.real(a.p as number)]));

const GELU_C = Math.sqrt(2 / Math.PI);
const GELU_A = 0.044715;

/**
 * GELU: 'tanh' is GPT-2's gelu_new, 0.5x(1 + tanh(c(x + a x³))); 'none' is the exact 0.5x(1 + erf(x/√2)).
 * Lowered to ONNX Gelu (opset 20) in float graphs; written out in double graphs, where ORT has no kernel.
 */
OPS.gelu = unary(
  'Gelu',
  (x, _, a) => {
    const g = x.g;
    if (a.approximate === 'tanh') {
      // ½(1 + th) + ½x(1 − th²)u' with th = tanh(u), u = x(c + ca x²), u' = c + 3ca x² (no Pow: it is slow)
      const x2 = mul(x, x);
      const th = tanh(mul(x, add(g.scalar(GELU_C), mul(g.scalar(GELU_C * GELU_A), x2))));
      const du = add(g.scalar(GELU_C), mul(g.scalar(3 * GELU_C * GELU_A), x2));
      return mul(g.scalar(0.5), add(add(g.scalar(1), th), mul(mul(x, sub(g.scalar(1), mul(th, th))), du)));
    }
    // Φ(x) + x φ(x)
    const cdf = mul(g.scalar(0.5), add(g.scalar(1), erf(mul(x, g.scalar(Math.SQRT1_2)))));
    return add(cdf, mul(x, mul(g.scalar(1 / Math.sqrt(2 * Math.PI)), exp(mul(g.scalar(-0.5), mul(x, x))))));
  },
  (e, x, a) => {
    if (!e.double) return one(e, 'Gelu', [x], { approximate: a.approximate });
    const half = one(e, 'Mul', [x, e.real(0.5)]);
    let inner: string;
    if (a.approximate === 'tanh') {
      const cube = one(e, 'Mul', [one(e, 'Mul', [x, x]), x]);
      inner = one(e, 'Tanh', [one(e, 'Mul', [e.real(GELU_C), one(e, 'Add', [x, one(e, 'Mul', [e.real(GELU_A), cube])])])]);
    } else inner = one(e, 'Erf', [one(e, 'Mul', [x, e.real(Math.SQRT1_2)])]);
    return one(e, 'Mul', [half, one(e, 'Add', [e.real(1), inner])]);
  },
);

// ---------------------------------------------------------------- normalisations and softmax over the last axis

const mean = (x: Value) => mul(reduceSum(x, [-1], true), x.g.scalar(1 / (x.shape[x.rank - 1] as number)));

/** Softmax: s' = s ⊙ (x' − ⟨s, x'⟩); the transpose is the same map on the cotangent. */
OPS.softmax = {
  shape: ([x]) => x.shape,
  onnx: (e, [x]) => one(e, 'Softmax', [x], { axis: -1 }),
  jvp: (_, [t], s) => t && mul(s, sub(t, reduceSum(mul(s, t), [-1], true))),
  vjp: (_, s, ct) => [mul(s, sub(ct, reduceSum(mul(s, ct), [-1], true)))],
};

/** log-softmax: l' = x' − ⟨softmax(x), x'⟩; transpose ct − softmax(x)·Σct. */
OPS.logSoftmax = {
  shape: ([x]) => x.shape,
  onnx: (e, [x]) => one(e, 'LogSoftmax', [x], { axis: -1 }),
  jvp: (_, [t], l) => t && sub(t, reduceSum(mul(exp(l), t), [-1], true)),
  vjp: (_, l, ct) => [sub(ct, mul(exp(l), reduceSum(ct, [-1], true)))],
};

/** x̂ = (x − μ)/σ over the last axis: a LayerNormalization with γ = 1, β = 0 (one kernel). */
OPS.normalize = {
  shape: ([x]) => x.shape,
  onnx: (e, [x], a, node) => {
    const d = node.inputs[0].shape.at(-1) as number;
    return one(e, 'LayerNormalization', [x, e.reals(1, d), e.reals(0, d)], { axis: -1, epsilon: a.eps });
  },
};

/** 1/σ over the last axis, keepdims: LayerNormalization's third output. */
OPS.invStd = {
  shape: ([x]) => [...x.shape.slice(0, -1), 1],
  onnx: (e, [x], a, node) => {
    const d = node.inputs[0].shape.at(-1) as number;
    if (!e.double) return e.node('LayerNormalization', [x, e.reals(1, d), e.reals(0, d)], { axis: -1, epsilon: a.eps }, 3)[2];
    // ORT has no double kernel with double statistics: written out
    const axes = e.i64([-1]);
    const xc = one(e, 'Sub', [x, one(e, 'ReduceMean', [x, axes])]);
    const variance = one(e, 'ReduceMean', [one(e, 'Mul', [xc, xc]), axes]);
    return one(e, 'Pow', [one(e, 'Add', [variance, e.real(a.eps as number)]), e.real(-0.5)]);
  },
};

function normalized(x: Value, eps: number): { xhat: Value; rstd: Value } {
  return { xhat: emit('normalize', [x], { eps }), rstd: emit('invStd', [x], { eps }) };
}

/**
 * LayerNorm y = γx̂ + β (ONNX LayerNormalization, axis −1). Tangent of x̂: (x'c − x̂⟨x̂, x'c⟩/n)/σ
 * with x'c = x' − mean(x'); its transpose is the same projection applied to γ·ct.
 */
OPS.layerNorm = {
  shape: ([x]) => x.shape,
  onnx: (e, ins, a) => one(e, 'LayerNormalization', ins, { axis: -1, epsilon: a.eps }),
  jvp: ([x, g], [tx, tg, tb], y, a) => {
    const { xhat, rstd } = normalized(x, a.eps as number);
    let th: Value | null = null;
    // ⟨x̂, x'c⟩ = ⟨x̂, x'⟩ since Σx̂ = 0
    if (tx) th = mul(rstd, sub(sub(tx, mean(tx)), mul(xhat, mean(mul(xhat, tx)))));
    return sumTerms(th && mul(th, g), tg && mul(xhat, liftTo(tg, y)!), tb && liftTo(tb, y));
  },
  vjp: ([x, g, b], _, ct, a) => {
    const { xhat, rstd } = normalized(x, a.eps as number);
    const dh = mul(ct, g);
    const dx = mul(rstd, sub(sub(dh, mean(dh)), mul(xhat, mean(mul(dh, xhat)))));
    return [dx, unbroadcast(mul(ct, xhat), g.shape), b ? unbroadcast(ct, b.shape) : null];
  },
};

// ---------------------------------------------------------------- matrix product

/** Swap the last two axes. */
const mT = (x: Value) => transpose(x, [...Array.from({ length: x.rank - 2 }, (_, i) => i), x.rank - 1, x.rank - 2]);

/**
 * a @ b with numpy broadcasting of the batch axes. Tangent a'b + ab'. When b is a frozen weight
 * (rank 2, no tangent) the value rows and the K tangent rows go through ONE MatMul: ORT prepacks a
 * weight once per consuming node, and one bigger product is faster than two.
 */
OPS.matmul = {
  shape: ([a, b]) => {
    const [m, k1] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k1 !== k2) throw new Error(`matmul: inner dimensions ${k1} and ${k2} differ ([${a.shape}] @ [${b.shape}])`);
    return [...broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul'), m, n];
  },
  onnx: (e, [a, b]) => one(e, 'MatMul', [a, b]),
  jvpWithPrimal: ([a, b], [ta, tb]) => {
    if (!ta || tb || b.rank !== 2 || !b.g.consts.has(b)) return null;
    const stacked = matmul(concat([unsqueeze(a, [0]), ta], 0), b);
    return [gather(stacked, b.g.int64Scalar(0), 0), slice(stacked, 0, 1, Number.MAX_SAFE_INTEGER)];
  },
  jvp: ([a, b], [ta, tb], y) => sumTerms(ta && matmul(liftTo(ta, y)!, b), tb && matmul(a, liftTo(tb, y)!)),
  vjp: ([a, b], _, ct) => [unbroadcast(matmul(ct, mT(b)), a.shape), unbroadcast(matmul(mT(a), ct), b.shape)],
};

// ---------------------------------------------------------------- shape ops (linear: the tangent follows the primal)

/** ONNX Reshape semantics: 0 copies the input's dim at that index, −1 is inferred. */
OPS.reshape = {
  shape: ([x], a) => {
    const spec = a.shape as number[];
    const out: Dim[] = spec.map((d, i) => (d === 0 ? x.shape[i] : d));
    const infer = spec.indexOf(-1);
    if (infer >= 0) {
      const rest = x.shape.filter((_, i) => !(spec[i] === 0));
      const known = spec.filter((d) => d > 0).reduce((p, d) => p * d, 1);
      const statics = rest.filter((d) => typeof d === 'number').reduce((p, d) => p * (d as number), 1);
      const named = rest.filter((d) => typeof d === 'string');
      if (statics % known !== 0) throw new Error(`reshape: [${x.shape}] does not fit [${spec}]`);
      const n = statics / known;
      out[infer] = named.length === 0 ? n : [...named, ...(n === 1 ? [] : [String(n)])].join('*');
    }
    return out;
  },
  onnx: (e, [x], a) => one(e, 'Reshape', [x, e.i64(a.shape as number[])]),
  jvp: (_, [t], __, a) => t && reshape(t, [0, ...(a.shape as number[])]),
  vjp: ([x], _, ct) => [reshapeLike(ct, x)],
};

/** Reshape to another value's (runtime) shape: the transpose of reshape. */
OPS.reshapeLike = {
  shape: ([, like]) => like.shape,
  onnx: (e, [x, like]) => one(e, 'Reshape', [x, one(e, 'Shape', [like])]),
};

OPS.transpose = {
  shape: ([x], a) => (a.perm as number[]).map((p) => x.shape[p]),
  onnx: (e, [x], a) => one(e, 'Transpose', [x], { perm: a.perm }),
  jvp: (_, [t], __, a) => t && transpose(t, [0, ...(a.perm as number[]).map((p) => p + 1)]),
  vjp: (_, __, ct, a) => {
    const perm = a.perm as number[];
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [transpose(ct, inv)];
  },
};

OPS.unsqueeze = {
  shape: ([x], a) => {
    const out = [...x.shape];
    for (const ax of a.axes as number[]) out.splice(ax, 0, 1);
    return out;
  },
  onnx: (e, [x], a) => one(e, 'Unsqueeze', [x, e.i64(a.axes as number[])]),
  jvp: (_, [t], __, a) => t && unsqueeze(t, (a.axes as number[]).map((ax) => ax + 1)),
  vjp: (_, __, ct, a) => [squeeze(ct, a.axes as number[])],
};

OPS.squeeze = {
  shape: ([x], a) => x.shape.filter((_, i) => !(a.axes as number[]).includes(i)),
  onnx: (e, [x], a) => one(e, 'Squeeze', [x, e.i64(a.axes as number[])]),
  jvp: (_, [t], __, a) => t && squeeze(t, (a.axes as number[]).map((ax) => ax + 1)),
  vjp: (_, __, ct, a) => [unsqueeze(ct, a.axes as number[])],
};

/** x[start:end] along one static axis; the transpose pads the cotangent back with zeros. */
OPS.slice = {
  shape: ([x], a) => {
    const ax = normAxis(a.axis as number, x.rank);
    const out = [...x.shape];
    const n = out[ax];
    const start = a.start as number;
    const end = a.end as number;
    if (typeof n === 'number') out[ax] = Math.min(end, n) - start;
    else if (end < Number.MAX_SAFE_INTEGER) out[ax] = end - start;
    // to the end of a named dim; a stacked [1 + K] axis sliced from 1 gives back K
    else out[ax] = n.startsWith(`${start}+`) ? n.slice(String(start).length + 1) : `${n}-${start}`;
    return out;
  },
  onnx: (e, [x], a) => one(e, 'Slice', [x, e.i64([a.start as number]), e.i64([a.end as number]), e.i64([a.axis as number])]),
  jvp: (_, [t], __, a) => t && slice(t, tanAxis(a.axis as number), a.start as number, a.end as number),
  vjp: ([x], _, ct, a) => {
    const ax = normAxis(a.axis as number, x.rank);
    const n = staticSize([x.shape[ax]], 'slice transpose');
    return [pad(ct, ax, a.start as number, n - Math.min(a.end as number, n))];
  },
};

/** Zero padding along one axis (ONNX Pad, opset 18 axes input). */
OPS.pad = {
  shape: ([x], a) => {
    const ax = a.axis as number;
    const out = [...x.shape];
    out[ax] = (staticSize([out[ax]], 'pad') + (a.before as number) + (a.after as number)) as number;
    return out;
  },
  onnx: (e, [x], a) => one(e, 'Pad', [x, e.i64([a.before as number, a.after as number]), '', e.i64([a.axis as number])]),
  jvp: (_, [t], __, a) => t && pad(t, (a.axis as number) + 1, a.before as number, a.after as number),
  vjp: ([x], _, ct, a) => [slice(ct, a.axis as number, a.before as number, (a.before as number) + staticSize([x.shape[a.axis as number]], 'pad'))],
};

OPS.concat = {
  shape: (xs, a) => {
    const ax = normAxis(a.axis as number, xs[0].rank);
    const out = [...xs[0].shape];
    const sizes = xs.map((x) => x.shape[ax]);
    out[ax] = sizes.every((s) => typeof s === 'number') ? (sizes as number[]).reduce((p, s) => p + s, 0) : sizes.join('+');
    return out;
  },
  onnx: (e, xs, a) => one(e, 'Concat', xs, { axis: a.axis }),
  jvp: (xs, ts, _, a) => {
    const ref = ts.find((t) => t);
    if (!ref) return null;
    return concat(xs.map((x, i) => ts[i] ?? zerosTangent(x, ref)), tanAxis(a.axis as number));
  },
  vjp: (xs, _, ct, a) => {
    const ax = normAxis(a.axis as number, xs[0].rank);
    let at = 0;
    return xs.map((x) => {
      const n = staticSize([x.shape[ax]], 'concat transpose');
      at += n;
      return slice(ct, ax, at - n, at);
    });
  },
};

/** Zeros shaped like a tangent of x, taking K from another tangent. */
OPS.zerosTangent = {
  shape: ([x, ref]) => [ref.shape[0], ...x.shape],
  dtype: ([x]) => x.dtype,
  onnx: (e, [x, ref]) => {
    const k = one(e, 'Slice', [one(e, 'Shape', [ref]), e.i64([0]), e.i64([1])]);
    const shape = one(e, 'Concat', [k, one(e, 'Shape', [x])], { axis: 0 });
    return one(e, 'Expand', [e.real(0), shape]);
  },
};

/** Broadcast x to `like`'s shape with a leading axis of x kept (a tangent made full size). */
OPS.expandLike = {
  shape: ([x, like]) => [x.shape[0], ...like.shape],
  onnx: (e, [x, like]) => one(e, 'Expand', [x, one(e, 'Concat', [e.i64([1]), one(e, 'Shape', [like])], { axis: 0 })]),
};

/** Broadcast x to like's shape (no leading axis): the transpose of a sum. */
OPS.broadcastLike = {
  shape: ([, like]) => like.shape,
  onnx: (e, [x, like]) => one(e, 'Expand', [x, one(e, 'Shape', [like])]),
};

/** Sum over `axes`: linear; its transpose broadcasts the cotangent back. */
OPS.reduceSum = {
  shape: ([x], a) => {
    const axes = (a.axes as number[]).map((ax) => normAxis(ax, x.rank));
    return a.keepdims ? x.shape.map((d, i) => (axes.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !axes.includes(i));
  },
  onnx: (e, [x], a) => one(e, 'ReduceSum', [x, e.i64(a.axes as number[])], { keepdims: a.keepdims ? 1 : 0 }),
  jvp: (_, [t], __, a) => t && reduceSum(t, (a.axes as number[]).map(tanAxis), a.keepdims as boolean),
  vjp: ([x], _, ct, a) => {
    const axes = (a.axes as number[]).map((ax) => normAxis(ax, x.rank));
    return [broadcastLike(a.keepdims ? ct : unsqueeze(ct, axes.sort((p, q) => p - q)), x)];
  },
};

// ---------------------------------------------------------------- lookups

/** x's slices at integer `idx` along `axis` (embeddings, picking target log-probabilities). */
OPS.gather = {
  shape: ([x, idx], a) => {
    const ax = a.axis as number;
    return [...x.shape.slice(0, ax), ...idx.shape, ...x.shape.slice(ax + 1)];
  },
  onnx: (e, [x, idx], a) => one(e, 'Gather', [x, idx], { axis: a.axis }),
  jvp: ([, idx], [t], __, a) => t && gather(t, idx, (a.axis as number) + 1),
  vjp: ([x, idx], _, ct, a) => {
    if (a.axis !== 0) throw new Error('gather: reverse mode is written for axis 0 only');
    return [scatterAddRows(ct, idx, x), null];
  },
};

/** zeros like `like`, plus each row of ct added at its index (ScatterND, reduction add). */
OPS.scatterAddRows = {
  shape: ([, , like]) => like.shape,
  dtype: ([ct]) => ct.dtype,
  onnx: (e, [ct, idx, like]) => {
    const zeros = one(e, 'Expand', [e.real(0), one(e, 'Shape', [like])]);
    return one(e, 'ScatterND', [zeros, one(e, 'Unsqueeze', [idx, e.i64([-1])]), ct], { reduction: 'add' });
  },
};

// ---------------------------------------------------------------- builders

export const add = (a: Value, b: Value) => emit('add', [a, b]);
export const sub = (a: Value, b: Value) => emit('sub', [a, b]);
export const mul = (a: Value, b: Value) => emit('mul', [a, b]);
export const div = (a: Value, b: Value) => emit('div', [a, b]);
export const neg = (a: Value) => mul(a, a.g.scalar(-1));
export const scale = (a: Value, c: number) => mul(a, a.g.scalar(c));
export const tanh = (x: Value) => emit('tanh', [x]);
export const exp = (x: Value) => emit('exp', [x]);
export const log = (x: Value) => emit('log', [x]);
export const sigmoid = (x: Value) => emit('sigmoid', [x]);
export const erf = (x: Value) => emit('erf', [x]);
export const pow = (x: Value, p: number) => emit('pow', [x], { p });
export const gelu = (x: Value, approximate: 'tanh' | 'none') => emit('gelu', [x], { approximate });
export const softmax = (x: Value) => emit('softmax', [x]);
export const logSoftmax = (x: Value) => emit('logSoftmax', [x]);
export const layerNorm = (x: Value, g: Value, b: Value | null, eps: number) => emit('layerNorm', b ? [x, g, b] : [x, g], { eps });
export const matmul = (a: Value, b: Value) => emit('matmul', [a, b]);
export const reshape = (x: Value, shape: number[]) => emit('reshape', [x], { shape });
export const reshapeLike = (x: Value, like: Value) => emit('reshapeLike', [x, like]);
export const transpose = (x: Value, perm: number[]) => emit('transpose', [x], { perm });
export const unsqueeze = (x: Value, axes: number[]) => emit('unsqueeze', [x], { axes });
export const squeeze = (x: Value, axes: number[]) => emit('squeeze', [x], { axes });
export const slice = (x: Value, axis: number, start: number, end: number) => emit('slice', [x], { axis, start, end });
export const pad = (x: Value, axis: number, before: number, after: number) => emit('pad', [x], { axis, before, after });
export const concat = (xs: Value[], axis: number) => emit('concat', xs, { axis });
export const zerosTangent = (x: Value, ref: Value) => emit('zerosTangent', [x, ref]);
export const expandLike = (x: Value, like: Value) => emit('expandLike', [x, like]);
export const broadcastLike = (x: Value, like: Value) => emit('broadcastLike', [x, like]);
export const reduceSum = (x: Value, axes: number[], keepdims: boolean) => emit('reduceSum', [x], { axes, keepdims });
export const gather = (x: Value, idx: Value, axis: number) => emit('gather', [x, idx], { axis });
export const scatterAddRows = (ct: Value, idx: Value, like: Value) => emit('scatterAddRows', [ct, idx, like]);
