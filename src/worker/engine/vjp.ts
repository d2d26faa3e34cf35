// Reverse mode as a graph transform: walk a traced graph backwards from a scalar loss, giving each
// value's cotangent to its inputs by the op's transpose (vjp) rule, and sum what meets. The new ops
// are appended to the same graph, so the rules read the forward values they need directly.
import type { Value } from './ir.ts';
import { OPS, add, broadcastLike } from './ops.ts';

/** ∂loss/∂x for each x in wrt, as values of loss's graph. */
export function grad(loss: Value, wrt: Value[]): Value[] {
  const g = loss.g;
  if (loss.rank !== 0) throw new Error(`grad: the loss must be a scalar, got shape [${loss.shape}]`);
  // only nodes between wrt and the loss get a cotangent
  const reach = new Set<Value>(wrt);
  for (const n of g.nodes) if (n.inputs.some((x) => reach.has(x))) reach.add(n.out);
  const ct = new Map<Value, Value>([[loss, g.scalar(1)]]);
  const nodes = g.nodes.slice();
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const c = ct.get(n.out);
    if (!c || !reach.has(n.out)) continue;
    const rule = OPS[n.op].vjp;
    if (!rule) throw new Error(`op ${n.op} has no transpose rule`);
    rule(n.inputs, n.out, c, n.attrs).forEach((d, j) => {
      const x = n.inputs[j];
      if (!d || !reach.has(x) || x.dtype === 'int64') return;
      const prev = ct.get(x);
      ct.set(x, prev ? add(prev, d) : d);
    });
  }
  return wrt.map((x) => ct.get(x) ?? broadcastLike(g.scalar(0), x));
}
