// AdamW (Loshchilov & Hutter): decoupled weight decay, bias-corrected moments. One instance per
// client per round (Spry starts each round's local optimizer fresh).
import * as tf from '@tensorflow/tfjs';

export interface AdamWConfig {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 };

export class AdamW {
  readonly cfg: AdamWConfig;
  #m = new Map<string, tf.Tensor>();
  #v = new Map<string, tf.Tensor>();
  #step = 0;

  constructor(cfg: Partial<AdamWConfig> = {}) {
    this.cfg = { ...ADAMW_DEFAULTS, ...cfg };
  }

  /** Update `values` in place (their entries are replaced; the old tensors are disposed). */
  step(values: Map<string, tf.Tensor>, grads: Map<string, tf.Tensor>): void {
    const { lr, beta1, beta2, eps, weightDecay } = this.cfg;
    this.#step++;
    const c1 = 1 - beta1 ** this.#step;
    const c2 = 1 - beta2 ** this.#step;
    for (const [name, g] of grads) {
      const w = values.get(name)!;
      const [m, v, next] = tf.tidy(() => {
        const m = tf.add(tf.mul(this.#m.get(name) ?? tf.zerosLike(g), beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.#v.get(name) ?? tf.zerosLike(g), beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), eps));
        return [m, v, tf.sub(tf.mul(w, 1 - lr * weightDecay), tf.mul(update, lr))];
      });
      this.#m.get(name)?.dispose();
      this.#v.get(name)?.dispose();
      this.#m.set(name, m);
      this.#v.set(name, v);
      w.dispose();
      values.set(name, next);
    }
  }

  dispose(): void {
    tf.dispose([...this.#m.values(), ...this.#v.values()]);
    this.#m.clear();
    this.#v.clear();
  }
}
