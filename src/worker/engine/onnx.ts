// The ONNX emitter: a graph of the IR becomes a ModelProto (opset 20) with the frozen weights as
// initializers, named dims as dynamic dims. Sessions take the weights from a file of ONNX external
// data (WeightFile), which ONNX Runtime maps, rather than inside the model's bytes: no 2 GB limit,
// and no second copy of the weights in a protobuf buffer.
import { appendFileSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import onnxProto, { type onnx as Onnx } from 'onnx-proto';
import type { Attrs, Graph, Value } from './ir.ts';
import { type Emit, OPS } from './ops.ts';
import { live } from './jvp.ts';

const { onnx } = onnxProto;
const T = onnx.TensorProto.DataType;
const A = onnx.AttributeProto.AttributeType;

export const OPSET = 20;

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

type Weight = Float32Array | Float64Array | BigInt64Array;
/** released by WeightFile.release: its values are in the file only */
const isReleased = (w: Weight) => (w.buffer as ArrayBuffer & { detached?: boolean }).detached === true;

export interface Emitted {
  model: Onnx.IModelProto;
  /** the frozen weights, by initializer name */
  weights: Map<string, Weight>;
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
  const weights = new Map<string, Weight>();
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
    inits.push({ name, dataType: typeOf(value.dtype), dims: value.shape as number[], rawData: isReleased(c.data) ? null : bytesOf(c.data) });
    weights.set(name, c.data);
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
    weights,
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

/** The model as bytes, weights included (small graphs: the tests'). */
export function serialize(m: Emitted): Uint8Array {
  return onnx.ModelProto.encode(m.model).finish();
}

/** Smaller weights (norms, scalars, a trace's own constants) stay inside the model. */
const INLINE_BYTES = 4096;

/** folders of the weight files still on disk, removed when the process (or worker thread) exits */
const folders = new Set<string>();
process.on('exit', () => {
  for (const f of folders) rmSync(f, { recursive: true, force: true });
});
const PREFIX = 'fedforward-weights-';

/** Removes the weight folders of processes that are gone (killed, so their exit handler never ran). */
function sweep(): void {
  for (const name of readdirSync(os.tmpdir())) {
    const pid = Number(name.slice(PREFIX.length).split('-')[0]);
    if (!name.startsWith(PREFIX) || !Number.isInteger(pid) || pid === process.pid) continue;
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') rmSync(join(os.tmpdir(), name), { recursive: true, force: true });
    }
  }
}

/**
 * The frozen weights of one model in one file that all its sessions map (ONNX external data), each
 * written the first time a graph uses it. Once a weight is in the file, JavaScript's copy can go
 * (release): graphs traced later still name it, and ONNX Runtime reads it from the file.
 */
export class WeightFile {
  private dir: string | null = null;
  private size = 0;
  private models = 0;
  private readonly placed = new Map<Weight, { offset: number; length: number }>();

  private folder(): string {
    if (!this.dir) {
      sweep();
      this.dir = mkdtempSync(join(os.tmpdir(), `${PREFIX}${process.pid}-`));
      folders.add(this.dir);
      writeFileSync(join(this.dir, 'weights.bin'), new Uint8Array(0));
    }
    return this.dir;
  }

  /** Where `w` lies in the file, appended there on first use. */
  private place(w: Weight): { offset: number; length: number } {
    let at = this.placed.get(w);
    if (!at) {
      if (isReleased(w)) throw new Error('a released weight is not in the weight file');
      appendFileSync(join(this.folder(), 'weights.bin'), bytesOf(w));
      at = { offset: this.size, length: w.byteLength };
      this.size += w.byteLength;
      this.placed.set(w, at);
    }
    return at;
  }

  /** Writes `m` beside the weight file, its weights as references into it, and returns the model's path. */
  write(m: Emitted): string {
    for (const t of m.model.graph!.initializer!) {
      const w = m.weights.get(t.name!);
      if (!w || (w.byteLength < INLINE_BYTES && !isReleased(w))) continue;
      const { offset, length } = this.place(w);
      t.externalData = [
        { key: 'location', value: 'weights.bin' },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(length) },
      ];
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      t.rawData = null;
    }
    const path = join(this.folder(), `model-${this.models++}.onnx`);
    writeFileSync(path, onnx.ModelProto.encode(m.model).finish());
    return path;
  }

  /**
   * Puts `weights` in the file and frees JavaScript's copy of each one that owns its whole buffer
   * (a view into a larger buffer, such as a checkpoint file's, is left alone: others may read it).
   * The arrays become empty: only for weights nothing but graphs of this file reads any more.
   */
  release(weights: Iterable<Weight>): void {
    for (const w of weights) {
      if (w.byteLength < INLINE_BYTES) continue;
      this.place(w);
      if (w.byteOffset === 0 && w.byteLength === w.buffer.byteLength) (w.buffer as ArrayBuffer & { transfer(n: number): ArrayBuffer }).transfer(0);
    }
  }
}
