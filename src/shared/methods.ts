// The federated methods FedForward runs, as data: how a client estimates its gradient, whether the
// trainable units are split among the round's clients (Spry's idea), and the server optimizer.
// The simulation and the peer-to-peer federation read the same table.
import { z } from 'zod';

export const METHOD_NAMES = ['spry', 'fedavg', 'fedyogi', 'fedsgd', 'fedfgd', 'fedavgsplit', 'fedmezo', 'fwdllm', 'baffle'] as const;
export type MethodName = (typeof METHOD_NAMES)[number];

export type Estimator =
  | { kind: 'forward'; k: number }
  | { kind: 'backprop' }
  | { kind: 'zero-order'; scheme: 'central' | 'forward'; k: number; eps: number };

export type ServerOptName = 'fedyogi' | 'fedadam' | 'fedavg';

export interface MethodSpec {
  name: MethodName;
  description: string;
  estimator: Estimator;
  /** split the trainable units among the round's clients (Spry, FedAvgSplit) */
  split: boolean;
  server: ServerOptName;
  /** 'epoch': local epochs of AdamW, weights uploaded; 'step': one gradient per round, uploaded as such */
  local: 'epoch' | 'step';
}

export const METHODS: Record<MethodName, MethodSpec> = {
  spry: { name: 'spry', description: 'Spry: forward gradients on a split of the adapter, FedYogi server', estimator: { kind: 'forward', k: 1 }, split: true, server: 'fedyogi', local: 'epoch' },
  fedavg: { name: 'fedavg', description: 'FedAvg with backpropagation', estimator: { kind: 'backprop' }, split: false, server: 'fedavg', local: 'epoch' },
  fedyogi: { name: 'fedyogi', description: 'FedYogi with backpropagation', estimator: { kind: 'backprop' }, split: false, server: 'fedyogi', local: 'epoch' },
  fedsgd: { name: 'fedsgd', description: 'FedSGD: one backprop gradient per client per round, averaged', estimator: { kind: 'backprop' }, split: false, server: 'fedavg', local: 'step' },
  fedfgd: { name: 'fedfgd', description: 'forward gradients without the split (every client perturbs every weight)', estimator: { kind: 'forward', k: 1 }, split: false, server: 'fedyogi', local: 'epoch' },
  fedavgsplit: { name: 'fedavgsplit', description: "backprop with Spry's split (ablation)", estimator: { kind: 'backprop' }, split: true, server: 'fedavg', local: 'epoch' },
  fedmezo: { name: 'fedmezo', description: 'FedMeZO: zero-order SPSA, two forward passes per step', estimator: { kind: 'zero-order', scheme: 'central', k: 1, eps: 1e-3 }, split: false, server: 'fedavg', local: 'epoch' },
  fwdllm: { name: 'fwdllm', description: 'FwdLLM+: finite-difference forward gradients, K = 20, h = 1e-2', estimator: { kind: 'zero-order', scheme: 'forward', k: 20, eps: 1e-2 }, split: false, server: 'fedavg', local: 'epoch' },
  baffle: { name: 'baffle', description: 'Baffle+: finite-difference forward gradients, K = 10, σ = 1e-4', estimator: { kind: 'zero-order', scheme: 'forward', k: 10, eps: 1e-4 }, split: false, server: 'fedavg', local: 'epoch' },
};

/** Hyperparameters of a run, with the paper's defaults; every one is a user setting. */
export const HyperParams = z.object({
  /** local AdamW */
  lr: z.number().positive().default(1e-4),
  weightDecay: z.number().min(0).default(0.01),
  beta1: z.number().min(0).lt(1).default(0.9),
  beta2: z.number().min(0).lt(1).default(0.999),
  localEpochs: z.number().int().positive().default(1),
  batchSize: z.number().int().positive().default(8),
  maxLength: z.number().int().positive().default(64),
  /** forward-mode tangents per batch (Spry, FedFgd); overrides the method's K */
  k: z.number().int().positive().optional(),
  /** Spry: 'epoch' uploads weights after local epochs; 'iteration' uploads K jvp scalars per step */
  spryMode: z.enum(['epoch', 'iteration']).default('epoch'),
  /** server optimizer (FedYogi defaults: η = 1e-2, β1 = 0.9, β2 = 0.99, τ = 1e-3); overrides the method's */
  server: z.enum(['fedyogi', 'fedadam', 'fedavg']).optional(),
  serverLr: z.number().positive().default(1e-2),
  serverBeta1: z.number().min(0).lt(1).default(0.9),
  serverBeta2: z.number().min(0).lt(1).default(0.99),
  serverTau: z.number().positive().default(1e-3),
  /** cap on local steps per round (0 = a full epoch) */
  maxLocalSteps: z.number().int().min(0).default(0),
});
export type HyperParams = z.infer<typeof HyperParams>;

export function methodSpec(name: string): MethodSpec {
  if (!(METHOD_NAMES as readonly string[]).includes(name)) throw new Error(`unknown method "${name}" (methods: ${METHOD_NAMES.join(', ')})`);
  return METHODS[name as MethodName];
}

/** The estimator actually used, with the K override applied to forward-mode methods. */
export function estimatorOf(spec: MethodSpec, hp: HyperParams): Estimator {
  return spec.estimator.kind === 'forward' && hp.k ? { kind: 'forward', k: hp.k } : spec.estimator;
}

/** Spry's per-iteration mode turns local training into one step per round, uploaded as jvp scalars. */
export const perIteration = (spec: MethodSpec, hp: HyperParams) => spec.name === 'spry' && hp.spryMode === 'iteration';
