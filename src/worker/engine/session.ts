// ONNX Runtime sessions: the execution provider is chosen once per process (CUDA → DirectML →
// CoreML → WebGPU → CPU: the first that the installed binary offers and that actually creates a
// session), intra-op threads are the cores the user allows (default: all), and one session is
// kept per graph key (model, task, adapter layout, mode), with dynamic batch and sequence dims.
import os from 'node:os';
import { existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { Emitted, WeightFile } from './onnx.ts';

export type Provider = 'cuda' | 'dml' | 'coreml' | 'webgpu' | 'cpu';
export const PROVIDER_ORDER: Provider[] = ['cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

export interface EngineInfo {
  provider: Provider;
  threads: number;
  /** what the line printed beside the backend says, e.g. "onnxruntime-node 1.30.0 (cpu, 2 threads)" */
  detail: string;
}

let chosen: EngineInfo | null = null;
let threads = os.availableParallelism();
const cache = new Map<string, Promise<ort.InferenceSession>>();
/** runs in flight, and whether the engine is shutting down (see closeEngine) */
const running = new Set<Promise<unknown>>();
let closing = false;
/** sessions kept at once: each holds its own copy of the (prepacked) weights */
const MAX_SESSIONS = 4;

/** Threads for sessions created from now on (the cores the user allows). */
export function setThreads(n: number): void {
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`threads must be a positive integer, got ${n}`);
  if (n !== threads) clearSessions();
  threads = n;
  if (chosen) chosen = describe(chosen.provider);
}

const describe = (provider: Provider): EngineInfo => ({
  provider,
  threads,
  detail: `onnxruntime-node ${ort.env.versions.common} (${provider}, ${threads} thread${threads === 1 ? '' : 's'})`,
});

function options(provider: Provider): ort.InferenceSession.SessionOptions {
  // the CPU arena kept growing after warm-up in the prototype (2.7 GB peak, 1.8 GB without it);
  // MatMul + Add + Gelu fused into BiasGelu/FastGelu made GPT-2's inference step 3 times slower on
  // the CPU provider (measured with ORT 1.30: 35 ms against 100 ms on the 4-layer × 256 shape)
  return {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    enableMemPattern: false,
    logSeverityLevel: 3,
    extra: { optimization: { disable_specified_optimizers: 'BiasGeluFusion;FastGeluFusion' } },
  };
}

/** A one-node graph, to see whether a provider creates a session here. */
function probeModel(): Uint8Array {
  const { onnx } = onnxProto;
  const info = (name: string) => ({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } } });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 20 }],
    graph: { name: 'probe', node: [{ opType: 'Add', input: ['x', 'x'], output: ['y'] }], input: [info('x')], output: [info('y')] },
  }).finish();
}

/**
 * A provider that is not bundled (CUDA, TensorRT) is a library that the package's install script
 * downloads; when that was skipped (offline installs), trying it would only log an error.
 */
function installed(b: { name: string; bundled: boolean }): boolean {
  // WebGPU on Linux needs a GPU device node; without one, Dawn only prints a Vulkan warning
  if (b.name === 'webgpu' && process.platform === 'linux') return existsSync('/dev/dri') || existsSync('/dev/nvidia0');
  if (b.bundled) return true;
  const bin = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
  return existsSync(join(bin, process.platform === 'win32' ? `onnxruntime_providers_${b.name}.dll` : `libonnxruntime_providers_${b.name}.so`));
}

/** Choose the execution provider (once); `prefer` forces one, e.g. tests pin 'cpu' for double graphs. */
export async function initEngine(prefer: Provider | 'auto' = 'auto'): Promise<EngineInfo> {
  if (chosen && (prefer === 'auto' || prefer === chosen.provider)) return chosen;
  const offered = new Set(ort.listSupportedBackends().filter(installed).map((b) => b.name));
  const order = prefer === 'auto' ? PROVIDER_ORDER.filter((p) => offered.has(p)) : [prefer];
  const failures: string[] = [];
  for (const provider of order) {
    try {
      const s = await ort.InferenceSession.create(probeModel(), options(provider));
      await s.release();
      clearSessions();
      chosen = describe(provider);
      return chosen;
    } catch (e) {
      failures.push(`${provider}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    }
  }
  throw new Error(`no ONNX Runtime execution provider could start (${failures.join('; ')})`);
}

export function engineInfo(): EngineInfo | null {
  return chosen;
}

function clearSessions(): void {
  for (const s of cache.values()) s.then((x) => x.release()).catch(() => {});
  cache.clear();
}

/**
 * Run a session, counted as in flight. A worker thread terminated while ONNX Runtime still runs
 * for it ends the whole process ("terminate called after throwing an instance of Napi::Error"),
 * so closeEngine() waits for these before the thread goes.
 */
export function run(s: ort.InferenceSession, feeds: ort.InferenceSession.FeedsType): Promise<ort.InferenceSession.ReturnType> {
  if (closing) return Promise.reject(new Error('the compute engine is shutting down'));
  const r = s.run(feeds);
  running.add(r);
  const done = () => running.delete(r);
  r.then(done, done);
  return r;
}

/** Refuse new runs, let the ones in flight finish, and release every session. */
export async function closeEngine(): Promise<void> {
  closing = true;
  await Promise.allSettled([...running]);
  await Promise.allSettled([...cache.values()].map((s) => s.then((x) => x.release())));
  cache.clear();
}

/**
 * The session for `key`, built from `build()` on first use and kept (least recently used goes
 * first), its weights taken from `weights`.
 */
export function session(key: string, build: () => Emitted, weights: WeightFile): Promise<ort.InferenceSession> {
  if (closing) return Promise.reject(new Error('the compute engine is shutting down'));
  let s = cache.get(key);
  if (s) {
    cache.delete(key);
    cache.set(key, s);
    return s;
  }
  s = (async () => {
    const info = chosen ?? (await initEngine());
    // weights as external data: ONNX Runtime maps the file instead of copying the weights out of
    // a protobuf buffer that JavaScript holds at the same time (GPT-2 small: 950 MB against 1.8 GB
    // resident once the session is built)
    const model = weights.write(build());
    try {
      return await ort.InferenceSession.create(model, options(info.provider));
    } finally {
      rmSync(model, { force: true });
    }
  })();
  s.catch(() => cache.delete(key));
  cache.set(key, s);
  while (cache.size > MAX_SESSIONS) {
    const [oldest, old] = cache.entries().next().value!;
    cache.delete(oldest);
    old.then((x) => x.release()).catch(() => {});
  }
  return s;
}

export { ort };
