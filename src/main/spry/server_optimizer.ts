// Spry step 5b: the server optimizer, applied to the pseudo-gradient Δ = mean − current of each
// tensor that was trained this round. Plain float32 arithmetic (no tensor backend), so every peer
// that replays it gets the same bits. FedYogi / FedAdam as in Reddi et al. 2021, without bias
// correction and with m, v starting at 0, as the paper's code does.
import type { ServerOptName } from '../../shared/methods.ts';
import type { Weights } from '../../shared/units.ts';

export interface ServerOptConfig {
  name: ServerOptName;
  lr: number;
  beta1: number;
  beta2: number;
  tau: number;
}

export interface ServerOptState {
  m: Weights;
  v: Weights;
}

export const emptyServerState = (): ServerOptState => ({ m: new Map(), v: new Map() });

/** w ← step(w, Δ) for every tensor in `delta`; tensors absent from `delta` keep their value. */
export function serverStep(cfg: ServerOptConfig, state: ServerOptState, weights: Weights, delta: Weights): Weights {
  const out: Weights = new Map(weights);
  for (const [name, d] of delta) {
    const w = weights.get(name)!;
    const next = new Float32Array(w.length);
    if (cfg.name === 'fedavg') {
      for (let i = 0; i < w.length; i++) next[i] = w[i] + d[i];
    } else {
      const m = state.m.get(name) ?? new Float32Array(w.length);
      const v = state.v.get(name) ?? new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) {
        m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * d[i];
        const d2 = d[i] * d[i];
        v[i] = cfg.name === 'fedyogi' ? v[i] - (1 - cfg.beta2) * d2 * Math.sign(v[i] - d2) : cfg.beta2 * v[i] + (1 - cfg.beta2) * d2;
        next[i] = w[i] + (cfg.lr * m[i]) / (Math.sqrt(v[i]) + cfg.tau);
      }
      state.m.set(name, m);
      state.v.set(name, v);
    }
    out.set(name, next);
  }
  return out;
}
