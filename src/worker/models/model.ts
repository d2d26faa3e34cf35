// What every model family provides, and the losses computed on top of it.
import * as tf from '@tensorflow/tfjs';
import { type Dual, crossEntropy, disposeDual, tidyDual } from '../fwd/dual.ts';
import type { LoraConfig, Params, TrainableSpec, Unit } from './lora.ts';
import type { IrModel } from '../engine/model.ts';

export type Family = 'gpt2' | 'llama' | 'bert';
export type Task = { kind: 'causal-lm' } | { kind: 'classification'; numLabels: number };

/** Token ids [B, T] (int32), attention mask [B, T] (1 = token, 0 = right padding), labels [B] for classification. */
export interface Batch {
  ids: tf.Tensor2D;
  mask: tf.Tensor2D;
  labels?: tf.Tensor1D;
}

/** Base weights as read from a checkpoint, by Hugging Face name. */
export type TensorMap = Map<string, { shape: number[]; data: Float32Array | Int32Array }>;

export interface ModelDims {
  vocabSize: number;
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  intermediate: number;
  maxPositions: number;
}

export interface Model {
  family: Family;
  dims: ModelDims;
  task: Task;
  lora: LoraConfig;
  /** trainable tensors in module order (LoRA pairs by depth, then the head) */
  trainable: TrainableSpec[];
  units: Unit[];
  /** the family's graph over these weights: what ONNX Runtime runs (engine/index.ts runnerFor) */
  ir: IrModel;
  /**
   * logits: [B, T, V] for causal LM, [B, C] for classification, and their tangents [K, ...] when
   * params carry some. Frees each intermediate after its last use.
   */
  forward(batch: Batch, params: Params, dropoutSeed: number | null): Dual;
  /**
   * the frozen tensors by the graph's names: the checkpoint's names (GPT-2's without "transformer."),
   * Llama's and BERT's linear weights transposed to [in, out], Llama's tied head as lm_head.weight
   * and, with grouped-query heads, its repeat_kv constant
   */
  base: Map<string, tf.Tensor>;
  dispose(): void;
}

/**
 * The training loss of one batch, and its K directional derivatives when params carry tangents.
 * Causal LM: next-token cross-entropy over real tokens. Classification: cross-entropy of the labels.
 */
export function lossOf(model: Model, batch: Batch, params: Params, dropoutSeed: number | null): Dual {
  const logits = model.forward(batch, params, dropoutSeed);
  const out = tidyDual(() => {
    if (model.task.kind === 'classification') {
      if (!batch.labels) throw new Error('a classification batch needs labels');
      return crossEntropy(logits, batch.labels, tf.onesLike(batch.labels));
    }
    const [b] = batch.ids.shape;
    const next = tf.concat([tf.slice(batch.ids, [0, 1], [-1, -1]), tf.zeros([b, 1], 'int32')], 1);
    const weight = tf.concat([tf.slice(batch.mask, [0, 1], [-1, -1]), tf.zeros([b, 1])], 1);
    return crossEntropy(logits, next, weight);
  });
  disposeDual(logits);
  return out;
}

/** Params with no tangents, from plain tensors (inference and reverse mode). */
export function plainParams(values: Map<string, tf.Tensor>): Params {
  const p: Params = new Map();
  for (const [k, v] of values) p.set(k, { p: v, t: null });
  return p;
}

/** Required config.json fields, with a one-line error naming the missing one. */
export function need<T>(config: Record<string, unknown>, key: string, fallback?: T): T {
  const v = config[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new Error(`config.json has no "${key}"`);
  }
  return v as T;
}
