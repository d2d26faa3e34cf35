import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { philox4x32_10, normals, uniforms, seedKey, Rng } from '../../../src/shared/spry/rng.ts';

const RNG_MODULE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/shared/spry/rng.ts');

const hex = (a: Uint32Array) => Array.from(a, (x) => x.toString(16).padStart(8, '0')).join(' ');
const u32s = (s: string) => s.split(' ').map((w) => parseInt(w, 16));

function moments(x: ArrayLike<number>) {
  const n = x.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += x[i];
  mean /= n;
  let m2 = 0;
  let m3 = 0;
  let m4 = 0;
  for (let i = 0; i < n; i++) {
    const d = x[i] - mean;
    m2 += d * d;
    m3 += d * d * d;
    m4 += d * d * d * d;
  }
  m2 /= n;
  m3 /= n;
  m4 /= n;
  return { mean, variance: m2, skew: m3 / m2 ** 1.5, kurtosis: m4 / (m2 * m2) };
}

function correlation(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const ma = moments(a);
  const mb = moments(b);
  let c = 0;
  for (let i = 0; i < a.length; i++) c += (a[i] - ma.mean) * (b[i] - mb.mean);
  return c / a.length / Math.sqrt(ma.variance * mb.variance);
}

function chiSquare(counts: number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const e = total / counts.length;
  return counts.reduce((s, c) => s + ((c - e) * (c - e)) / e, 0);
}

describe('Philox4x32-10 known-answer vectors (Random123 kat_vectors)', () => {
  const kat: [string, string, string][] = [
    ['00000000 00000000 00000000 00000000', '00000000 00000000', '6627e8d5 e169c58d bc57ac4c 9b00dbd8'],
    ['ffffffff ffffffff ffffffff ffffffff', 'ffffffff ffffffff', '408f276d 41c83b0e a20bc7c6 6d5451fd'],
    ['243f6a88 85a308d3 13198a2e 03707344', 'a4093822 299f31d0', 'd16cfe09 94fdcceb 5001e420 24126ea1'],
  ];
  for (const [ctr, key, out] of kat) {
    it(`ctr ${ctr}, key ${key}`, () => {
      expect(hex(philox4x32_10(u32s(ctr), u32s(key)))).toBe(out);
    });
  }

  it('Rng(seed, stream) emits the blocks at counters (0,0,stream), (1,0,stream), ...', () => {
    const r = new Rng(0);
    const got = new Uint32Array(8).map(() => r.u32());
    expect(hex(got.subarray(0, 4))).toBe(kat[0][2]);
    expect(hex(got.subarray(4))).toBe(hex(philox4x32_10([1, 0, 0, 0], [0, 0])));
    const key = seedKey(2 ** 40 + 3);
    const s = new Rng(2 ** 40 + 3, 2 ** 33 + 7);
    expect(hex(new Uint32Array(4).map(() => s.u32()))).toBe(hex(philox4x32_10([0, 0, 7, 2], key)));
  });
});

describe('normals / uniforms', () => {
  it('derive from the Philox words as specified (values computed independently from the first KAT block)', () => {
    // seed 0, stream 0, block 0 is the all-zero KAT vector; Box–Muller on (w + 0.5) / 2^32, float64 then float32.
    expect(Array.from(normals(0, 0, 4))).toEqual([0.991137683391571, -0.9246625900268555, -0.6176089644432068, -0.48206859827041626]);
    expect(Array.from(uniforms(0, 0, 4))).toEqual([0.39904648065567017, 0.8805201649665833, 0.7357128262519836, 0.6054818034172058]);
    const r = new Rng(12345, 9);
    const words = Array.from({ length: 8 }, () => r.u32());
    expect(Array.from(uniforms(12345, 9, 8))).toEqual(words.map((w) => ((w >>> 9) * 2 + 1) / 2 ** 24));
  });

  it('any slice can be generated on its own (offset)', () => {
    const all = normals('spry', 3, 50);
    expect(normals('spry', 3, 37, 11)).toEqual(all.subarray(11, 48));
    expect(normals('spry', 3, 1, 49)).toEqual(all.subarray(49));
    expect(uniforms(7, 1, 9, 6)).toEqual(uniforms(7, 1, 15).subarray(6));
    expect(normals(1, 2, 0).length).toBe(0);
  });

  it('seeds: integers map one-to-one onto the key, bigints likewise, strings are hashed', () => {
    expect(seedKey(2 ** 32 + 5)).toEqual([5, 1]);
    expect(seedKey(2 ** 53 - 1)).toEqual([0xffffffff, 0x1fffff]);
    expect(seedKey((1n << 63n) + 9n)).toEqual([9, 0x80000000]);
    expect(normals(2 ** 32 + 5, 1, 16)).toEqual(normals((1n << 32n) + 5n, 1, 16));
    expect(seedKey('round-1')).toEqual(seedKey('round-1'));
    expect(seedKey('round-1')).not.toEqual(seedKey('round-2'));
    expect(seedKey('')).toEqual([0x84222325, 0xcbf29ce4]); // FNV-1a offset basis: nothing hashed
    for (const bad of [-1, 1.5, 2 ** 53, NaN]) expect(() => normals(bad, 0, 1)).toThrow('seed must be an integer');
    expect(() => normals(1n << 64n, 0, 1)).toThrow('bigint seed');
    expect(() => normals(1, -1, 1)).toThrow('stream must be an integer');
    expect(() => normals(1, 0, 1.5)).toThrow('count');
  });

  it('different seeds and streams give different, uncorrelated sequences', () => {
    const a = normals(42, 0, 20000);
    const b = normals(42, 1, 20000);
    const c = normals(43, 0, 20000);
    const d = normals('42', 0, 20000);
    for (const other of [b, c, d]) {
      expect(other).not.toEqual(a);
      expect(Math.abs(correlation(a, other))).toBeLessThan(0.04); // 5.6 standard errors
    }
    // neighbours within one sequence (Box–Muller pair partners and block neighbours) are uncorrelated too
    const even = a.filter((_, i) => i % 2 === 0);
    const odd = a.filter((_, i) => i % 2 === 1);
    expect(Math.abs(correlation(even, odd))).toBeLessThan(0.06);
  });

  it('normals: mean 0, variance 1, skew 0, kurtosis 3, 5% beyond ±1.96 (1e5 samples)', () => {
    const z = normals(2024, 5, 100_000);
    const m = moments(z);
    expect(Math.abs(m.mean)).toBeLessThan(0.015); // SE 0.0032
    expect(Math.abs(m.variance - 1)).toBeLessThan(0.025); // SE 0.0045
    expect(Math.abs(m.skew)).toBeLessThan(0.05); // SE 0.0077
    expect(Math.abs(m.kurtosis - 3)).toBeLessThan(0.1); // SE 0.015
    const tail = z.filter((x) => Math.abs(x) > 1.959964).length / z.length;
    expect(Math.abs(tail - 0.05)).toBeLessThan(0.005); // SE 0.0007
    expect(z.every(Number.isFinite)).toBe(true);
  });

  it('uniforms: strictly inside (0, 1), mean 1/2, variance 1/12, flat histogram', () => {
    const u = uniforms('u', 0, 100_000);
    expect(Math.min(...u)).toBeGreaterThan(0);
    expect(Math.max(...u)).toBeLessThan(1);
    const m = moments(u);
    expect(Math.abs(m.mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(m.variance - 1 / 12)).toBeLessThan(0.002);
    const counts = new Array(20).fill(0);
    for (const x of u) counts[Math.floor(x * 20)]++;
    expect(chiSquare(counts)).toBeLessThan(50); // 19 dof: p < 1e-4
  });

  it('two separate processes produce byte-identical normals', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rng-'));
    const script = path.join(dir, 'gen.ts');
    writeFileSync(
      script,
      `import { normals } from ${JSON.stringify(pathToFileURL(RNG_MODULE).href)};\n` +
        `const [seed, stream, n, offset] = process.argv.slice(2);\n` +
        `const z: Float32Array = normals(/^\\d+$/.test(seed) ? Number(seed) : seed, Number(stream), Number(n), Number(offset));\n` +
        `process.stdout.write(Buffer.from(z.buffer).toString('base64'));\n`,
    );
    const run = (...args: string[]) => {
      const res = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
      expect(res.stderr).toBe('');
      expect(res.status).toBe(0);
      return res.stdout;
    };
    for (const args of [
      ['1234567', '3', '5000', '0'],
      ['round-17/peer-b', String(2 ** 40), '777', '12345'],
      [String(2 ** 53 - 1), '0', '64', String(2 ** 45)],
    ]) {
      const first = run(...args);
      const second = run(...args);
      expect(first.length).toBeGreaterThan(0);
      expect(second).toBe(first);
      // ...and identical to this process
      const seed = /^\d+$/.test(args[0]) ? Number(args[0]) : args[0];
      const here = normals(seed, Number(args[1]), Number(args[2]), Number(args[3]));
      expect(first).toBe(Buffer.from(here.buffer).toString('base64'));
    }
    expect(run('1', '0', '8', '0')).not.toBe(run('2', '0', '8', '0'));
  });
});

describe('Rng (sequential)', () => {
  it('is deterministic per (seed, stream)', () => {
    const draw = (seed: number | string, stream = 0) => {
      const r = new Rng(seed, stream);
      return [r.uniform(), r.normal(), r.int(1000), r.gamma(0.7), ...r.dirichlet([1, 2])];
    };
    expect(draw('x')).toEqual(draw('x'));
    expect(draw('x')).not.toEqual(draw('y'));
    expect(draw(5, 0)).not.toEqual(draw(5, 1));
  });

  it('uniform in [0, 1) with mean 1/2; normal with mean 0, variance 1', () => {
    const r = new Rng(99);
    const u = Array.from({ length: 50_000 }, () => r.uniform());
    expect(u.every((x) => x >= 0 && x < 1)).toBe(true);
    expect(Math.abs(moments(u).mean - 0.5)).toBeLessThan(0.007);
    const z = Array.from({ length: 50_000 }, () => r.normal());
    const m = moments(z);
    expect(Math.abs(m.mean)).toBeLessThan(0.02);
    expect(Math.abs(m.variance - 1)).toBeLessThan(0.035);
  });

  it('int(n) covers [0, n) evenly, also for n beyond 2^32', () => {
    const r = new Rng(1);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) counts[r.int(10)]++;
    expect(chiSquare(counts)).toBeLessThan(40); // 9 dof: p < 1e-5
    expect(new Set(Array.from({ length: 200 }, () => r.int(3))).size).toBe(3);
    const big = 3 * 2 ** 40;
    const draws = Array.from({ length: 20_000 }, () => r.int(big));
    expect(draws.every((x) => Number.isInteger(x) && x >= 0 && x < big)).toBe(true);
    expect(Math.abs(moments(draws).mean / big - 0.5)).toBeLessThan(0.015);
    expect(r.int(1)).toBe(0);
    for (const bad of [0, -3, 2.5, 2 ** 53]) expect(() => r.int(bad)).toThrow('int(n)');
  });

  it('int(n) is a fixed function of the u32 stream (so data splits reproduce exactly on every peer)', () => {
    const r = new Rng('split', 2);
    const words = new Rng('split', 2);
    const n = 1e15 + 7; // big enough that rejection happens now and then
    const limit = 2 ** 53 - (2 ** 53 % n);
    let rejected = 0;
    for (let i = 0; i < 2000; i++) {
      let x: number;
      for (;;) {
        x = (words.u32() >>> 5) * 2 ** 26 + (words.u32() >>> 6);
        if (x < limit) break;
        rejected++;
      }
      expect(r.int(n)).toBe(x % n);
    }
    expect(rejected).toBeGreaterThan(0);
  });

  it('shuffle gives a permutation, each of the 6 orders of 3 items equally often', () => {
    const r = new Rng(7);
    const xs = Array.from({ length: 100 }, (_, i) => i);
    const shuffled = r.shuffle([...xs]);
    expect(shuffled).not.toEqual(xs);
    expect([...shuffled].sort((a, b) => a - b)).toEqual(xs);
    const counts = new Map<string, number>();
    for (let i = 0; i < 60_000; i++) {
      const k = r.shuffle(['a', 'b', 'c']).join('');
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    expect(counts.size).toBe(6);
    expect(chiSquare([...counts.values()])).toBeLessThan(30); // 5 dof: p < 1e-5
  });

  it('gamma(alpha) has mean alpha and variance alpha (Marsaglia–Tsang, and the alpha < 1 boost)', () => {
    const r = new Rng('gamma');
    const n = 20_000;
    for (const alpha of [0.1, 0.5, 1, 3.5, 40]) {
      const g = Array.from({ length: n }, () => r.gamma(alpha));
      expect(g.every((x) => x >= 0 && Number.isFinite(x))).toBe(true);
      const m = moments(g);
      expect(Math.abs(m.mean - alpha)).toBeLessThan(6 * Math.sqrt(alpha / n));
      expect(Math.abs(m.variance - alpha)).toBeLessThan(6 * Math.sqrt((2 * alpha * alpha + 6 * alpha) / n));
    }
    for (const bad of [0, -1, NaN, Infinity]) expect(() => r.gamma(bad)).toThrow('alpha > 0');
  });

  it('dirichlet: weights sum to 1 with means alpha_i / sum(alpha), even for tiny concentrations', () => {
    const r = new Rng(3);
    const alpha = [0.5, 1, 2, 4.5];
    const sums = [0, 0, 0, 0];
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const w = r.dirichlet(alpha);
      expect(Math.abs(w.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
      w.forEach((x, j) => (sums[j] += x));
    }
    sums.forEach((s, j) => expect(Math.abs(s / n - alpha[j] / 8)).toBeLessThan(0.01));

    // alpha = 0.001: every gamma draw underflows to 0 in linear space; log space still works.
    const tiny = r.dirichlet(new Array(10).fill(0.001));
    expect(tiny.every((x) => Number.isFinite(x) && x >= 0)).toBe(true);
    expect(Math.abs(tiny.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
    expect(Math.max(...tiny)).toBeGreaterThan(0.5); // mass concentrates on few entries
    expect(() => r.dirichlet([])).toThrow('at least one');
  });
});
