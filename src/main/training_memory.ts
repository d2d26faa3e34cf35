// Training working memory per gradient estimator, each measured in a process of its own. Worker
// threads share their process's RSS, so inside a peer or the simulator a figure is the whole
// process's, never one method's; the bench code (src/worker/bench.ts) instead runs a few steps of
// one estimator in a child process, with the given model, batch, sequence length and directions,
// and reports the child's peak RSS above its RSS once the model was loaded.
import type { BackendName } from '../worker/backend.ts';
import type { TrainingMemoryFigure } from '../shared/api.ts';
import { type BenchMode, runBench } from '../worker/bench.ts';

export interface TrainingMemorySettings {
  /** a model directory, "embedded", or a random shape the bench knows */
  model: string;
  batch: number;
  seq: number;
  /** forward-mode directions per step */
  k: number;
  /** measure on ONNX Runtime's engine, as training runs where it started, or on TensorFlow.js */
  onnxRuntime: boolean;
  /** TensorFlow.js's backend, for onnxRuntime false (default auto) */
  backend?: BackendName | 'auto';
  /** measured steps after the warm-up one (default 2) */
  steps?: number;
}

/** peakRssBytes: the child process's peak; workingRssBytes: that peak above its RSS once the model was loaded (sessions, activations, gradients; null off Linux) */
export interface TrainingMemory extends TrainingMemoryFigure {
  /** the bench mode that ran the steps */
  mode: BenchMode;
  /** the engine as the bench names it, e.g. "onnxruntime-node 1.30.0 (cpu, 2 threads)" */
  engine: string;
}

/** Forward mode (Spry, FedFgd) and backprop (FedAvg, FedYogi, FedAvgSplit). */
export type MeasuredEstimator = 'forward' | 'backprop';

const MODES: Record<MeasuredEstimator, { ort: BenchMode; tfjs: BenchMode }> = {
  forward: { ort: 'ort-jvp', tfjs: 'forward' },
  backprop: { ort: 'ort-backprop', tfjs: 'backprop' },
};

/** Whether a compute worker's backend line says that training ran on ONNX Runtime's engine. */
export const trainsOnOnnxRuntime = (backend: string) => backend.startsWith('onnxruntime-node ');

/**
 * Forward mode's and backprop's training memory on the same settings, one child process each, one
 * after the other (so that neither competes with the other for memory). Every trainable tensor is
 * perturbed or trained: a Spry client that perturbs only its units needs at most this much.
 */
export async function trainingMemory(s: TrainingMemorySettings): Promise<Record<MeasuredEstimator, TrainingMemory>> {
  const estimators = Object.keys(MODES) as MeasuredEstimator[];
  const modes = estimators.map((e) => (s.onnxRuntime ? MODES[e].ort : MODES[e].tfjs));
  const results = await runBench({ model: s.model, batch: s.batch, seq: s.seq, steps: s.steps ?? 2, layers: 'all', k: s.k, backend: s.backend ?? 'auto' }, modes);
  const figure = (i: number): TrainingMemory => {
    const r = results[i]!;
    // not measured: NaN, which the child's JSON carries as null
    const working = Number.isFinite(r.workingRssBytes) ? r.workingRssBytes : null;
    return { mode: r.mode, engine: r.backend, peakRssBytes: r.peakRssBytes, workingRssBytes: working, medianStepMs: r.medianStepMs };
  };
  return { forward: figure(0), backprop: figure(1) };
}
