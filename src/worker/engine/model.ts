// What a model family written against the IR provides, the inputs every family shares (a batch,
// the adapter, LoRA dropout masks) and the training loss, which is the same for all of them:
// cross-entropy of the labels (classification) or of the next token (causal LM), as
// src/worker/models/model.ts lossOf computes it on TensorFlow.js.
import type { Batch, Family, ModelDims, Task, TensorMap } from '../models/model.ts';
import type { LoraConfig, TrainableSpec } from '../models/lora.ts';
import { philox4x32_10, seedKey } from '../../shared/spry/rng.ts';
import { Graph, type Value } from './ir.ts';
import { add, gather, logSoftmax, matmul, mul, neg, reduceSum, reshape, scale, transpose } from './ops.ts';

export interface IrModel {
  family: Family;
  dims: ModelDims;
  task: Task;
  lora: LoraConfig;
  trainable: TrainableSpec[];
  /** trace the model into a fresh graph; `dropout`: LoRA dropout masks are inputs */
  trace(dropout: boolean): Traced;
  /** family-specific inputs computed on the host (Llama's rotary tables, RoBERTa's positions) */
  hostFeeds?(batch: HostBatch): Record<string, { data: Float32Array | BigInt64Array; shape: number[] }>;
}

export interface Traced {
  graph: Graph;
  /** [B, T, V] (causal LM) or [B, C] (classification) */
  logits: Value;
  loss: Value;
  /** the adapter's graph inputs, by PEFT name */
  adapter: Map<string, Value>;
  /** LoRA dropout sites: input name and feature count */
  dropout: { name: string; features: number }[];
}

/** A batch on the host: ids and mask [B, T] (right padding), labels [B] for classification. */
export interface HostBatch {
  b: number;
  t: number;
  ids: Int32Array;
  mask: Float32Array;
  labels: Int32Array | null;
}

/**
 * The graph inputs every family reads, declared with dynamic B and T. The batch-derived ones
 * (attention bias, pooling, loss targets) are computed on the host by batchFeeds below.
 */
export class Inputs {
  readonly g: Graph;
  readonly ids: Value;
  readonly pos: Value;
  /** additive attention bias [B, 1, T, T]: −1e9 at padding keys (and the future, for decoders) */
  readonly bias: Value;
  readonly adapter = new Map<string, Value>();
  readonly dropout: { name: string; features: number }[] = [];
  private readonly withDropout: boolean;
  constructor(g: Graph, withDropout: boolean) {
    this.g = g;
    this.withDropout = withDropout;
    this.ids = g.input('ids', ['B', 'T'], 'int64');
    this.pos = g.input('pos', ['T'], 'int64');
    this.bias = g.input('bias', ['B', 1, 'T', 'T']);
  }

  param(spec: TrainableSpec): Value {
    let v = this.adapter.get(spec.name);
    if (!v) {
      v = this.g.input(spec.name, spec.shape);
      this.adapter.set(spec.name, v);
    }
    return v;
  }

  /** x times the site's keep mask (pre-scaled by 1/(1 − p)), or x itself when not training */
  drop(x: Value, site: string): Value {
    if (!this.withDropout) return x;
    const name = `dropout:${site}`;
    const features = x.shape[x.rank - 1] as number;
    this.dropout.push({ name, features });
    return mul(x, this.g.input(name, ['B', 'T', features]));
  }
}

/**
 * A frozen linear layer x @ W + b, plus its LoRA branch (α/r)·(drop(x) Aᵀ) Bᵀ when `module` is
 * adapted. W is [in, out] (x @ W), as GPT-2's Conv1D stores it.
 */
export function loraLinear(inp: Inputs, model: { lora: LoraConfig; trainable: TrainableSpec[] }, x: Value, w: Value, b: Value | null, module: string): Value {
  const y = b ? add(matmul(x, w), b) : matmul(x, w);
  const a = model.trainable.find((s) => s.name === `${module}.lora_A.weight`);
  const bb = model.trainable.find((s) => s.name === `${module}.lora_B.weight`);
  if (!a || !bb) return y;
  const down = matmul(inp.drop(x, module), transpose(inp.param(a), [1, 0]));
  return add(y, scale(matmul(down, transpose(inp.param(bb), [1, 0])), model.lora.alpha / model.lora.r));
}

/**
 * −Σ w log softmax(logits)[target]: the targets are flat indices into the log-probabilities
 * (`pick` [N]) with weights that already hold 1/count (`weight` [N]), both from batchFeeds.
 */
export function crossEntropy(g: Graph, logits: Value): Value {
  const pick = g.input('pick', ['N'], 'int64');
  const weight = g.input('weight', ['N']);
  const picked = gather(reshape(logSoftmax(logits), [-1]), pick, 0);
  return neg(reduceSum(mul(picked, weight), [0], false));
}

/** Host-side feeds of a batch: ids, positions, attention bias, and the loss's targets and weights. */
export function batchFeeds(model: IrModel, batch: HostBatch, causal: boolean): Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> {
  const { b, t, ids, mask, labels } = batch;
  // past the position table a lookup would read out of bounds (RoBERTa's stops padding_idx + 1 rows early: dims)
  if (t > model.dims.maxPositions) throw new Error(`sequence length ${t} exceeds the model's ${model.dims.maxPositions} positions`);
  const bias = new Float32Array(b * t * t);
  for (let i = 0; i < b; i++)
    for (let q = 0; q < t; q++)
      for (let k = 0; k < t; k++) if (mask[i * t + k] === 0 || (causal && k > q)) bias[(i * t + q) * t + k] = -1e9;
  let pick: BigInt64Array;
  let weight: Float32Array;
  if (model.task.kind === 'classification') {
    if (!labels) throw new Error('a classification batch needs labels');
    const c = model.task.numLabels;
    pick = BigInt64Array.from(Array.from(labels, (l, i) => {
      if (!(l >= 0 && l < c)) throw new Error(`label ${l} is outside 0..${c - 1}`);
      return BigInt(i * c + l);
    }));
    weight = new Float32Array(b).fill(1 / b);
  } else {
    // next-token targets at real positions whose successor is real
    const v = model.dims.vocabSize;
    pick = new BigInt64Array(b * t);
    weight = new Float32Array(b * t);
    let n = 0;
    for (let i = 0; i < b; i++)
      for (let p = 0; p + 1 < t; p++) {
        const j = i * t + p;
        pick[j] = BigInt(j * v + ids[j + 1]);
        weight[j] = mask[j + 1];
        n += mask[j + 1];
      }
    for (let j = 0; j < weight.length; j++) weight[j] /= Math.max(n, 1);
  }
  const feeds: Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> = {
    ids: { data: BigInt64Array.from(ids, (x) => BigInt(x)), shape: [b, t] },
    pos: { data: BigInt64Array.from({ length: t }, (_, i) => BigInt(i)), shape: [t] },
    bias: { data: bias, shape: [b, 1, t, t] },
    pick: { data: pick, shape: [pick.length] },
    weight: { data: weight, shape: [weight.length] },
  };
  // last-token pooling for decoders, first-token for encoders (as the tfjs families)
  const pool = new Float32Array(b * t);
  for (let i = 0; i < b; i++) {
    let last = 0;
    for (let p = 0; p < t; p++) if (mask[i * t + p] > 0) last = p;
    pool[i * t + (causal ? last : 0)] = 1;
  }
  feeds.pool = { data: pool, shape: [b, t] };
  return feeds;
}

/**
 * Every graph input computed on the host for a batch: batchFeeds, the family's own (hostFeeds) and,
 * with `dropout`, the masks of its sites for its seed.
 */
export function hostInputs(model: IrModel, batch: HostBatch, dropout: { sites: { name: string; features: number }[]; seed: number } | null): Record<string, { data: Float32Array | BigInt64Array; shape: number[] }> {
  return {
    ...batchFeeds(model, batch, model.family !== 'bert'),
    ...model.hostFeeds?.(batch),
    ...(dropout ? dropoutFeeds(dropout.sites, batch.b, batch.t, model.lora.dropout, dropout.seed) : {}),
  };
}

/** A batch of tensors as host arrays. */
export function hostBatch(batch: Batch): HostBatch {
  const [b, t] = batch.ids.shape;
  return { b, t, ids: batch.ids.dataSync() as Int32Array, mask: batch.mask.dataSync() as Float32Array, labels: batch.labels ? (batch.labels.dataSync() as Int32Array) : null };
}

/**
 * LoRA dropout keep masks, scaled by 1/(1 − p): the same seed gives the same masks on every
 * machine. Each site's stream is xoshiro128** seeded by a Philox block of (seed, site): Philox per
 * element cost 45 ms a step on the 4-layer × 256 GPT-2, xoshiro 1/20 of that. The TensorFlow.js
 * fallback (models/ir_model.ts) feeds the same masks, so both engines train alike with dropout.
 */
export function dropoutFeeds(sites: { name: string; features: number }[], b: number, t: number, rate: number, seed: number): Record<string, { data: Float32Array; shape: number[] }> {
  const out: Record<string, { data: Float32Array; shape: number[] }> = {};
  const keep = 1 / (1 - rate);
  const cut = Math.floor(rate * 2 ** 24); // keep when the top 24 bits are at least rate·2^24
  const key = seedKey(seed);
  sites.forEach(({ name, features }, i) => {
    let [s0, s1, s2, s3] = philox4x32_10([0, 0, i, 0x64726f70 /* "drop" */], key);
    if ((s0 | s1 | s2 | s3) === 0) s0 = 1; // xoshiro's one forbidden state
    const mask = new Float32Array(b * t * features);
    for (let j = 0; j < mask.length; j++) {
      const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
      const u = s1 << 9;
      s2 ^= s0;
      s3 ^= s1;
      s1 ^= s2;
      s0 ^= s3;
      s2 ^= u;
      s3 = rotl(s3, 11);
      mask[j] = r >>> 8 >= cut ? keep : 0;
    }
    out[name] = { data: mask, shape: [b, t, features] };
  });
  return out;
}

const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/** A base weight by (HF) name with a shape check, so a wrong checkpoint fails with one clear line. */
export function weightOf(tensors: TensorMap, name: string, shape: number[]): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new Error(`model.safetensors has no tensor "${name}"`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
    throw new Error(`tensor "${name}" has shape [${t.shape}] but the config implies [${shape}]`);
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

export { Graph };
