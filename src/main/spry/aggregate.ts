// Spry step 5a, "Aggregate": for every unit, the example-weighted mean over the clients that trained
// it; a unit trained by nobody keeps its value. In the per-iteration mode clients upload K jvp scalars
// instead of weights and the aggregator regenerates their perturbations from the seed.
import { combineDirections, directions } from '../../shared/spry/directions.ts';
import { stepSeed } from '../../shared/spry/seeds.ts';
import type { TensorSpec, Unit, Weights } from '../../shared/units.ts';
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
 * its step by the rule the client drew with (src/shared/spry/directions.ts; `specs` is the model's
 * trainable list), and Δ = −lr · ĝ, example-weighted over the clients that share a unit.
 */
export function aggregateJvp(specs: TensorSpec[], units: Unit[], updates: ClientUpdate[], roundSeed: string, lr: number): Weights {
  return perTrainedTensor(units, updates, (name, trainers, total) => {
    let d: Float32Array | undefined;
    for (const u of trainers) {
      const jvp = u.jvp;
      if (!jvp || jvp.length === 0) throw new Error(`update from ${u.client} carries no jvp scalars`);
      const g = combineDirections(jvp, directions(stepSeed(roundSeed, u.client, 0), specs, name, jvp.length));
      d ??= new Float32Array(g.length);
      const c = (-lr * u.numExamples) / total;
      for (let i = 0; i < g.length; i++) d[i] += c * g[i];
    }
    return d!;
  });
}
