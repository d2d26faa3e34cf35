// A small graph IR: values with symbolic shapes, built by calling ops (tracing), transformed by
// jvp.ts and vjp.ts and emitted to ONNX by onnx.ts. Shapes are static where the model fixes them
// (hidden sizes, heads) and named where a session keeps them dynamic ('B', 'T', 'K').
export type Dim = number | string;
export type DType = 'float' | 'double' | 'int64';
export type Attrs = Record<string, unknown>;

export interface Node {
  op: string;
  inputs: Value[];
  attrs: Attrs;
  out: Value;
}

export class Value {
  readonly g: Graph;
  readonly id: number;
  readonly shape: Dim[];
  readonly dtype: DType;
  /** the node that computes it; null for graph inputs and constants */
  readonly node: Node | null;
  constructor(g: Graph, id: number, shape: Dim[], dtype: DType, node: Node | null) {
    this.g = g;
    this.id = id;
    this.shape = shape;
    this.dtype = dtype;
    this.node = node;
  }
  get rank(): number {
    return this.shape.length;
  }
}

export interface Constant {
  data: Float32Array | Float64Array | BigInt64Array;
  name: string;
}

/**
 * One graph. `float` is the dtype of its real-valued tensors: 'double' for the derivative tests,
 * 'float' for the models. Inputs and constants are Values without a node.
 */
export class Graph {
  readonly float: 'float' | 'double';
  readonly nodes: Node[] = [];
  readonly inputs: { value: Value; name: string }[] = [];
  readonly consts = new Map<Value, Constant>();
  private scalars = new Map<number, Value>();
  private next = 0;
  constructor(float: 'float' | 'double' = 'float') {
    this.float = float;
  }

  input(name: string, shape: Dim[], dtype: DType = this.float): Value {
    if (this.inputs.some((i) => i.name === name)) throw new Error(`graph input "${name}" defined twice`);
    const v = new Value(this, this.next++, shape, dtype, null);
    this.inputs.push({ value: v, name });
    return v;
  }

  /** A constant tensor (a frozen weight): an initializer in ONNX, stored once. */
  constant(name: string, shape: number[], data: Float32Array | Float64Array | BigInt64Array): Value {
    const size = shape.reduce((a, b) => a * b, 1);
    // a released weight (WeightFile.release) has no values left here: ONNX Runtime reads it from its file
    const released = (data.buffer as ArrayBuffer & { detached?: boolean }).detached === true;
    if (data.length !== size && !released) throw new Error(`constant "${name}" has ${data.length} values for shape [${shape}]`);
    const dtype: DType = data instanceof BigInt64Array ? 'int64' : this.float;
    const cast = dtype === 'int64' || (this.float === 'double') === data instanceof Float64Array ? data : this.float === 'double' ? Float64Array.from(data as Float32Array) : Float32Array.from(data as Float64Array);
    const v = new Value(this, this.next++, shape, dtype, null);
    this.consts.set(v, { data: cast, name });
    return v;
  }

  /** A real scalar constant (rank 0), shared by every use of the same number. */
  scalar(x: number): Value {
    let v = this.scalars.get(x);
    if (!v) {
      v = this.constant(`c${this.scalars.size}`, [], this.float === 'double' ? Float64Array.of(x) : Float32Array.of(x));
      this.scalars.set(x, v);
    }
    return v;
  }

  /** An int64 scalar constant (an index). */
  int64Scalar(i: number): Value {
    return this.constant(`i${this.next}`, [], BigInt64Array.of(BigInt(i)));
  }

  /** Append a node; its output shape and dtype come from the op's shape rule. */
  apply(op: string, inputs: Value[], attrs: Attrs, shape: Dim[], dtype: DType): Value {
    for (const x of inputs) if (x.g !== this) throw new Error(`op ${op}: an input belongs to another graph`);
    const node: Node = { op, inputs, attrs, out: null as unknown as Value };
    const out = new Value(this, this.next++, shape, dtype, node);
    node.out = out;
    this.nodes.push(node);
    return out;
  }
}

// ---------------------------------------------------------------- shape helpers

export const sameDim = (a: Dim, b: Dim) => a === b;

/** Numpy broadcasting of symbolic shapes; a named dim broadcasts only against 1 or itself. */
export function broadcastShapes(a: Dim[], b: Dim[], what: string): Dim[] {
  const r = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1 || sameDim(x, y)) out.push(x);
    else throw new Error(`${what}: shapes [${a}] and [${b}] do not broadcast`);
  }
  return out;
}

export const normAxis = (axis: number, rank: number) => (axis < 0 ? axis + rank : axis);

/** Size of a static shape (throws on a named dim). */
export function staticSize(shape: Dim[], what: string): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') throw new Error(`${what}: dimension "${d}" must be static`);
    n *= d;
  }
  return n;
}
