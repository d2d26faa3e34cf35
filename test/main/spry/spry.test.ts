import { describe, expect, it } from 'vitest';
import { assignUnits } from '../../../src/main/spry/assignment.ts';
import { aggregateWeights } from '../../../src/main/spry/aggregate.ts';
import { emptyServerState, serverStep } from '../../../src/main/spry/server_optimizer.ts';
import { Strategy } from '../../../src/main/spry/strategy.ts';
import { HyperParams, METHODS } from '../../../src/shared/methods.ts';
import type { Unit, Weights } from '../../../src/shared/units.ts';

const units = (n: number): Unit[] => Array.from({ length: n }, (_, i) => ({ name: `u${i}`, tensors: [`u${i}.a`, `u${i}.b`] }));
const clients = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`);
const f32 = (...v: number[]) => new Float32Array(v);

describe('assignment', () => {
  it('M ≤ U: unit i goes to client i mod M, strided over depth, every unit covered once', () => {
    const a = assignUnits(units(7), clients(3), true);
    expect(a.get('c0')).toEqual(['u0', 'u3', 'u6']);
    expect(a.get('c1')).toEqual(['u1', 'u4']);
    expect(a.get('c2')).toEqual(['u2', 'u5']);
  });

  it('M > U: client j gets unit j mod U, every unit gets ⌊M/U⌋ or ⌈M/U⌉ clients', () => {
    const a = assignUnits(units(3), clients(8), true);
    const count = new Map<string, number>();
    for (const us of a.values()) {
      expect(us.length).toBe(1);
      count.set(us[0], (count.get(us[0]) ?? 0) + 1);
    }
    expect([...count.values()].sort()).toEqual([2, 3, 3]);
  });

  it('covers every unit every round, for any M and U', () => {
    for (let u = 1; u <= 9; u++)
      for (let m = 1; m <= 12; m++) {
        const covered = new Set([...assignUnits(units(u), clients(m), true).values()].flat());
        expect(covered.size).toBe(u);
      }
  });

  it('without the split, every client gets every unit', () => {
    const a = assignUnits(units(4), clients(2), false);
    expect(a.get('c1')).toEqual(['u0', 'u1', 'u2', 'u3']);
  });
});

describe('aggregation', () => {
  const globals: Weights = new Map([['u0.a', f32(1, 1)], ['u0.b', f32(0)], ['u1.a', f32(5, 5)], ['u1.b', f32(2)]]);
  const us = units(2);

  it('is the example-weighted mean per unit over the clients that trained it (hand-computed)', () => {
    const delta = aggregateWeights(globals, us, [
      { client: 'c0', units: ['u0'], numExamples: 30, loss: 0, weights: new Map([['u0.a', f32(2, 4)], ['u0.b', f32(1)]]) },
      { client: 'c1', units: ['u0'], numExamples: 10, loss: 0, weights: new Map([['u0.a', f32(6, 0)], ['u0.b', f32(5)]]) },
    ]);
    // mean u0.a = (30·[2,4] + 10·[6,0]) / 40 = [3, 3]; Δ = [2, 2]. u0.b: (30 + 50)/40 = 2; Δ = 2
    expect(Array.from(delta.get('u0.a')!)).toEqual([2, 2]);
    expect(Array.from(delta.get('u0.b')!)).toEqual([2]);
    // u1 was trained by nobody: no Δ, so it keeps its value
    expect(delta.has('u1.a')).toBe(false);
    const next = serverStep({ name: 'fedavg', lr: 1, beta1: 0, beta2: 0, tau: 0 }, emptyServerState(), globals, delta);
    expect(Array.from(next.get('u0.a')!)).toEqual([3, 3]);
    expect(next.get('u1.a')).toBe(globals.get('u1.a'));
  });

  it('FedYogi follows the paper (m, v from 0, no bias correction), by hand', () => {
    const st = emptyServerState();
    const cfg = { name: 'fedyogi' as const, lr: 1e-2, beta1: 0.9, beta2: 0.99, tau: 1e-3 };
    const w = new Map([['x', f32(1)]]);
    const w1 = serverStep(cfg, st, w, new Map([['x', f32(0.5)]]));
    // m = 0.05; v = 0 − 0.01·0.25·sign(0 − 0.25) = 0.0025; w = 1 + 0.01·0.05/(0.05 + 0.001)
    expect(w1.get('x')![0]).toBeCloseTo(1 + (0.01 * 0.05) / (0.05 + 0.001), 6);
    const w2 = serverStep(cfg, st, w1, new Map([['x', f32(-0.2)]]));
    const m = 0.9 * 0.05 + 0.1 * -0.2;
    const v = 0.0025 - 0.01 * 0.04 * Math.sign(0.0025 - 0.04);
    expect(w2.get('x')![0]).toBeCloseTo(w1.get('x')![0] + (0.01 * m) / (Math.sqrt(v) + 0.001), 6);
  });
});

describe('strategy', () => {
  const specsOf = (us: Unit[]) => us.flatMap((u) => u.tensors.map((name) => ({ name, shape: [1] })));

  for (const [u, m] of [[5, 5], [7, 3], [3, 8]] as const) {
    it(`over the rounds every client trains every unit, and no unit stays with one client (U = ${u}, M = ${m})`, () => {
      const us = units(u);
      const s = new Strategy(METHODS.spry, HyperParams.parse({}), specsOf(us), us, 'federation-seed');
      const trained = new Map<string, Set<string>>(); // client -> units
      const holders = new Map<string, Set<string>>(); // unit -> clients
      for (let round = 1; round <= 40; round++) {
        const plan = s.configure(round, clients(m));
        expect(new Set([...plan.assignment.values()].flat()).size).toBe(u); // every unit covered each round
        for (const [c, names] of plan.assignment)
          for (const n of names) {
            trained.set(c, (trained.get(c) ?? new Set()).add(n));
            holders.set(n, (holders.get(n) ?? new Set()).add(c));
          }
      }
      for (const c of clients(m)) expect(trained.get(c)!.size).toBe(u);
      for (const n of us.map((x) => x.name)) expect(holders.get(n)!.size).toBeGreaterThan(1);
    });
  }

  it('every peer derives the same assignment, whatever order it lists the clients in', () => {
    const us = units(5);
    const s = new Strategy(METHODS.spry, HyperParams.parse({}), specsOf(us), us, 7);
    const a = s.configure(3, ['c0', 'c1', 'c2', 'c3', 'c4']).assignment;
    const b = s.configure(3, ['c3', 'c1', 'c4', 'c0', 'c2']).assignment;
    for (const c of a.keys()) expect(b.get(c)).toEqual(a.get(c));
    // and the round seed, not the list, decides it: another round gives another order
    const rounds = Array.from({ length: 6 }, (_, r) => JSON.stringify([...s.configure(r, clients(5)).assignment].sort()));
    expect(new Set(rounds).size).toBeGreaterThan(1);
  });

  it('rejects an update whose units differ from the assignment', () => {
    const s = new Strategy(METHODS.spry, HyperParams.parse({}), [{ name: 'u0.a', shape: [1] }, { name: 'u0.b', shape: [1] }, { name: 'u1.a', shape: [1] }, { name: 'u1.b', shape: [1] }], units(2), 1);
    const plan = s.configure(0, ['c0', 'c1']);
    const globals: Weights = new Map([['u0.a', f32(0)], ['u0.b', f32(0)], ['u1.a', f32(0)], ['u1.b', f32(0)]]);
    expect(() => s.aggregate(plan, globals, [{ client: 'c0', units: ['u1'], numExamples: 1, loss: 0, weights: new Map([['u1.a', f32(1)], ['u1.b', f32(1)]]) }])).toThrow(/assignment/);
  });
});
