// Per-iteration Spry end to end: clients in another process upload only K jvp scalars; the aggregator
// here rebuilds each client's step from the round seed. The oracle is the forward gradient each client
// computed itself: Δ must equal −lr · (example-weighted mean of the clients' own gradients) per unit.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { Strategy } from '../../../src/main/spry/strategy.ts';
import { aggregateJvp } from '../../../src/main/spry/aggregate.ts';
import { HyperParams, METHODS } from '../../../src/shared/methods.ts';
import { SHAPE, TARGETS } from './per_iteration_setup.ts';

const CLIENT = fileURLToPath(new URL('./client_process.ts', import.meta.url));

interface ClientOut { client: string; units: string[]; numExamples: number; jvp: number[]; ownJvp: number[]; grads: Record<string, number[]> }

function runClients(roundSeed: string, assignment: Map<string, string[]>, k: number): ClientOut[] {
  const r = spawnSync(process.execPath, [CLIENT, JSON.stringify({ roundSeed, assignment: [...assignment], k })], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`client process failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const norm = (a: ArrayLike<number>) => Math.sqrt(Array.from(a).reduce((s, x) => s + x * x, 0));

describe('per-iteration Spry, client and aggregator in two processes', () => {
  let model: ReturnType<typeof createModel>;
  beforeAll(async () => {
    await initBackend('wasm');
    const { config, tensors } = randomCheckpoint(SHAPE, 5);
    model = createModel(config, tensors, { kind: 'classification', numLabels: 2 }, { r: 1, alpha: 1, dropout: 0, targetModules: TARGETS });
  });

  for (const m of [3, 8]) {
    it(`the rebuilt step is −lr · the clients' own forward gradient (U = 5 units, M = ${m}, K = 3, LoRA and head)`, () => {
      const lr = 0.5;
      const k = 3;
      const hp = HyperParams.parse({ spryMode: 'iteration', k, lr });
      const specs = model.trainable.map((s) => ({ name: s.name, shape: s.shape }));
      const strategy = new Strategy(METHODS.spry, hp, specs, model.units, 'e2e');
      const plan = strategy.configure(4, Array.from({ length: m }, (_, i) => `org-${i}`));
      const clients = runClients(plan.seed, plan.assignment, k);

      for (const c of clients) {
        expect(c.jvp).toHaveLength(k);
        // the uploaded scalars are the ones of the client's own step
        c.jvp.forEach((x, j) => expect(Math.abs(x - c.ownJvp[j])).toBeLessThan(1e-5 * norm(c.ownJvp)));
      }
      const delta = aggregateJvp(specs, model.units, clients.map((c) => ({ client: c.client, units: c.units, numExamples: c.numExamples, loss: 0, jvp: c.jvp })), plan.seed, lr);
      expect(new Set(delta.keys())).toEqual(new Set(specs.map((s) => s.name)));
      for (const unit of model.units) {
        const trainers = clients.filter((c) => c.units.includes(unit.name));
        expect(trainers.length).toBeGreaterThanOrEqual(1);
        const total = trainers.reduce((s, c) => s + c.numExamples, 0);
        for (const name of unit.tensors) {
          const want = new Float64Array(delta.get(name)!.length);
          for (const c of trainers) c.grads[name].forEach((g, i) => (want[i] += (-lr * c.numExamples * g) / total));
          const got = delta.get(name)!;
          const err = norm(Array.from(got, (x, i) => x - want[i]));
          expect(norm(want)).toBeGreaterThan(0);
          expect(err).toBeLessThan(2e-5 * norm(want));
        }
      }
    });
  }
});
