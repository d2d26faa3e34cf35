// The simulation engine end to end: a worker pool of real compute workers, a real (small) pretrained
// model, real data. Small configurations that finish in seconds.
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { defaultPerRound, simulate } from '../../src/main/simulate.ts';
import { HyperParams, METHOD_NAMES } from '../../src/shared/methods.ts';
import { FIXTURES, HAS_FIXTURES } from '../fixtures.ts';

const MODEL = join(FIXTURES, 'stories260K', 'hf');

function options(method: string, extra: Partial<HyperParams> = {}, rounds = 1) {
  return {
    method,
    model: { model: MODEL, lora: {}, backend: 'wasm' as const, maxLength: 24, initSeed: 0 },
    data: { source: 'sentiment', split: { kind: 'dirichlet' as const, clients: 3, alpha: 1 }, seed: 1, trainFraction: 0.8, limit: 20 },
    perRound: 2,
    rounds,
    seed: 3,
    hp: HyperParams.parse({ maxLocalSteps: 2, batchSize: 4, maxLength: 24, ...extra }),
    workers: 1,
  };
}

describe('clients per round', () => {
  it('defaults to two clients per unit, at most every client', () => {
    expect(defaultPerRound(100, 5)).toBe(10);
    expect(defaultPerRound(10, 5)).toBe(10);
    expect(defaultPerRound(3, 5)).toBe(3);
  });
});

describe.skipIf(!HAS_FIXTURES)('simulate', () => {
  it('runs every method for a round, with finite metrics and the upload each method implies', async () => {
    const modelBytes = statSync(join(MODEL, 'model.safetensors')).size;
    for (const method of METHOD_NAMES) {
      const res = await simulate(options(method));
      const m = res.rounds[0];
      expect(m.clients).toHaveLength(2);
      expect(Number.isFinite(m.trainLoss) && Number.isFinite(m.testLoss)).toBe(true);
      expect(m.accuracy).toBeGreaterThanOrEqual(0);
      // every test example is predicted as exactly one class
      expect(m.predicted).toHaveLength(res.init.labels.length);
      expect(m.predicted!.reduce((a, b) => a + b, 0)).toBe(res.init.clients.reduce((s, c) => s + c.test, 0));
      const adapter = [...res.final.values()].reduce((s, a) => s + a.byteLength, 0);
      expect(m.bytesDown).toBe(2 * adapter);
      // split methods upload about half the adapter per client (2 clients), the others all of it
      if (method === 'spry' || method === 'fedavgsplit') expect(m.bytesUp).toBeLessThan(1.2 * adapter);
      else expect(m.bytesUp).toBe(2 * adapter);
      // the simulator's process memory: it holds at least the model, and its peak is never below the present
      expect(m.rss).toBeGreaterThan(modelBytes);
      expect(m.peakRss).toBeGreaterThanOrEqual(m.rss);
    }
  }, 240_000);

  it('per-iteration Spry uploads K scalars per client', async () => {
    const res = await simulate(options('spry', { spryMode: 'iteration', k: 3 }));
    expect(res.rounds[0].bytesUp).toBe(2 * 3 * 4);
  });

  it('same seed, same numbers, bit for bit', async () => {
    const a = await simulate(options('spry'));
    const b = await simulate(options('spry'));
    expect(a.rounds[0].trainLoss).toBe(b.rounds[0].trainLoss);
    for (const [name, w] of a.final) expect(Buffer.from(b.final.get(name)!.buffer).equals(Buffer.from(w.buffer))).toBe(true);
  });

  it('learns: the test loss falls over rounds (FedAvg and Spry)', async () => {
    for (const method of ['fedavg', 'spry']) {
      const res = await simulate(options(method, { lr: 3e-3, maxLocalSteps: 4, k: 8, server: 'fedavg' }, 4));
      expect(res.rounds.at(-1)!.testLoss).toBeLessThan(res.initial.testLoss);
    }
  }, 120_000);

  it('personalised accuracy: each client finetunes the final adapter on its own data before its test split', async () => {
    const res = await simulate({ ...options('fedavg', { lr: 3e-3, maxLocalSteps: 4 }), personalized: true });
    const global = res.rounds.at(-1)!;
    expect(res.personalized).toBeDefined();
    // local finetuning fits each client's own data: its test loss moves from the global adapter's
    expect(res.personalized!.testLoss).not.toBe(global.testLoss);
    expect(res.personalized!.accuracy).toBeGreaterThanOrEqual(0);
    // without the option, nothing extra is computed
    expect((await simulate(options('fedavg'))).personalized).toBeUndefined();
  }, 120_000);

  it('a bad task gets a clear one-line error', async () => {
    await expect(simulate({ ...options('spry'), data: { ...options('spry').data, source: 'nope' } })).rejects.toThrow(/neither a built-in task/);
  });
});
