// Spry step 5a, "Aggregate": for every unit, the example-weighted mean over the clients that trained
// it; a unit trained by nobody keeps its value. In the per-iteration mode clients upload K jvp scalars
// instead of weights and the aggregator regenerates their perturbations from the seed.
import { normals } from '../../worker/rng.ts';
import { stepSeed } from '../../shared/seeds.ts';
import { type TensorSpec, type Unit, type Weights, sizeOf } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';

export type { ClientUpdate };

/**
 * For every tensor of every unit that at least one update covers, Δ = combine(name, trainers, total),
 * where trainers are the updates whose client trained the unit and total their example count.
 * Units nobody trained get no Δ, and so keep their value.
 */
function perTrainedTensor(units: Unit[], updates: ClientUpdate[], combine: (name: string, trainers: ClientUpdate[], total: number) => Float32Array): Weights {
  const delta: Weights = new Map();
  for (const unit of units) {
    const trainers = updates.filter((u) => u.units.includes(unit.name));
    const total = trainers.reduce((s, u) => s + u.numExamples, 0);
    if (trainers.length === 0 || total === 0) continue;
    for (const name of unit.tensors) delta.set(name, combine(name, trainers, total));
  }
  return delta;
}

/** Pseudo-gradient Δ = (example-weighted mean of the trainers' values) − current. */
export function aggregateWeights(globals: Weights, units: Unit[], updates: ClientUpdate[]): Weights {
  return perTrainedTensor(units, updates, (name, trainers, total) => {
    const cur = globals.get(name)!;
    const d = new Float32Array(cur.length);
    for (const u of trainers) {
      const w = u.weights?.get(name);
      if (!w) throw new Error(`update from ${u.client} lacks tensor "${name}" of its units`);
      const c = u.numExamples / total;
      for (let i = 0; i < d.length; i++) d[i] += c * w[i];
    }
    for (let i = 0; i < d.length; i++) d[i] -= cur[i];
    return d;
  });
}

/**
 * Per-iteration Spry: each client's gradient ĝ = (1/K) Σ_k jvp_k v_k is rebuilt from the seed of
 * its step (the same Philox streams the client drew from: stream = the tensor's index in `specs`),
 * and Δ = −lr · ĝ, example-weighted over the clients that share a unit.
 */
export function aggregateJvp(specs: TensorSpec[], units: Unit[], updates: ClientUpdate[], roundSeed: string, lr: number): Weights {
  const stream = new Map(specs.map((s, i) => [s.name, i]));
  return perTrainedTensor(units, updates, (name, trainers, total) => {
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
    return d;
  });
}
