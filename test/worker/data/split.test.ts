import { describe, it, expect } from 'vitest';
import { loadBuiltinTask } from '../../../src/worker/data/builtin.ts';
import type { Dataset } from '../../../src/worker/data/examples.ts';
import { dirichletSplit, domainSplit, type ClientData } from '../../../src/worker/data/split.ts';

const sentiment = loadBuiltinTask('sentiment');
const genre = loadBuiltinTask('brown-genre');

const all = (c: ClientData) => [...c.train, ...c.test];
/** Mean over clients of the largest label fraction: 1/L when uniform, 1 when every client has one label. */
const meanMaxFraction = (clients: ClientData[]): number =>
  clients.reduce((a, c) => a + Math.max(...c.labelCounts) / all(c).length, 0) / clients.length;

describe('dirichletSplit', () => {
  it('alpha = 0.1 is far more skewed than alpha = 100 (15 genres, 10 clients)', () => {
    const skewed = dirichletSplit(genre, { clients: 10, alpha: 0.1, seed: 1, perClient: 1000 });
    const even = dirichletSplit(genre, { clients: 10, alpha: 100, seed: 1, perClient: 1000 });
    const s = meanMaxFraction(skewed);
    const e = meanMaxFraction(even);
    expect(s).toBeGreaterThan(0.45);
    expect(s).toBeGreaterThan(4 * e);
    expect(e).toBeLessThan(0.15);
    // alpha = 0.1: most clients hold only a few genres in any number (>= 5 % of their examples)
    const major = (c: ClientData) => c.labelCounts.filter((n) => n >= 0.05 * all(c).length).length;
    expect(skewed.reduce((a, c) => a + major(c), 0) / 10).toBeLessThan(4);
    expect(even.every((c) => c.labelCounts.every((n) => n > 0))).toBe(true);
  });

  it('also skewed on two labels (sentiment, alpha 0.1 vs 100)', () => {
    const s = meanMaxFraction(dirichletSplit(sentiment, { clients: 10, alpha: 0.1, seed: 3 }));
    const e = meanMaxFraction(dirichletSplit(sentiment, { clients: 10, alpha: 100, seed: 3 }));
    expect(s).toBeGreaterThan(0.8);
    expect(e).toBeLessThan(0.65);
  });

  it('equal counts, no example twice, 80/20 train/test, labelCounts right, ids', () => {
    for (const alpha of [0.1, 1, 100]) {
      const clients = dirichletSplit(sentiment, { clients: 7, alpha, seed: 42 });
      expect(clients.map((c) => c.id)).toEqual(['client-0', 'client-1', 'client-2', 'client-3', 'client-4', 'client-5', 'client-6']);
      const per = Math.floor(3000 / 7); // 428
      const seen = new Set<object>();
      const pool = new Set<object>(sentiment.examples);
      for (const c of clients) {
        expect(all(c)).toHaveLength(per);
        expect(c.train).toHaveLength(Math.round(per * 0.8)); // 342
        expect(c.test).toHaveLength(per - Math.round(per * 0.8)); // 86
        for (const ex of all(c)) {
          expect(seen.has(ex)).toBe(false);
          seen.add(ex);
          expect(pool.has(ex)).toBe(true);
        }
        const counts = [0, 0];
        for (const ex of all(c)) counts[ex.label]++;
        expect(c.labelCounts).toEqual(counts);
      }
      expect(seen.size).toBe(7 * per);
    }
  });

  it('a label running out is renormalised away: alpha 0.01 with the whole pool still fills every client', () => {
    const clients = dirichletSplit(sentiment, { clients: 3, alpha: 0.01, seed: 9 });
    expect(clients.map((c) => all(c).length)).toEqual([1000, 1000, 1000]);
    const total = clients.reduce((a, c) => [a[0] + c.labelCounts[0], a[1] + c.labelCounts[1]], [0, 0]);
    expect(total).toEqual([1500, 1500]);
  });

  it('same seed, same split; different seed, different split', () => {
    const ids = (cs: ClientData[]) => cs.map((c) => [c.train.map((e) => sentiment.examples.indexOf(e)), c.test.map((e) => sentiment.examples.indexOf(e))]);
    const a = ids(dirichletSplit(sentiment, { clients: 5, alpha: 1, seed: 7 }));
    const b = ids(dirichletSplit(sentiment, { clients: 5, alpha: 1, seed: 7 }));
    const c = ids(dirichletSplit(sentiment, { clients: 5, alpha: 1, seed: 8 }));
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
    expect(ids(dirichletSplit(sentiment, { clients: 5, alpha: 1, seed: 'run-a' }))).toEqual(ids(dirichletSplit(sentiment, { clients: 5, alpha: 1, seed: 'run-a' })));
  });

  it('trainFraction and perClient options; LM data splits uniformly', () => {
    const cs = dirichletSplit(sentiment, { clients: 4, alpha: 1, seed: 1, trainFraction: 0.5, perClient: 100 });
    expect(cs.map((c) => [c.train.length, c.test.length])).toEqual([[50, 50], [50, 50], [50, 50], [50, 50]]);
    const lm: Dataset = { name: 'lm', labels: [], examples: Array.from({ length: 50 }, (_, i) => ({ text: `t${i}`, label: -1 })) };
    const lmClients = dirichletSplit(lm, { clients: 3, alpha: 0.1, seed: 1 });
    expect(lmClients.map((c) => all(c).length)).toEqual([16, 16, 16]);
    expect(lmClients[0].labelCounts).toEqual([]);
  });

  it('rejects impossible requests with clear errors', () => {
    expect(() => dirichletSplit(sentiment, { clients: 0, alpha: 1, seed: 1 })).toThrow(/clients must be a positive integer/);
    expect(() => dirichletSplit(sentiment, { clients: 2, alpha: 0, seed: 1 })).toThrow(/alpha must be a positive number/);
    expect(() => dirichletSplit(sentiment, { clients: 2, alpha: 1, seed: 1, perClient: 2000 })).toThrow(/2 clients x 2000 examples = 4000 > the 3000 examples/);
    expect(() => dirichletSplit(sentiment, { clients: 5000, alpha: 1, seed: 1 })).toThrow(/perClient must be a positive integer, got 0/);
    expect(() => dirichletSplit(sentiment, { clients: 2, alpha: 1, seed: 1, trainFraction: 1.5 })).toThrow(/trainFraction/);
  });
});

describe('domainSplit', () => {
  it('sentiment: 3 clients, one domain each, 1000 examples, 800/200', () => {
    const clients = domainSplit(sentiment, { seed: 1 });
    expect(clients.map((c) => c.domain)).toEqual(['imdb', 'yelp', 'amazon']);
    expect(clients.map((c) => c.id)).toEqual(['client-0', 'client-1', 'client-2']);
    const domainOf = new Map(sentiment.examples.map((e, i) => [e, sentiment.domains![i]]));
    for (const c of clients) {
      expect(c.train).toHaveLength(800);
      expect(c.test).toHaveLength(200);
      expect(c.labelCounts).toEqual([500, 500]);
      expect(new Set(all(c).map((e) => domainOf.get(e)))).toEqual(new Set([c.domain]));
    }
    const again = domainSplit(sentiment, { seed: 1 });
    expect(again.map((c) => c.test)).toEqual(clients.map((c) => c.test));
    const other = domainSplit(sentiment, { seed: 2 });
    expect(other[0].test).not.toEqual(clients[0].test);
  });

  it('needs domains', () => {
    expect(() => domainSplit({ name: 'x', labels: ['a', 'b'], examples: [{ text: 'a', label: 0 }] }, { seed: 1 })).toThrow(/"x" has no domains/);
  });
});
