// Counter-based random numbers that are bit-identical on every machine, OS and tensor backend.
// Spry perturbations are never sent over the wire: an aggregator regenerates them from
// (seed, stream), so a peer and the aggregator must compute exactly the same floats.
//
// Generator: Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11),
// keyed by the seed (two u32 words). The 128-bit counter is (block index: words 0-1, stream id:
// words 2-3), so any element can be computed without generating the ones before it.
// Only exact integer arithmetic is used for the bits; floats are derived with IEEE float64
// operations and V8's Math.log/sin/cos, which are software (fdlibm) implementations and so give
// the same result on every CPU; the final Math.fround is a correctly rounded conversion.

export type Seed = number | bigint | string;

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9; // Weyl key increments (golden ratio, sqrt(3) - 1)
const W1 = 0xbb67ae85;
const TWO_32 = 4294967296;

/** High 32 bits of the 64-bit product of two u32s. Every partial product of 16-bit halves is
 *  below 2^32 and every sum below 2^53, so float64 arithmetic here is exact. */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const mid = ah * bl + al * bh + ((al * bl) >>> 16);
  return (ah * bh + Math.floor(mid / 65536)) >>> 0;
}

/** One Philox4x32-10 block: writes 4 u32 words for counter (c0..c3) and key (k0, k1) into out. */
function block(c0: number, c1: number, c2: number, c3: number, k0: number, k1: number, out: Uint32Array): void {
  for (let r = 0; r < 10; r++) {
    const lo0 = Math.imul(M0, c0) >>> 0;
    const hi0 = mulhi(M0, c0);
    const lo1 = Math.imul(M1, c2) >>> 0;
    const hi1 = mulhi(M1, c2);
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

/** The raw Philox4x32-10 bijection (exposed for known-answer tests). */
export function philox4x32_10(counter: ArrayLike<number>, key: ArrayLike<number>): Uint32Array {
  const out = new Uint32Array(4);
  block(counter[0] >>> 0, counter[1] >>> 0, counter[2] >>> 0, counter[3] >>> 0, key[0] >>> 0, key[1] >>> 0, out);
  return out;
}

function splitU53(v: number, what: string): [number, number] {
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`${what} must be an integer in [0, 2^53), got ${v}`);
  return [v >>> 0, Math.floor(v / TWO_32)];
}

/** Seed -> Philox key. Integers map one-to-one; strings are hashed (FNV-1a, 64-bit, over UTF-8). */
export function seedKey(seed: Seed): [number, number] {
  if (typeof seed === 'number') return splitU53(seed, 'seed');
  let v: bigint;
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed >= 1n << 64n) throw new Error(`bigint seed must be in [0, 2^64), got ${seed}`);
    v = seed;
  } else {
    v = 0xcbf29ce484222325n;
    for (const byte of new TextEncoder().encode(seed)) v = BigInt.asUintN(64, (v ^ BigInt(byte)) * 0x100000001b3n);
  }
  return [Number(v & 0xffffffffn), Number(v >> 32n)];
}

/** Calls fill(words, j) for j = offset .. offset+n-1, with `words` the Philox block holding element j. */
function forEachElement(seed: Seed, stream: number, n: number, offset: number, fill: (words: Uint32Array, j: number) => void): void {
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`count must be a non-negative integer, got ${n}`);
  splitU53(offset + n, 'offset + count');
  const [k0, k1] = seedKey(seed);
  const [s0, s1] = splitU53(stream, 'stream');
  const words = new Uint32Array(4);
  let loaded = -1;
  for (let j = offset; j < offset + n; j++) {
    const b = Math.floor(j / 4);
    if (b !== loaded) {
      block(b >>> 0, Math.floor(b / TWO_32), s0, s1, k0, k1, words);
      loaded = b;
    }
    fill(words, j);
  }
}

/**
 * Standard normals for elements offset .. offset+n-1 of stream `stream` under `seed`.
 * Block b yields elements 4b..4b+3 by Box–Muller on word pairs (0,1) and (2,3), each word mapped
 * to the exact float64 (w + 0.5) / 2^32 in (0, 1), so log() never sees 0.
 */
export function normals(seed: Seed, stream: number, n: number, offset = 0): Float32Array {
  const out = new Float32Array(n);
  forEachElement(seed, stream, n, offset, (w, j) => {
    const p = j & 2; // first word of this element's pair
    const r = Math.sqrt(-2 * Math.log((w[p] + 0.5) / TWO_32));
    const theta = 2 * Math.PI * ((w[p + 1] + 0.5) / TWO_32);
    out[j - offset] = Math.fround(j & 1 ? r * Math.sin(theta) : r * Math.cos(theta));
  });
  return out;
}

/**
 * Uniforms in (0, 1) for elements offset .. offset+n-1: element 4b+i is word i of block b, mapped
 * to (2k + 1) / 2^24 with k its top 23 bits; exact in float32, never 0 or 1, symmetric about 1/2.
 */
export function uniforms(seed: Seed, stream: number, n: number, offset = 0): Float32Array {
  const out = new Float32Array(n);
  forEachElement(seed, stream, n, offset, (w, j) => {
    out[j - offset] = ((w[j & 3] >>> 9) * 2 + 1) / 16777216;
  });
  return out;
}

/** Sequential generator (data shuffling, splits). Its u32 sequence is Philox blocks 0, 1, 2, ... of (seed, stream). */
export class Rng {
  #k0: number;
  #k1: number;
  #s0: number;
  #s1: number;
  #block = 0;
  #words = new Uint32Array(4);
  #used = 4;

  constructor(seed: Seed, stream = 0) {
    [this.#k0, this.#k1] = seedKey(seed);
    [this.#s0, this.#s1] = splitU53(stream, 'stream');
  }

  u32(): number {
    if (this.#used === 4) {
      block(this.#block >>> 0, Math.floor(this.#block / TWO_32), this.#s0, this.#s1, this.#k0, this.#k1, this.#words);
      this.#block++;
      this.#used = 0;
    }
    return this.#words[this.#used++];
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    return this.#u53() / 2 ** 53;
  }

  #u53(): number {
    return (this.u32() >>> 5) * 67108864 + (this.u32() >>> 6);
  }

  /** Uniform integer in [0, n), unbiased (rejection sampling). */
  int(n: number): number {
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`int(n) needs an integer n >= 1, got ${n}`);
    // Largest multiple of n not above 2^53; fmod on doubles is exact, so this is too.
    const limit = 2 ** 53 - (2 ** 53 % n);
    for (;;) {
      const x = this.#u53();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal (Box–Muller, cosine half). */
  normal(): number {
    const u = 1 - this.uniform(); // in (0, 1]: log is finite
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.uniform());
  }

  /** Fisher–Yates shuffle, in place; returns the same array. */
  shuffle<T>(array: T[]): T[] {
    for (let i = array.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      [array[i], array[j]] = [array[j], array[i]];
    }
    return array;
  }

  /** Gamma(alpha, scale 1). */
  gamma(alpha: number): number {
    return Math.exp(this.#logGamma(alpha));
  }

  /** Dirichlet(alpha): non-negative weights summing to 1 (non-IID data splits). */
  dirichlet(alpha: ArrayLike<number>): number[] {
    if (alpha.length === 0) throw new Error('dirichlet needs at least one concentration');
    // In log space: for small alphas (e.g. 0.01) every gamma draw can underflow to 0.
    const logs = Array.from(alpha, (a) => this.#logGamma(a));
    const max = Math.max(...logs);
    const w = logs.map((l) => Math.exp(l - max));
    const sum = w.reduce((a, b) => a + b, 0);
    return w.map((x) => x / sum);
  }

  /** log of a Gamma(alpha) draw: Marsaglia & Tsang (2000), with the alpha < 1 boost
   *  Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha) done in log space. */
  #logGamma(alpha: number): number {
    if (!(alpha > 0) || !Number.isFinite(alpha)) throw new Error(`gamma needs a finite alpha > 0, got ${alpha}`);
    if (alpha < 1) return this.#logGamma(alpha + 1) + Math.log(1 - this.uniform()) / alpha;
    const d = alpha - 1 / 3;
    const c = 1 / Math.sqrt(9 * d);
    for (;;) {
      const x = this.normal();
      const t = 1 + c * x;
      if (t <= 0) continue;
      const v = t * t * t;
      if (Math.log(1 - this.uniform()) < 0.5 * x * x + d - d * v + d * Math.log(v)) return Math.log(d * v);
    }
  }
}
