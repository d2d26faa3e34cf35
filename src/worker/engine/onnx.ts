// The ONNX emitter: a graph of the IR becomes a ModelProto (opset 20) with the frozen weights as
// initializers, named dims as dynamic dims. Past protobuf's 2 GB limit the weights go to an
// external data file beside the model, which ONNX Runtime then loads from disk.
import { mkdirSync, writeFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import onnxProto, { type onnx as Onnx } from 'onnx-proto';
import type { Attrs, Graph, Value } from './ir.ts';
import { type Emit, OPS } from './ops.ts';
import { live } from './jvp.ts';

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

export const OPSET = 20;
/** Above this many bytes of initializers, weights go to an external data file. */
export const EXTERNAL_DATA_BYTES = 1.5 * 2 ** 30;

const typeOf = (dtype: string) => (dtype === 'int64' ? T.INT64 : dtype === 'double' ? T.DOUBLE : T.FLOAT);

function attribute(name: string, v: unknown): Onnx.IAttributeProto {
  if (typeof v === 'number') return Number.isInteger(v) && name !== 'epsilon' ? { name, type: A.INT, i: v } : { name, type: A.FLOAT, f: v };
  if (typeof v === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: A.INTS, ints: v as number[] };
  throw new Error(`attribute ${name}: unsupported value ${String(v)}`);
}

function valueInfo(name: string, v: Value): Onnx.IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: typeOf(v.dtype), shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  };
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export interface Emitted {
  model: Onnx.IModelProto;
  /** bytes of the frozen weights (initializers) */
  weightBytes: number;
}

/**
 * Lower `g` to ONNX with the given named outputs; nodes no output needs are left out. `late`: graph
 * inputs (a jvp graph's tangents) whose dependent nodes are listed after all the others; see
 * lateLast for why.
 */
export function toOnnx(g: Graph, outputs: Record<string, Value>, late: string[] = []): Emitted {
  const nodes: Onnx.INodeProto[] = [];
  const inits: Onnx.ITensorProto[] = [];
  const names = new Map<Value, string>();
  const small = new Map<string, string>();
  let fresh = 0;
  let weightBytes = 0;
  const e: Emit = {
    floatType: typeOf(g.float),
    double: g.float === 'double',
    node(op, inputs, attrs: Attrs = {}, count = 1) {
      const outs = Array.from({ length: count }, () => `t${fresh++}`);
      nodes.push({ opType: op, input: inputs, output: outs, name: `n${nodes.length}`, attribute: Object.entries(attrs).filter(([, v]) => v !== undefined).map(([k, v]) => attribute(k, v)) });
      return outs;
    },
    i64(values) {
      const key = `i64:${values.join(',')}`;
      let n = small.get(key);
      if (!n) {
        n = `k${small.size}`;
        small.set(key, n);
        inits.push({ name: n, dataType: T.INT64, dims: [values.length], rawData: bytesOf(BigInt64Array.from(values.map((x) => BigInt(Math.min(x, Number.MAX_SAFE_INTEGER))))) });
      }
      return n;
    },
    real(x) {
      return this.reals(x, 0);
    },
    reals(x, count) {
      // count 0: a scalar
      const key = `real:${x}:${count}`;
      let n = small.get(key);
      if (!n) {
        n = `k${small.size}`;
        small.set(key, n);
        const data = g.float === 'double' ? new Float64Array(Math.max(count, 1)).fill(x) : new Float32Array(Math.max(count, 1)).fill(x);
        inits.push({ name: n, dataType: typeOf(g.float), dims: count ? [count] : [], rawData: bytesOf(data) });
      }
      return n;
    },
  };
  const need = live(g, Object.values(outputs));
  const taken = new Set<string>();
  for (const { value, name } of g.inputs) names.set(value, name);
  for (const [value, c] of g.consts) {
    if (!need.has(value)) continue;
    // names stay readable (the HF name); a replayed graph may hold two scalars of one name
    let name = `w:${c.name}`;
    if (taken.has(name)) name += `#${value.id}`;
    taken.add(name);
    names.set(value, name);
    inits.push({ name, dataType: typeOf(value.dtype), dims: value.shape as number[], rawData: bytesOf(c.data) });
    weightBytes += c.data.byteLength;
  }
  for (const node of g.nodes) {
    if (!need.has(node.out)) continue;
    const out = OPS[node.op].onnx(e, node.inputs.map((x) => names.get(x)!), node.attrs, node);
    names.set(node.out, out);
  }
  const graphOutputs: Onnx.IValueInfoProto[] = [];
  for (const [name, v] of Object.entries(outputs)) {
    nodes.push({ opType: 'Identity', input: [names.get(v)!], output: [name], name: `out:${name}` });
    graphOutputs.push(valueInfo(name, v));
  }
  const inputs = g.inputs.filter((i) => need.has(i.value)).map((i) => valueInfo(i.name, i.value));
  return {
    model: {
      irVersion: 8,
      producerName: 'fedforward',
      opsetImport: [{ domain: '', version: OPSET }],
      graph: { name: 'fedforward', node: lateLast(nodes, late), input: inputs, output: graphOutputs, initializer: inits },
    },
    weightBytes,
  };
}

/**
 * The nodes that read `late` inputs (directly or not) moved after all the others, order otherwise
 * kept. ONNX Runtime runs nodes in the order of a depth-first walk back from the graph outputs that
 * takes each node's last-listed input first. With a jvp graph listed op by op (value, then
 * tangent) that walk computes every value of the model before the first tangent, so all the values
 * that tangent rules read stay alive at once: the jvp step then held as much as backprop. Listed
 * values first, the walk goes down the tangent chain first and computes each value just before
 * the tangent that needs it, and it can be freed a layer later.
 */
function lateLast(nodes: Onnx.INodeProto[], late: string[]): Onnx.INodeProto[] {
  if (late.length === 0) return nodes;
  const tainted = new Set(late);
  const early: Onnx.INodeProto[] = [];
  const rest: Onnx.INodeProto[] = [];
  for (const n of nodes) {
    if (n.input!.some((x) => tainted.has(x))) {
      for (const o of n.output!) tainted.add(o);
      rest.push(n);
    } else early.push(n);
  }
  return [...early, ...rest];
}

/**
 * The model as bytes for an in-memory session, or, past EXTERNAL_DATA_BYTES, written to `dir` as
 * model.onnx plus weights.bin (ONNX external data) and returned as that path.
 */
export function serialize(m: Emitted, dir: () => string, threshold = EXTERNAL_DATA_BYTES): Uint8Array | string {
  if (m.weightBytes < threshold) return onnx.ModelProto.encode(m.model).finish();
  const at = dir();
  mkdirSync(at, { recursive: true });
  const fd = openSync(join(at, 'weights.bin'), 'w');
  let offset = 0;
  try {
    for (const t of m.model.graph!.initializer!) {
      if (!t.name!.startsWith('w:') || !t.rawData) continue;
      writeSync(fd, t.rawData);
      t.externalData = [
        { key: 'location', value: 'weights.bin' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(t.rawData.byteLength) },
      ];
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      offset += t.rawData.byteLength;
      t.rawData = null;
    }
  } finally {
    closeSync(fd);
  }
  const path = join(at, 'model.onnx');
  writeFileSync(path, onnx.ModelProto.encode(m.model).finish());
  return path;
}
