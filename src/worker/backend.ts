// The tensor backend, chosen once per process (or worker thread) and reported.
// Preference: native TensorFlow (GPU, then CPU) when its optional package is installed,
// then wasm (SIMD, ships with the package), then the pure-JS cpu backend.
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export interface BackendInfo { name: BackendName; detail: string }

let chosen: BackendInfo | null = null;

async function tryNative(): Promise<string | null> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      if (await tf.setBackend('tensorflow')) return pkg;
    } catch {
      // not installed, or its native library failed to load: fall through
    }
  }
  return null;
}

/** Select the best available backend. `prefer` forces one (e.g. tests pin 'wasm' or 'cpu'). */
export async function initBackend(prefer: BackendName | 'auto' = 'auto'): Promise<BackendInfo> {
  if (chosen && (prefer === 'auto' || prefer === chosen.name)) return chosen;
  const order: BackendName[] = prefer === 'auto' ? ['tensorflow', 'wasm', 'cpu'] : [prefer];
  for (const name of order) {
    if (name === 'tensorflow') {
      const pkg = await tryNative();
      if (pkg) { chosen = { name, detail: pkg }; break; }
      continue;
    }
    try {
      if (await tf.setBackend(name)) {
        await tf.ready();
        chosen = { name, detail: name === 'wasm' ? 'tfjs-backend-wasm (SIMD)' : 'tfjs-backend-cpu (pure JS)' };
        break;
      }
    } catch {
      // try the next backend
    }
  }
  if (!chosen) throw new Error(`no TensorFlow.js backend could start (tried ${order.join(', ')})`);
  return chosen;
}

export function backendInfo(): BackendInfo | null { return chosen; }
