// Spry step 5a, "Aggregate": for every unit, the example-weighted mean over the clients that trained
// it; a unit trained by nobody keeps its value. In the per-iteration mode clients upload K jvp scalars
// instead of weights and the aggregator regenerates their perturbations from the seed.
import { normals } from '../../worker/rng.ts';
import { stepSeed } from '../../shared/seeds.ts';
import { type TensorSpec, type Unit, type Weights, sizeOf } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';

export type { ClientUpdate };

/**
 * Pseudo-gradient Δ = (weighted mean of the clients' values) − current, per tensor of every unit
 * that at least one update covers.
 */
export function aggregateWeights(globals: Weights, units: Unit[], updates: ClientUpdate[]): Weights {
  const delta: Weights = new Map();
  for (const unit of units) {
    const trainers = updates.filter((u) => u.units.includes(unit.name));
    const total = trainers.reduce((s, u) => s + u.numExamples, 0);
    if (trainers.length === 0 || total === 0) continue;
    for (const name of unit.tensors) {
      const cur = globals.get(name)!;
      const d = new Float32Array(cur.length);
      for (const u of trainers) {
        const w = u.weights?.get(name);
        if (!w) throw new Error(`update from ${u.client} lacks tensor "${name}" of its unit ${unit.name}`);
        const c = u.numExamples / total;
        for (let i = 0; i < d.length; i++) d[i] += c * w[i];
      }
      for (let i = 0; i < d.length; i++) d[i] -= cur[i];
      delta.set(name, d);
    }
  }
  return delta;
}

/**
 * Per-iteration Spry: each client's gradient ĝ = (1/K) Σ_k jvp_k v_k is rebuilt from the seed of
 * its step (the same Philox streams the client drew from: stream = the tensor's index in `specs`),
 * and Δ = −lr · ĝ, example-weighted over the clients that share a unit.
 */
export function aggregateJvp(specs: TensorSpec[], units: Unit[], updates: ClientUpdate[], roundSeed: string, lr: number): Weights {
  const stream = new Map(specs.map((s, i) => [s.name, i]));
  const delta: Weights = new Map();
  for (const unit of units) {
    const trainers = updates.filter((u) => u.units.includes(unit.name));
    const total = trainers.reduce((s, u) => s + u.numExamples, 0);
    if (trainers.length === 0 || total === 0) continue;
    for (const name of unit.tensors) {
      const size = sizeOf(specs[stream.get(name)!].shape);
      const d = new Float32Array(size);
      for (const u of trainers) {
        const jvp = u.jvp;
        if (!jvp || jvp.length === 0) throw new Error(`update from ${u.client} carries no jvp scalars`);
        const k = jvp.length;
        const v = normals(stepSeed(roundSeed, u.client, 0), stream.get(name)!, k * size);
        const c = (-lr * u.numExamples) / total / k;
        for (let j = 0; j < k; j++) for (let i = 0; i < size; i++) d[i] += c * jvp[j] * v[j * size + i];
      }
      delta.set(name, d);
    }
  }
  return delta;
}
