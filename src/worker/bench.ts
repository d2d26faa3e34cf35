// Measured memory and time of one training step, by method, on one model, batch and sequence length.
// Each method runs in its own child process, so that process RSS (which the wasm heap never gives
// back) belongs to that method alone; tensor memory is TensorFlow.js's own profile (peakBytes).
import * as tf from '@tensorflow/tfjs';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { type BackendName, initBackend } from './backend.ts';
import { createModel, loadModel } from './models/index.ts';
import { resolveModelDir } from './models/embedded.ts';
import { type Batch, type Model, lossOf, plainParams } from './models/model.ts';
import { GPT2_SMALL, randomCheckpoint } from './models/random.ts';
import { initTrainable } from './models/lora.ts';
import { backpropGradient, forwardGradient, zeroOrderGradient } from './train/gradients.ts';
import { disposeDual } from './fwd/dual.ts';

export const BENCH_MODES = ['forward', 'backprop', 'zero-order', 'inference'] as const;
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
}

export interface ModeResult {
  mode: BenchMode;
  /** peak bytes of live tensors during a step, weights included */
  peakTensorBytes: number;
  /** the same, less what was live before the step (weights, adapter): the step's own working memory */
  stepTensorBytes: number;
  /** peak resident set size of the process running this mode */
  peakRssBytes: number;
  medianStepMs: number;
  stepMs: number[];
  backend: string;
  trainable: number;
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

async function buildModel(args: BenchArgs): Promise<Model> {
  const task = { kind: 'classification', numLabels: 2 } as const;
  if (args.model === 'gpt2-small-random') {
    const { config, tensors } = randomCheckpoint(GPT2_SMALL, 0);
    return createModel(config, tensors, task);
  }
  return (await loadModel(resolveModelDir(args.model), task)).model;
}

/** Runs one mode in this process and returns its measurements. */
export async function measureMode(mode: BenchMode, args: BenchArgs): Promise<ModeResult> {
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
    labels: tf.randomUniform([args.batch], 0, 2, 'int32') as tf.Tensor1D,
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
  const sorted = times.slice().sort((a, b) => a - b);
  return {
    mode,
    peakTensorBytes: peak,
    stepTensorBytes: peak - before,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    medianStepMs: sorted[Math.floor(sorted.length / 2)],
    stepMs: times,
    backend: backend.name,
    trainable: names.length,
  };
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
