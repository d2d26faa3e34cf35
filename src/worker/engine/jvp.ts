// Forward mode as a graph transform: replay a traced graph into a new one, computing each value
// and, beside it, its K tangents by the op's jvp rule. Only the named inputs carry a tangent; a
// value none of whose inputs carries one is replayed as is, so everything before the first
// perturbed tensor runs at inference cost.
import { Graph, type Value } from './ir.ts';
import { OPS, emit, expandLike } from './ops.ts';

export interface JvpGraph {
  graph: Graph;
  /** the replayed outputs */
  outs: Value[];
  /** their tangents [K, ...shape] (null: the output does not depend on any perturbed input) */
  tangents: (Value | null)[];
}

/** Name of the graph input that carries an input's tangents. */
export const tangentName = (input: string) => `${input}.tangent`;

/** Nodes that some output depends on, in order. */
export function live(src: Graph, outs: Value[]): Set<Value> {
  const need = new Set<Value>(outs);
  for (let i = src.nodes.length - 1; i >= 0; i--) {
    const n = src.nodes[i];
    if (need.has(n.out)) for (const x of n.inputs) need.add(x);
  }
  return need;
}

export interface JvpOptions {
  /**
   * Stack value and tangent rows into one MatMul per frozen weight (ORT then prepacks each weight
   * once, not twice). Off by default: with ORT 1.30 on the CPU the stacked graph ran the GPT-2-small
   * jvp step 1.5–2× slower (the Concat and the 4-D MatMul), so it trades time for memory.
   */
  stack?: boolean;
}

export function jvpGraph(src: Graph, outs: Value[], perturbed: string[], opts: JvpOptions = {}): JvpGraph {
  const g = new Graph(src.float);
  const map = new Map<Value, Value>();
  const tan = new Map<Value, Value>();
  for (const name of perturbed) if (!src.inputs.some((i) => i.name === name)) throw new Error(`jvp: the graph has no input "${name}"`);
  for (const { value, name } of src.inputs) {
    map.set(value, g.input(name, value.shape, value.dtype));
    if (perturbed.includes(name)) tan.set(value, g.input(tangentName(name), ['K', ...value.shape], value.dtype));
  }
  for (const [value, c] of src.consts) map.set(value, g.constant(c.name, value.shape as number[], c.data));
  const need = live(src, outs);
  for (const node of src.nodes) {
    if (!need.has(node.out)) continue;
    const ins = node.inputs.map((x) => map.get(x)!);
    const tans = node.inputs.map((x) => tan.get(x) ?? null);
    if (tans.every((t) => t === null)) {
      map.set(node.out, emit(node.op, ins, node.attrs));
      continue;
    }
    const def = OPS[node.op];
    const fused = opts.stack ? def.jvpWithPrimal?.(ins, tans, node.attrs) : null;
    if (fused) {
      map.set(node.out, fused[0]);
      if (fused[1]) tan.set(node.out, fused[1]);
      continue;
    }
    if (!def.jvp) throw new Error(`op ${node.op} has no tangent rule`);
    const y = emit(node.op, ins, node.attrs);
    map.set(node.out, y);
    let t = def.jvp(ins, tans, y, node.attrs);
    // a tangent that only broadcasts against y (a perturbed bias, say) is made full size
    if (t && (t.rank !== y.rank + 1 || t.shape.slice(1).some((d, i) => d !== y.shape[i]))) t = expandLike(t, y);
    if (t) tan.set(node.out, t);
  }
  return { graph: g, outs: outs.map((o) => map.get(o)!), tangents: outs.map((o) => tan.get(o) ?? null) };
}
