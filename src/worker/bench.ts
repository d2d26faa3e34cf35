// Measured memory and time of one training step, by method, on one model, batch and sequence length.
// Each method runs in its own child process, so that process RSS (which the wasm heap never gives
// back) belongs to that method alone; tensor memory is TensorFlow.js's own profile (peakBytes).
// The ort-* modes run the same steps on the ONNX Runtime engine (src/worker/engine), where only
// RSS is measured: ort-weights is a process that builds the jvp step's session (so it holds the
// weights as the jvp process does) and runs nothing, the baseline for each mode's working memory.
// ort-jvp-assignments times the jvp step of each client of a Spry round (its tangents start at its
// first assigned unit) beside the inference step, in one process. Every mode also reports its working
// memory within its own process: its peak RSS above its RSS once the model is loaded.
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BackendName, initBackend } from './backend.ts';
import { createModel, defaultLora, familyOf, loadModel } from './models/index.ts';
import { resolveModelDir } from './models/embedded.ts';
import { type Batch, type Model, type Task, lossOf, plainParams } from './models/model.ts';
import { GPT2_SMALL, type RandomShape, randomCheckpoint } from './models/random.ts';
import { loadHfDir } from './io/hf_dir.ts';
import { initTrainable } from './models/lora.ts';
import { backpropGradient, forwardGradient, zeroOrderGradient } from './train/gradients.ts';
import { unitsOf } from './models/lora.ts';
import { tensorsOf } from '../shared/units.ts';
// the rule the aggregator assigns units by: a pure function, measured here as the product uses it
import { assignUnits } from '../main/spry/assignment.ts';
import { disposeDual } from './fwd/dual.ts';
import { Rng } from '../shared/spry/rng.ts';
import type { TensorMap } from './models/model.ts';
import { irModel } from './engine/index.ts';
import { Runner } from './engine/runner.ts';
import type { HostBatch } from './engine/model.ts';
import { initEngine, setThreads } from './engine/session.ts';
import { markWorkingMemory } from './process_memory.ts';

export const TFJS_MODES = ['forward', 'backprop', 'zero-order', 'inference'] as const;
export const ENGINE_MODES = ['ort-jvp', 'ort-inference', 'ort-backprop', 'ort-weights', 'ort-jvp-assignments'] as const;
export const BENCH_MODES = [...TFJS_MODES, ...ENGINE_MODES] as const;
export type BenchMode = (typeof BENCH_MODES)[number];

export interface BenchArgs {
  /** a Hugging Face directory, or "gpt2-small-random" (GPT-2 small's shape, random weights) */
  model: string;
  batch: number;
  seq: number;
  steps: number;
  /** adapted layers to perturb/train: "all" or a range like "8-11" */
  layers: string;
  k: number;
  backend: BackendName | 'auto';
  /** ONNX Runtime intra-op threads (default: all cores) */
  threads?: number;
  /** the 2-class head (default) or next-token prediction with the LM head */
  task?: 'classification' | 'lm';
  /** clients of the Spry round ort-jvp-assignments splits the units among (default: one per unit) */
  clients?: number;
}

/**
 * Random-weight checkpoints by name: GPT-2 small, the 4-layer × 256 shape of the engine issue, and
 * a Llama of about 1 B parameters (TinyLlama 1.1B's shape, its LM head tied to the embedding).
 */
export const RANDOM: Record<string, RandomShape> = {
  'gpt2-small-random': GPT2_SMALL,
  'gpt2-4x256-random': { family: 'gpt2', layers: 4, hidden: 256, heads: 4, vocab: 8192, positions: 1024 },
  'llama-1b-random': { family: 'llama', layers: 22, hidden: 2048, heads: 32, kvHeads: 4, intermediate: 5632, vocab: 32000, positions: 2048 },
};

export interface ModeResult {
  mode: BenchMode;
  /** peak bytes of live tensors during a step, weights included (NaN on ONNX Runtime: not tracked) */
  peakTensorBytes: number;
  /** the same, less what was live before the step (weights, adapter): the step's own working memory */
  stepTensorBytes: number;
  /** peak resident set size of the process running this mode */
  peakRssBytes: number;
  /** its RSS once the model, adapter and batch are loaded, before the first (warm-up) step */
  loadedRssBytes: number;
  /**
   * its peak RSS from then on (warm-up included: sessions, prepacked weights, kernels), above
   * loadedRssBytes: the mode's working memory, in the same process; NaN off Linux (see restartPeak)
   */
  workingRssBytes: number;
  /** ort-jvp-assignments: the mean over clients of each one's median step */
  medianStepMs: number;
  stepMs: number[];
  backend: string;
  trainable: number;
  /** ort-jvp-assignments: each client's first unit and median jvp step, and the inference step's median in the same process */
  clients?: { first: string; units: number; medianStepMs: number }[];
  inferenceMs?: number;
}

function layerFilter(spec: string): (name: string) => boolean {
  if (spec === 'all') return () => true;
  const m = spec.match(/^(\d+)(?:-(\d+))?$/);
  if (!m) throw new Error(`--layers must be "all" or a range like 8-11, got "${spec}"`);
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  return (name) => {
    const l = name.match(/\.(?:h|layers|layer)\.(\d+)\./);
    return l !== null && Number(l[1]) >= lo && Number(l[1]) <= hi;
  };
}

const taskOf = (args: BenchArgs): Task => (args.task === 'lm' ? { kind: 'causal-lm' } : { kind: 'classification', numLabels: 2 });
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function checkpoint(args: BenchArgs): Promise<{ config: Record<string, unknown>; tensors: TensorMap }> {
  const shape = RANDOM[args.model];
  if (shape) return randomCheckpoint(shape, 0);
  const hf = await loadHfDir(resolveModelDir(args.model));
  return { config: hf.config, tensors: hf.tensors };
}

async function buildModel(args: BenchArgs): Promise<Model> {
  if (RANDOM[args.model]) {
    const { config, tensors } = await checkpoint(args);
    return createModel(config, tensors, taskOf(args));
  }
  return (await loadModel(resolveModelDir(args.model), taskOf(args))).model;
}

/** Runs one mode in this process and returns its measurements. */
export async function measureMode(mode: BenchMode, args: BenchArgs): Promise<ModeResult> {
  if ((ENGINE_MODES as readonly string[]).includes(mode)) return measureEngineMode(mode, args);
  const backend = await initBackend(args.backend);
  const model = await buildModel(args);
  if (args.seq > model.dims.maxPositions) throw new Error(`--seq ${args.seq} exceeds the model's ${model.dims.maxPositions} positions`);
  const values = initTrainable(model.trainable, 1);
  // B ≠ 0 so that every step does the full work of a trained adapter
  for (const s of model.trainable) if (s.name.endsWith('lora_B.weight')) values.set(s.name, tf.randomNormal(s.shape, 0, 0.02));
  const keep = layerFilter(args.layers);
  const names = model.trainable.filter((s) => s.name.startsWith('score') || s.name.startsWith('classifier') || keep(s.name)).map((s) => s.name);
  const batch: Batch = {
    ids: tf.randomUniform([args.batch, args.seq], 0, model.dims.vocabSize, 'int32') as tf.Tensor2D,
    mask: tf.ones([args.batch, args.seq]) as tf.Tensor2D,
    labels: args.task === 'lm' ? undefined : (tf.randomUniform([args.batch], 0, 2, 'int32') as tf.Tensor1D),
  };
  const step = (i: number) => {
    if (mode === 'inference') {
      tf.tidy(() => { const out = lossOf(model, batch, plainParams(values), null); out.p.dataSync(); disposeDual(out); });
      return;
    }
    const est =
      mode === 'forward' ? forwardGradient(model, batch, values, names, args.k, `bench/${i}`, i)
      : mode === 'backprop' ? backpropGradient(model, batch, values, names, i)
      : zeroOrderGradient(model, batch, values, names, { k: 1, eps: 1e-3, scheme: 'central', seed: `bench/${i}`, dropoutSeed: i });
    tf.dispose([...est.grads.values()]);
  };
  const working = markWorkingMemory();
  step(-1); // warm-up: kernels compiled, wasm heap grown
  const before = tf.memory().numBytes;
  const times: number[] = [];
  let peak = 0;
  for (let i = 0; i < args.steps; i++) {
    const t0 = performance.now();
    const info = await tf.profile(() => step(i));
    times.push(performance.now() - t0);
    peak = Math.max(peak, info.peakBytes);
  }
  const w = working();
  return {
    mode,
    peakTensorBytes: peak,
    stepTensorBytes: peak - before,
    peakRssBytes: w.peakRss,
    loadedRssBytes: w.markRss,
    workingRssBytes: w.workingRss,
    medianStepMs: median(times),
    stepMs: times,
    backend: backend.name,
    trainable: names.length,
  };
}

/**
 * One mode on the ONNX Runtime engine: the same model, adapter (B ≠ 0), perturbed tensors, K and
 * batch shape as the TensorFlow.js modes. The first step (tracing, session creation) is not timed.
 */
async function measureEngineMode(mode: BenchMode, args: BenchArgs): Promise<ModeResult> {
  if (args.threads) setThreads(args.threads);
  const engine = await initEngine();
  const { config, tensors } = await checkpoint(args);
  // the adapter createModel gives the TensorFlow.js modes: the family's default
  const ir = irModel(config, tensors, taskOf(args), defaultLora(familyOf(config)));
  if (args.seq > ir.dims.maxPositions) throw new Error(`--seq ${args.seq} exceeds the model's ${ir.dims.maxPositions} positions`);
  // the runner keeps the weights in its weight file only: the process holds them once, as ORT's
  const runner = new Runner(ir, args.model);
  runner.releaseHostWeights();
  // the checkpoint arrays the IR model copied (Llama's, transposed) are freed now, not at some later
  // collection that ONNX Runtime's allocations do not prompt (4 GB at the 1 B Llama's peak)
  const used = new Set<unknown>([...ir.trace(false).graph.consts.values()].map((c) => c.data));
  for (const { data } of tensors.values())
    if (!used.has(data) && data.byteLength > 0 && data.byteOffset === 0 && data.byteLength === data.buffer.byteLength) (data.buffer as ArrayBuffer & { transfer(n: number): ArrayBuffer }).transfer(0);
  tensors.clear();
  const rng = new Rng('bench', 1);
  const values = new Map(ir.trainable.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => 0.02 * rng.normal())]));
  const keep = layerFilter(args.layers);
  const names = ir.trainable.filter((s) => s.name.startsWith('score') || keep(s.name)).map((s) => s.name);
  const n = args.batch * args.seq;
  const batch: HostBatch = {
    b: args.batch,
    t: args.seq,
    ids: Int32Array.from({ length: n }, () => rng.int(ir.dims.vocabSize)),
    mask: new Float32Array(n).fill(1),
    labels: args.task === 'lm' ? null : Int32Array.from({ length: args.batch }, () => rng.int(2)),
  };
  /** median of args.steps timed steps (also appended to `all`), after one untimed (tracing, session, a seed no timed step uses) */
  const timed = async (step: (i: number) => Promise<unknown>, all: number[] = []) => {
    await step(args.steps);
    const times: number[] = [];
    for (let i = 0; i < args.steps; i++) {
      const t0 = performance.now();
      await step(i);
      times.push(performance.now() - t0);
    }
    all.push(...times);
    return median(times);
  };
  const working = markWorkingMemory();
  const result = (medianStepMs: number, stepMs: number[], extra: Partial<ModeResult> = {}): ModeResult => {
    const w = working();
    return {
      mode,
      peakTensorBytes: NaN,
      stepTensorBytes: NaN,
      peakRssBytes: w.peakRss,
      loadedRssBytes: w.markRss,
      workingRssBytes: w.workingRss,
      medianStepMs,
      stepMs,
      backend: engine.detail,
      trainable: names.length,
      ...extra,
    };
  };
  const inference = () => runner.loss(batch, values, null);
  if (mode === 'ort-weights') {
    await runner.prepareJvp(names, 0);
    return result(NaN, []);
  }
  if (mode === 'ort-jvp-assignments') {
    const units = unitsOf(ir.trainable).filter((u) => u.tensors.some((n) => names.includes(n)));
    const clients = Array.from({ length: args.clients ?? units.length }, (_, j) => `client-${j}`);
    const firstOf = (a: string[]) => units.findIndex((u) => u.name === a[0]);
    // in order of their first unit, so that clients sharing a jvp graph run back to back
    const assigned = [...assignUnits(units, clients, true).values()].sort((a, b) => firstOf(a) - firstOf(b));
    const inferenceMs = await timed(inference);
    const per: NonNullable<ModeResult['clients']> = [];
    const times: number[] = [];
    for (const a of assigned) {
      const ms = await timed((i) => runner.forwardGradient(batch, values, tensorsOf(units, a), args.k, `bench/${i}`, i), times);
      per.push({ first: a[0], units: a.length, medianStepMs: ms });
    }
    return result(per.reduce((sum, c) => sum + c.medianStepMs, 0) / per.length, times, { clients: per, inferenceMs });
  }
  const times: number[] = [];
  const ms = await timed(
    mode === 'ort-jvp' ? (i) => runner.forwardGradient(batch, values, names, args.k, `bench/${i}`, i)
    : mode === 'ort-backprop' ? (i) => runner.backprop(batch, values, names, i)
    : inference,
    times,
  );
  return result(ms, times);
}

/** Runs every mode, each in a fresh child process. */
export async function runBench(args: BenchArgs, modes: readonly BenchMode[] = BENCH_MODES, onMode?: (r: ModeResult) => void): Promise<ModeResult[]> {
  const results: ModeResult[] = [];
  for (const mode of modes) {
    const r = await inChild(mode, args);
    onMode?.(r);
    results.push(r);
  }
  return results;
}

function inChild(mode: BenchMode, args: BenchArgs): Promise<ModeResult> {
  return new Promise((resolve, reject) => {
    // inside the desktop app process.execPath is Electron: ELECTRON_RUN_AS_NODE makes it a plain Node
    const env = { ...process.env, ELECTRON_RUN_AS_NODE: '1' };
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), mode, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`bench ${mode} failed: ${(err.trim().split('\n').pop() ?? '') || `exit ${code}`}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!));
      } catch {
        reject(new Error(`bench ${mode} printed no result`));
      }
    });
  });
}

if (import.meta.main) {
  const [mode, json] = process.argv.slice(2);
  measureMode(mode as BenchMode, JSON.parse(json))
    .then((r) => console.log(JSON.stringify(r)))
    .catch((e: Error) => {
      console.error(e.message.split('\n')[0]);
      process.exit(1);
    });
}
