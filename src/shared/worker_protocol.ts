// Messages between the peer (or the simulator) and its compute workers. One definition, checked on
// receipt by the worker; weights travel as Float32Arrays (structured clone, no JSON).
import { z } from 'zod';
import type { HyperParams, MethodName } from './methods.ts';
import type { TensorSpec, Unit, Weights } from './units.ts';
import type { ClientUpdate } from './update.ts';

export const DataSpec = z.object({
  /** a built-in task name (sentiment, brown-genre, brown-lm) or a local .jsonl / .csv file */
  source: z.string().min(1),
  split: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('dirichlet'), clients: z.number().int().positive(), alpha: z.number().positive() }),
    z.object({ kind: z.literal('domain') }),
    /** this peer's own data: one client; optionally one natural domain of a built-in task */
    z.object({ kind: z.literal('local'), client: z.string().min(1), domain: z.string().optional() }),
  ]),
  seed: z.number().int().min(0),
  trainFraction: z.number().gt(0).lt(1).default(0.8),
  /** cap on examples per client (0 = all) */
  limit: z.number().int().min(0).default(0),
});
export type DataSpec = z.infer<typeof DataSpec>;

export const ModelSpec = z.object({
  /** a Hugging Face directory, or "embedded" */
  model: z.string().min(1),
  lora: z.object({
    r: z.number().int().positive(),
    alpha: z.number().positive(),
    dropout: z.number().min(0).lt(1),
    targetModules: z.array(z.string()).min(1),
  }).partial().default({}),
  backend: z.enum(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'),
  maxLength: z.number().int().positive().default(64),
  /** seed of the initial adapter (LoRA A, head): every peer derives the same one */
  initSeed: z.number().int().min(0).default(0),
});
export type ModelSpec = z.infer<typeof ModelSpec>;

export interface ClientInfo {
  id: string;
  train: number;
  test: number;
  labelCounts: number[];
}

export interface InitReply {
  backend: string;
  family: 'gpt2' | 'llama' | 'bert';
  /** the effective LoRA configuration (defaults filled in) */
  lora: { r: number; alpha: number; dropout: number; targetModules: string[] };
  specs: TensorSpec[];
  units: Unit[];
  labels: string[];
  clients: ClientInfo[];
  initial: Weights;
}

/** One client's evaluation: mean loss, and for classification the correct count and per-class counts. */
export interface EvalCounts {
  loss: number;
  correct: number;
  total: number;
  /** how many test examples were predicted as each class, and how many are of it */
  predicted?: number[];
  actual?: number[];
}

/**
 * RSS now and its peak since the process started (bytes), as the operating system counts them: the
 * whole process the worker thread runs in (a peer, the simulator), ONNX Runtime's buffers included
 * (see src/worker/process_memory.ts)
 */
export interface MemorySample {
  rss: number;
  peakRss: number;
}

export type WorkerRequest =
  | { id: number; type: 'init'; model: ModelSpec; data: DataSpec }
  | { id: number; type: 'train'; client: string; roundSeed: string; method: MethodName; hp: HyperParams; units: string[]; globals: Weights }
  | { id: number; type: 'evaluate'; client: string; globals: Weights; batchSize: number; finetune?: LocalFinetune }
  /** let the compute in flight finish and release the engine, before the thread is terminated */
  | { id: number; type: 'close' };

/**
 * Personalised evaluation (the paper's "accuracy after local finetuning"): before evaluating, the
 * client trains the global adapter on its own training split with the method's local training.
 */
export interface LocalFinetune {
  method: MethodName;
  hp: HyperParams;
  seed: string;
}

export type WorkerReply =
  | { id: number; type: 'init'; result: InitReply }
  | { id: number; type: 'train'; result: ClientUpdate; memory: MemorySample; ms: number }
  | { id: number; type: 'evaluate'; result: EvalCounts; memory: MemorySample }
  | { id: number; type: 'progress'; client: string; step: number; steps: number; loss: number; memory: MemorySample }
  | { id: number; type: 'closed' }
  | { id: number; type: 'error'; message: string };
