// Every op's tangent rule against its transpose rule and against central finite differences:
// for f(x) = Σ w ⊙ op(x) with fixed random w, the jvp along each of K directions v_k must equal
// ∇f·v_k from reverse mode and (f(x + hv) − f(x − hv))/2h, in float64 graphs, to a tolerance
// relative to the derivative's size. Erf has no double kernel in ONNX Runtime: its ops run in
// float32, where the finite difference takes a larger step and a looser (still relative) tolerance.
import { describe, expect, it } from 'vitest';
import type { Value } from '../../../src/worker/engine/ir.ts';
import * as op from '../../../src/worker/engine/ops.ts';
import { OPS } from '../../../src/worker/engine/ops.ts';
import { jvpGraph, tangentName } from '../../../src/worker/engine/jvp.ts';
import { grad } from '../../../src/worker/engine/vjp.ts';
import { type Feeds, Graph, randoms, run, size } from './harness.ts';

const K = 2;
/** step and relative tolerance of the finite difference; reverse mode vs forward mode is exact up to rounding */
const PRECISION = {
  // float64, h = 1e-5: truncation ~h² and rounding ~1e-16/h, both far below 1e-7
  double: { h: 1e-5, fd: 1e-7, rev: 1e-10 },
  // float32, h = 1e-2: truncation ~1e-4 relative, rounding ~6e-8/h ~ 1e-5
  float: { h: 1e-2, fd: 2e-3, rev: 1e-5 },
};

interface Case {
  name: string;
  /** float inputs: shape and value range; all are perturbed */
  inputs: Record<string, { shape: number[]; lo?: number; hi?: number }>;
  /** extra fixed feeds (integer indices) */
  fixed?: Feeds;
  /** float32 where ONNX Runtime has no double kernel */
  float?: boolean;
  /** the jvp transform's stacked frozen-weight MatMuls */
  stack?: boolean;
  build(g: Graph, x: Record<string, Value>): Value;
}

const C: Case[] = [
  { name: 'add (broadcast)', inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4] } }, build: (_, x) => op.add(x.a, x.b) },
  { name: 'sub (broadcast)', inputs: { a: { shape: [3, 1] }, b: { shape: [2, 3, 4] } }, build: (_, x) => op.sub(x.a, x.b) },
  { name: 'mul (broadcast)', inputs: { a: { shape: [2, 3, 4] }, b: { shape: [3, 1] } }, build: (_, x) => op.mul(x.a, x.b) },
  { name: 'div', inputs: { a: { shape: [3, 4] }, b: { shape: [3, 4], lo: 0.5, hi: 2 } }, build: (_, x) => op.div(x.a, x.b) },
  { name: 'tanh', inputs: { x: { shape: [3, 5], lo: -2, hi: 2 } }, build: (_, x) => op.tanh(x.x) },
  { name: 'exp', inputs: { x: { shape: [3, 5] } }, build: (_, x) => op.exp(x.x) },
  { name: 'log', inputs: { x: { shape: [3, 5], lo: 0.5, hi: 3 } }, build: (_, x) => op.log(x.x) },
  { name: 'sigmoid', inputs: { x: { shape: [3, 5], lo: -3, hi: 3 } }, build: (_, x) => op.sigmoid(x.x) },
  { name: 'erf (float32)', float: true, inputs: { x: { shape: [3, 5], lo: -2, hi: 2 } }, build: (_, x) => op.erf(x.x) },
  { name: 'pow (−½)', inputs: { x: { shape: [3, 5], lo: 0.5, hi: 3 } }, build: (_, x) => op.pow(x.x, -0.5) },
  { name: 'pow (3)', inputs: { x: { shape: [3, 5] } }, build: (_, x) => op.pow(x.x, 3) },
  { name: 'gelu (tanh)', inputs: { x: { shape: [3, 5], lo: -3, hi: 3 } }, build: (_, x) => op.gelu(x.x, 'tanh') },
  { name: 'gelu (erf, float32)', float: true, inputs: { x: { shape: [3, 5], lo: -3, hi: 3 } }, build: (_, x) => op.gelu(x.x, 'none') },
  { name: 'softmax', inputs: { x: { shape: [2, 3, 5], lo: -2, hi: 2 } }, build: (_, x) => op.softmax(x.x) },
  { name: 'logSoftmax', inputs: { x: { shape: [2, 3, 5], lo: -2, hi: 2 } }, build: (_, x) => op.logSoftmax(x.x) },
  { name: 'layerNorm', inputs: { x: { shape: [2, 3, 6] }, g: { shape: [6] }, b: { shape: [6] } }, build: (_, x) => op.layerNorm(x.x, x.g, x.b, 1e-5) },
  { name: 'matmul (batched, broadcast)', inputs: { a: { shape: [2, 3, 4] }, b: { shape: [4, 5] } }, build: (_, x) => op.matmul(x.a, x.b) },
  { name: 'matmul (both batched)', inputs: { a: { shape: [2, 3, 4] }, b: { shape: [2, 4, 5] } }, build: (_, x) => op.matmul(x.a, x.b) },
  {
    name: 'matmul by a frozen weight',
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, x) => op.matmul(x.a, g.constant('w', [4, 5], randoms(20, 99))),
  },
  {
    name: 'matmul by a frozen weight (value and tangent rows stacked)',
    stack: true,
    inputs: { a: { shape: [2, 3, 4] } },
    build: (g, x) => op.matmul(x.a, g.constant('w', [4, 5], randoms(20, 99))),
  },
  { name: 'reshape', inputs: { x: { shape: [2, 3, 4] } }, build: (_, x) => op.reshape(x.x, [0, 0, 2, 2]) },
  { name: 'reshape (inferred)', inputs: { x: { shape: [2, 3, 4] } }, build: (_, x) => op.reshape(x.x, [-1, 4]) },
  { name: 'transpose', inputs: { x: { shape: [2, 3, 4] } }, build: (_, x) => op.transpose(x.x, [2, 0, 1]) },
  { name: 'unsqueeze + squeeze', inputs: { x: { shape: [3, 4] } }, build: (_, x) => op.mul(op.squeeze(op.unsqueeze(x.x, [1]), [1]), x.x) },
  { name: 'slice', inputs: { x: { shape: [2, 6] } }, build: (_, x) => op.slice(x.x, -1, 1, 4) },
  { name: 'pad', inputs: { x: { shape: [2, 3] } }, build: (_, x) => op.pad(x.x, 1, 2, 1) },
  { name: 'concat', inputs: { a: { shape: [2, 3] }, b: { shape: [2, 2] } }, build: (_, x) => op.concat([x.a, x.b], -1) },
  { name: 'reduceSum (keepdims)', inputs: { x: { shape: [2, 3, 4] } }, build: (_, x) => op.mul(op.reduceSum(x.x, [-1], true), x.x) },
  { name: 'reduceSum', inputs: { x: { shape: [2, 3, 4] } }, build: (_, x) => op.reduceSum(x.x, [0, 2], false) },
  {
    name: 'gather (rows of a table, repeated ids)',
    inputs: { t: { shape: [5, 3] } },
    fixed: { ids: { data: BigInt64Array.of(4n, 0n, 4n, 2n), shape: [2, 2] } },
    build: (g, x) => op.gather(x.t, g.input('ids', [2, 2], 'int64'), 0),
  },
];

/** Feeds for the case at x + s·v_k (s = 0 for the point itself). */
function feedsAt(c: Case, xs: Record<string, Float64Array>, vs: Record<string, Float64Array>, k: number, s: number): Feeds {
  const f: Feeds = { ...c.fixed };
  for (const [n, { shape }] of Object.entries(c.inputs)) {
    const n0 = size(shape);
    f[n] = { data: xs[n].map((v, i) => v + s * vs[n][k * n0 + i]), shape };
  }
  return f;
}

async function check(c: Case, rule?: { op: string; factor: number }) {
  const g = new Graph(c.float ? 'float' : 'double');
  const P = PRECISION[g.float];
  const x: Record<string, Value> = {};
  for (const [n, { shape }] of Object.entries(c.inputs)) x[n] = g.input(n, shape);
  const y = c.build(g, x);
  const w = g.constant('w_out', y.shape as number[], randoms(size(y.shape as number[]), 7));
  const f = op.reduceSum(op.mul(y, w), y.shape.map((_, i) => i), false);
  const names = Object.keys(c.inputs);
  const grads = grad(f, names.map((n) => x[n]));

  const xs: Record<string, Float64Array> = {};
  const vs: Record<string, Float64Array> = {};
  names.forEach((n, i) => {
    const { shape, lo, hi } = c.inputs[n];
    xs[n] = randoms(size(shape), 11 + i, lo, hi);
    vs[n] = randoms(K * size(shape), 31 + i);
  });

  const restore = rule && breakRule(rule.op, rule.factor);
  try {
    const J = jvpGraph(g, [f], names, { stack: c.stack });
    const feeds: Feeds = feedsAt(c, xs, vs, 0, 0);
    for (const n of names) feeds[tangentName(n)] = { data: vs[n], shape: [K, ...c.inputs[n].shape] };
    const fw = await run(J.graph, { f: J.outs[0], jvp: J.tangents[0]! }, feeds);
    const rev = await run(g, Object.fromEntries(names.map((n, i) => [`grad_${n}`, grads[i]])), feedsAt(c, xs, vs, 0, 0));
    const loss = async (k: number, s: number) => (await run(g, { f }, feedsAt(c, xs, vs, k, s))).f[0];
    for (let k = 0; k < K; k++) {
      let dot = 0;
      for (const n of names) {
        const n0 = size(c.inputs[n].shape);
        rev[`grad_${n}`].forEach((d, i) => (dot += d * vs[n][k * n0 + i]));
      }
      const fd = ((await loss(k, P.h)) - (await loss(k, -P.h))) / (2 * P.h);
      const scale = Math.max(Math.abs(fd), Math.abs(dot));
      expect(scale).toBeGreaterThan(1e-3); // a vanishing derivative would test nothing
      expect(Math.abs(fw.jvp[k] - fd) / scale, `${c.name}: jvp vs finite difference, direction ${k}`).toBeLessThan(P.fd);
      expect(Math.abs(dot - fd) / scale, `${c.name}: reverse mode vs finite difference, direction ${k}`).toBeLessThan(P.fd);
      expect(Math.abs(fw.jvp[k] - dot) / scale, `${c.name}: jvp vs reverse mode, direction ${k}`).toBeLessThan(P.rev);
    }
  } finally {
    restore?.();
  }
}

/** Scale an op's tangent rule (a deliberate bug), stacked or not, until the returned function is called. */
function breakRule(name: string, factor: number): () => void {
  const def = OPS[name];
  const { jvp, jvpWithPrimal } = def;
  def.jvp = (ins, tans, y, a) => {
    const t = jvp!(ins, tans, y, a);
    return t && op.scale(t, factor);
  };
  if (jvpWithPrimal)
    def.jvpWithPrimal = (ins, tans, a) => {
      const r = jvpWithPrimal(ins, tans, a);
      return r && [r[0], r[1] && op.scale(r[1], factor)];
    };
  return () => {
    def.jvp = jvp;
    def.jvpWithPrimal = jvpWithPrimal;
  };
}

describe('every op: jvp = (reverse mode)ᵀ·v = central finite difference (float64)', () => {
  for (const c of C) it(c.name, () => check(c));
});

describe('the check catches a wrong rule', () => {
  it('softmax with its tangent scaled by 1.1 fails', async () => {
    await expect(check(C.find((c) => c.name === 'softmax')!, { op: 'softmax', factor: 1.1 })).rejects.toThrow(/jvp vs finite difference/);
  });
  it('erf (float32) with its tangent scaled by 1.1 fails', async () => {
    await expect(check(C.find((c) => c.name.startsWith('erf'))!, { op: 'erf', factor: 1.1 })).rejects.toThrow(/jvp vs finite difference/);
  });
  it('the frozen-weight matmul with its stacked tangent scaled by 1.1 fails', async () => {
    await expect(check(C.find((c) => c.name.endsWith('(value and tangent rows stacked)'))!, { op: 'matmul', factor: 1.1 })).rejects.toThrow(/jvp vs finite difference/);
  });
});
