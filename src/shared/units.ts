// What the aggregator and the clients agree on about the trainable adapter: its tensors, in module
// order, and how they group into Spry's units. Plain data, so it crosses threads and the network.

/** The unit Spry assigns to a client: one LoRA (A, B) pair, or the task head. */
export interface Unit {
  name: string;
  tensors: string[];
}

export interface TensorSpec {
  name: string;
  shape: number[];
}

/** The global adapter as plain float32 arrays, by tensor name. */
export type Weights = Map<string, Float32Array>;

/** Tensor names of the given units, in unit order. */
export function tensorsOf(units: Unit[], names: string[]): string[] {
  const by = new Map(units.map((u) => [u.name, u.tensors]));
  return names.flatMap((n) => {
    const t = by.get(n);
    if (!t) throw new Error(`unit "${n}" is not part of this model`);
    return t;
  });
}

export const sizeOf = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
