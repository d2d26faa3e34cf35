import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES } from '../../fixtures.ts';
import {
  parseSafetensors,
  serializeSafetensors,
  readSafetensorsFile,
  writeSafetensorsFile,
  type TensorToWrite,
} from '../../../src/worker/io/safetensors.ts';

const STORIES = path.join(FIXTURES, 'stories260K');
const GPT2 = path.join(FIXTURES, 'gpt2-char-selftrained');

/** A safetensors file built by hand, independently of the writer under test. */
function rawFile(header: unknown, data: ArrayLike<number> = []): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const bytesOf = (arr: ArrayBufferView) => Array.from(new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength));

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(Error);
    return err as Error;
  }
  throw new Error('expected an error, none was thrown');
}

function expectOneLine(err: Error, ...parts: string[]): void {
  expect(err.message).not.toMatch(/[\r\n]/);
  for (const p of parts) expect(err.message).toContain(p);
}

/** Independent reference for float32 -> 16-bit float: nearest representable value, ties to the
 *  even bit pattern, found by search in the table of all finite values of the format. */
function makeNearest(decode: (bits: number) => number, infBits: number, pastMax: number) {
  const table: { v: number; bits: number }[] = [];
  for (let b = 0; b < 0x8000; b++) {
    const v = decode(b);
    if (Number.isFinite(v)) table.push({ v, bits: b });
  }
  table.sort((a, b) => a.v - b.v);
  table.push({ v: pastMax, bits: infBits }); // rounding past the largest finite value gives infinity
  return (x: number): number => {
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const a = Math.abs(x);
    if (a >= pastMax) return sign | infBits;
    let lo = 0;
    let hi = table.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (table[mid].v <= a) lo = mid;
      else hi = mid;
    }
    const dl = a - table[lo].v;
    const dh = table[hi].v - a;
    const pick = dl < dh ? table[lo] : dh < dl ? table[hi] : table[lo].bits % 2 === 0 ? table[lo] : table[hi];
    return sign | pick.bits;
  };
}
const decodeF16 = (b: number) => {
  const e = (b >> 10) & 0x1f;
  const m = b & 0x3ff;
  return e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
};
const decodeBf16 = (b: number) => new Float32Array(new Uint32Array([b << 16]).buffer)[0];

function randomFloats(n: number, minExp: number, maxExp: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (Math.random() < 0.5 ? -1 : 1) * Math.random() * 2 ** (minExp + Math.random() * (maxExp - minExp));
  return out;
}

describe.skipIf(!existsSync(FIXTURES))('safetensors: fixture models', () => {
  it('stories260K: every Llama weight named in config.json, with its shape, finite, F32', async () => {
    const file = path.join(STORIES, 'hf', 'model.safetensors');
    const cfg = JSON.parse(readFileSync(path.join(STORIES, 'hf', 'config.json'), 'utf8'));
    const { tensors, metadata } = await readSafetensorsFile(file);
    const h = cfg.hidden_size;
    const hd = cfg.head_dim;
    const expected: Record<string, number[]> = {
      'model.embed_tokens.weight': [cfg.vocab_size, h],
      'model.norm.weight': [h],
    };
    for (let l = 0; l < cfg.num_hidden_layers; l++) {
      const p = `model.layers.${l}.`;
      expected[p + 'input_layernorm.weight'] = [h];
      expected[p + 'post_attention_layernorm.weight'] = [h];
      expected[p + 'self_attn.q_proj.weight'] = [cfg.num_attention_heads * hd, h];
      expected[p + 'self_attn.k_proj.weight'] = [cfg.num_key_value_heads * hd, h];
      expected[p + 'self_attn.v_proj.weight'] = [cfg.num_key_value_heads * hd, h];
      expected[p + 'self_attn.o_proj.weight'] = [h, cfg.num_attention_heads * hd];
      expected[p + 'mlp.gate_proj.weight'] = [cfg.intermediate_size, h];
      expected[p + 'mlp.up_proj.weight'] = [cfg.intermediate_size, h];
      expected[p + 'mlp.down_proj.weight'] = [h, cfg.intermediate_size];
    }
    expect([...tensors.keys()].sort()).toEqual(Object.keys(expected).sort());
    let params = 0;
    for (const [name, t] of tensors) {
      expect(t.shape, name).toEqual(expected[name]);
      expect(t.dtype).toBe('F32');
      expect(t.data).toBeInstanceOf(Float32Array);
      expect(t.data.every(Number.isFinite), name).toBe(true);
      params += t.data.length;
    }
    expect(params).toBe(260032); // the published parameter count
    expect(metadata).toEqual({ format: 'pt' });
  });

  it('stories260K: values equal the same weights in the llama2.c checkpoint', async () => {
    const { tensors } = await readSafetensorsFile(path.join(STORIES, 'hf', 'model.safetensors'));
    const bin = readFileSync(path.join(STORIES, 'stories260K.bin'));
    // llama2.c legacy layout: 7 int32 config values, token embeddings [vocab, dim], rms_att [layers, dim], ...
    const floats = new Float32Array(bin.buffer.slice(bin.byteOffset + 28, bin.byteOffset + bin.byteLength));
    const emb = tensors.get('model.embed_tokens.weight')!.data;
    expect(bytesOf(emb)).toEqual(bytesOf(floats.subarray(0, 512 * 64)));
    for (let l = 0; l < 5; l++) {
      const start = 512 * 64 + l * 64;
      expect(Array.from(tensors.get(`model.layers.${l}.input_layernorm.weight`)!.data)).toEqual(
        Array.from(floats.subarray(start, start + 64)),
      );
    }
  });

  it('gpt2-char: every GPT-2 weight named in config.json, with its shape, finite', async () => {
    const file = path.join(GPT2, 'model.safetensors');
    const cfg = JSON.parse(readFileSync(path.join(GPT2, 'config.json'), 'utf8'));
    const { tensors } = await readSafetensorsFile(file);
    const e = cfg.n_embd;
    const inner = cfg.n_inner ?? 4 * e;
    const expected: Record<string, number[]> = {
      'transformer.wte.weight': [cfg.vocab_size, e],
      'transformer.wpe.weight': [cfg.n_positions, e],
      'transformer.ln_f.weight': [e],
      'transformer.ln_f.bias': [e],
    };
    for (let l = 0; l < cfg.n_layer; l++) {
      const p = `transformer.h.${l}.`;
      for (const ln of ['ln_1', 'ln_2']) {
        expected[`${p}${ln}.weight`] = [e];
        expected[`${p}${ln}.bias`] = [e];
      }
      expected[p + 'attn.c_attn.weight'] = [e, 3 * e]; // HF Conv1D stores [in, out]
      expected[p + 'attn.c_attn.bias'] = [3 * e];
      expected[p + 'attn.c_proj.weight'] = [e, e];
      expected[p + 'attn.c_proj.bias'] = [e];
      expected[p + 'mlp.c_fc.weight'] = [e, inner];
      expected[p + 'mlp.c_fc.bias'] = [inner];
      expected[p + 'mlp.c_proj.weight'] = [inner, e];
      expected[p + 'mlp.c_proj.bias'] = [e];
    }
    expect([...tensors.keys()].sort()).toEqual(Object.keys(expected).sort());
    // Spot-check values against offsets read straight from the raw header.
    const raw = readFileSync(file);
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const n = Number(view.getBigUint64(0, true));
    const header = JSON.parse(raw.subarray(8, 8 + n).toString('utf8'));
    for (const [name, t] of tensors) {
      expect(t.shape, name).toEqual(expected[name]);
      expect(t.data.every(Number.isFinite), name).toBe(true);
      const [begin, end] = header[name].data_offsets;
      expect(t.data[0]).toBe(view.getFloat32(8 + n + begin, true));
      expect(t.data[t.data.length - 1]).toBe(view.getFloat32(8 + n + end - 4, true));
    }
  });

  it('re-serializing the fixture files reproduces them byte for byte (same layout as the reference writer)', async () => {
    for (const file of [path.join(STORIES, 'hf', 'model.safetensors'), path.join(GPT2, 'model.safetensors')]) {
      const original = readFileSync(file);
      const { tensors, metadata } = parseSafetensors(original, file);
      const written = serializeSafetensors(tensors as Map<string, TensorToWrite>, { metadata });
      expect(Buffer.from(written).equals(original), file).toBe(true);
    }
  });

  it('a truncated fixture file is rejected, naming the file', () => {
    const file = path.join(GPT2, 'model.safetensors');
    const cut = readFileSync(file).subarray(0, -100);
    expectOneLine(errorOf(() => parseSafetensors(cut, file)), file, 'transformer.wte.weight', 'truncated');
  });
});

describe('safetensors: round trips', () => {
  it('F32 is exact, including NaN, infinities, -0, subnormals, scalars and empty tensors', () => {
    const specials = new Float32Array([NaN, Infinity, -Infinity, -0, 0, 1e-45, -1.1754942e-38, 3.4028235e38, 1 / 3]);
    const big = randomFloats(1000, -30, 30);
    const bytes = serializeSafetensors(
      { 'b.specials': { shape: [3, 3], data: specials }, 'a.big': { shape: [10, 100], data: big }, scalar: { shape: [], data: new Float32Array([7.5]) }, empty: { shape: [0, 4], data: new Float32Array(0) } },
      { metadata: { format: 'pt', step: '12' } },
    );
    const { tensors, metadata } = parseSafetensors(bytes);
    expect(metadata).toEqual({ format: 'pt', step: '12' });
    expect(bytesOf(tensors.get('b.specials')!.data)).toEqual(bytesOf(specials));
    expect(bytesOf(tensors.get('a.big')!.data)).toEqual(bytesOf(big));
    expect(tensors.get('a.big')!.shape).toEqual([10, 100]);
    expect(tensors.get('scalar')).toEqual({ dtype: 'F32', shape: [], data: new Float32Array([7.5]) });
    expect(tensors.get('empty')!.shape).toEqual([0, 4]);
    expect(tensors.get('empty')!.data.length).toBe(0);
  });

  it('layout: u64 LE header length, space-padded to 8 bytes, names sorted, contiguous offsets', () => {
    const t = (n: number): TensorToWrite => ({ shape: [n], data: new Float32Array(n).fill(n) });
    const bytes = serializeSafetensors({ zeta: t(3), alpha: t(1), mid: t(2) });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect((8 + n) % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
    expect(text).toMatch(/^\{.*\} *$/);
    expect(text).toBe(
      (
        '{"alpha":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"mid":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},' +
        '"zeta":{"dtype":"F32","shape":[3],"data_offsets":[12,24]}}'
      ).padEnd(n, ' '),
    );
    expect(bytes.length).toBe(8 + n + 24);
    // Insertion order does not matter: same content, same bytes.
    expect(bytesOf(serializeSafetensors({ mid: t(2), alpha: t(1), zeta: t(3) }))).toEqual(bytesOf(bytes));
  });

  const f16Cases: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [65519, 0x7bff], // just below the overflow midpoint
    [65520, 0x7c00], // midpoint to "2^16": ties to even, i.e. infinity
    [1e6, 0x7c00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [-0, 0x8000],
    [0.1, 0x2e66],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: to even (0)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2: to even (2)
    [5 * 2 ** -25, 0x0002], // tie between 2 and 3: to even (2)
    [2 ** -26, 0x0000],
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2047 * 2 ** -25, 0x0400], // tie between largest subnormal and smallest normal: to even (carry)
    [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: to even
    [1 + 3 * 2 ** -11, 0x3c02], // tie: to even, upwards
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
  ];

  it('F16: known bit patterns, round to nearest even, subnormals, overflow', () => {
    const data = new Float32Array(f16Cases.map(([v]) => v));
    const bytes = serializeSafetensors({ x: { shape: [data.length], data } }, { dtype: 'F16' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const stored = new Uint16Array(bytes.slice(8 + n).buffer);
    expect(Array.from(stored, (b) => '0x' + b.toString(16))).toEqual(f16Cases.map(([, b]) => '0x' + b.toString(16)));
    const back = parseSafetensors(bytes).tensors.get('x')!;
    expect(back.dtype).toBe('F16');
    expect(Array.from(back.data)).toEqual(f16Cases.map(([, b]) => (b & 0x8000 ? -1 : 1) * decodeF16(b & 0x7fff)));
    expect(Object.is(back.data[8], -0)).toBe(true);
  });

  it('F16: NaN stays NaN; random values match an independent nearest-even search', () => {
    const nearest = makeNearest(decodeF16, 0x7c00, 65536);
    const data = new Float32Array([NaN, ...randomFloats(20000, -27, 17)]);
    const bytes = serializeSafetensors({ x: { shape: [data.length], data } }, { dtype: 'F16' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const stored = new Uint16Array(bytes.slice(8 + n).buffer);
    expect(Number.isNaN(parseSafetensors(bytes).tensors.get('x')!.data[0])).toBe(true);
    let mismatches = 0;
    for (let i = 1; i < data.length; i++) if (stored[i] !== nearest(data[i])) mismatches++;
    expect(mismatches).toBe(0);
    // and within half precision of the input in the normal range
    const back = parseSafetensors(bytes).tensors.get('x')!.data;
    for (let i = 1; i < data.length; i++) {
      const a = Math.abs(data[i]);
      if (a >= 2 ** -14 && a <= 65504) expect(Math.abs(back[i] - data[i])).toBeLessThanOrEqual(a * 2 ** -11);
    }
  });

  it('BF16: known bit patterns, round to nearest even, and random values match an independent search', () => {
    const cases: [number, number][] = [
      [1, 0x3f80],
      [-2, 0xc000],
      [Math.PI, 0x4049],
      [1 + 2 ** -8, 0x3f80], // tie: to even
      [1 + 3 * 2 ** -8, 0x3f82], // tie: to even, upwards
      [1 + 2 ** -8 + 2 ** -20, 0x3f81],
      [3.4028235e38, 0x7f80], // float32 max rounds past bf16 max: infinity
      [-Infinity, 0xff80],
      [1e-45, 0x0000],
      [-0, 0x8000],
    ];
    const data = new Float32Array(cases.map(([v]) => v));
    const bytes = serializeSafetensors({ x: { shape: [data.length], data } }, { dtype: 'BF16' });
    const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const stored = new Uint16Array(bytes.slice(8 + n).buffer);
    expect(Array.from(stored, (b) => '0x' + b.toString(16))).toEqual(cases.map(([, b]) => '0x' + b.toString(16)));
    expect(Array.from(parseSafetensors(bytes).tensors.get('x')!.data)).toEqual(cases.map(([, b]) => decodeBf16(b)));

    const nearest = makeNearest(decodeBf16, 0x7f80, 2 ** 128);
    const rand = new Float32Array([NaN, ...randomFloats(20000, -140, 127)]);
    const rbytes = serializeSafetensors({ x: { shape: [rand.length], data: rand } }, { dtype: 'BF16' });
    const rn = Number(new DataView(rbytes.buffer).getBigUint64(0, true));
    const rstored = new Uint16Array(rbytes.slice(8 + rn).buffer);
    expect(Number.isNaN(decodeBf16(rstored[0]))).toBe(true);
    let mismatches = 0;
    for (let i = 1; i < rand.length; i++) if (rstored[i] !== nearest(rand[i])) mismatches++;
    expect(mismatches).toBe(0);
  });
});

describe('safetensors: reading other dtypes from hand-built files', () => {
  it('F16 and BF16 are widened exactly', () => {
    const f16 = [0x3c00, 0x0001, 0x7bff, 0xfc00, 0x7e00, 0x8000, 0x3555];
    const bf16 = [0x3f80, 0xc049, 0x7f80, 0x0001];
    const data = new Uint8Array(new Uint16Array([...f16, ...bf16]).buffer);
    const { tensors } = parseSafetensors(
      rawFile(
        {
          h: { dtype: 'F16', shape: [7], data_offsets: [0, 14] },
          b: { dtype: 'BF16', shape: [2, 2], data_offsets: [14, 22] },
        },
        data,
      ),
    );
    const h = tensors.get('h')!.data;
    expect(Array.from(h.subarray(0, 4))).toEqual([1, 2 ** -24, 65504, -Infinity]);
    expect(Number.isNaN(h[4])).toBe(true);
    expect(Object.is(h[5], -0)).toBe(true);
    expect(h[6]).toBe(0.333251953125);
    expect(Array.from(tensors.get('b')!.data)).toEqual([1, -3.140625, Infinity, 2 ** -133]);
    expect(tensors.get('b')!.shape).toEqual([2, 2]);
  });

  it('I32 and I64 read as Int32Array; unaligned offsets work', () => {
    const i64 = new BigInt64Array([-5n, 2147483647n, -2147483648n]);
    const data = new Uint8Array(2 + 12 + 24);
    data.set([0x00, 0x3c], 0); // one F16 at [0, 2) puts the next tensor at an odd-of-4 offset
    data.set(new Uint8Array(new Int32Array([1, -2, 300000]).buffer), 2);
    data.set(new Uint8Array(i64.buffer), 14);
    const { tensors } = parseSafetensors(
      rawFile(
        {
          one: { dtype: 'F16', shape: [], data_offsets: [0, 2] },
          i: { dtype: 'I32', shape: [3], data_offsets: [2, 14] },
          l: { dtype: 'I64', shape: [3], data_offsets: [14, 38] },
        },
        data,
      ),
    );
    expect(tensors.get('one')!.data).toEqual(new Float32Array([1]));
    expect(tensors.get('i')!.data).toEqual(new Int32Array([1, -2, 300000]));
    expect(tensors.get('l')!.data).toEqual(new Int32Array([-5, 2147483647, -2147483648]));
  });
});

describe('safetensors: corrupt files give one-line errors naming the file', () => {
  const src = '/models/bad.safetensors';
  const f32x2 = new Uint8Array(new Float32Array([1, 2]).buffer);
  const ok = (extra: object = {}) => ({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, ...extra });
  const cases: [string, Uint8Array, string][] = [
    ['shorter than the length field', new Uint8Array(5), 'truncated'],
    ['header length beyond the file', (() => { const b = rawFile(ok(), f32x2); new DataView(b.buffer).setBigUint64(0, 1000n, true); return b; })(), 'header length 1000'],
    ['header length near 2^64', (() => { const b = rawFile(ok(), f32x2); new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true); return b; })(), 'truncated'],
    ['bad JSON spanning lines', rawFile('{"a":\n\n {"dtype": }', f32x2), 'not valid JSON'],
    ['invalid UTF-8 in the header', (() => { const b = rawFile('{"a":1}  '); b[12] = 0xff; return b; })(), 'not valid JSON'],
    ['header is an array', rawFile([1, 2]), 'not a JSON object'],
    ['tensor entry not an object', rawFile({ a: 3 }), '"a"'],
    ['unknown dtype', rawFile({ a: { dtype: 'F64', shape: [1], data_offsets: [0, 8] } }, f32x2), 'unsupported dtype "F64"'],
    ['non-integer shape', rawFile({ a: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, f32x2), 'shape [1.5]'],
    ['negative shape', rawFile({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, f32x2), 'shape [-2]'],
    ['shape not a list', rawFile({ a: { dtype: 'F32', shape: '2', data_offsets: [0, 8] } }, f32x2), 'shape "2"'],
    ['offsets reversed', rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, f32x2), 'data_offsets [8,0]'],
    ['offsets missing', rawFile({ a: { dtype: 'F32', shape: [2] } }, f32x2), 'data_offsets'],
    ['offsets past the data', rawFile({ a: { dtype: 'F32', shape: [100], data_offsets: [0, 400] } }, f32x2), 'run past the 8-byte data section'],
    ['offsets do not match shape x dtype', rawFile({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32x2), 'needs 12'],
    ['overlapping tensors', rawFile(ok({ b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }), new Uint8Array(12)), 'overlap'],
    ['metadata value not a string', rawFile(ok({ __metadata__: { step: 3 } }), f32x2), '"__metadata__" entry "step"'],
    ['I64 value beyond int32', rawFile({ a: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, new Uint8Array(new BigInt64Array([1n << 40n]).buffer)), 'does not fit in int32'],
  ];
  for (const [what, bytes, phrase] of cases) {
    it(what, () => {
      const err = errorOf(() => parseSafetensors(bytes, src));
      expectOneLine(err, phrase);
      expect(err.message.startsWith(src + ': ')).toBe(true);
    });
  }

  it('the well-formed base case of the corruptions parses', () => {
    expect(parseSafetensors(rawFile(ok(), f32x2), src).tensors.get('a')!.data).toEqual(new Float32Array([1, 2]));
    // and empty tensors may share an offset with a neighbour without overlapping it
    const withEmpty = rawFile(ok({ e: { dtype: 'F32', shape: [0], data_offsets: [4, 4] } }), f32x2);
    expect(parseSafetensors(withEmpty, src).tensors.get('e')!.data.length).toBe(0);
  });

  it('readSafetensorsFile names the path of a missing or corrupt file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-read-'));
    const missing = path.join(dir, 'nope.safetensors');
    await expect(readSafetensorsFile(missing)).rejects.toThrow(/^cannot read .*nope\.safetensors: ENOENT[^\n]*$/);
    const corrupt = path.join(dir, 'corrupt.safetensors');
    writeFileSync(corrupt, rawFile('{"a": [', f32x2));
    await expect(readSafetensorsFile(corrupt)).rejects.toThrow(`${corrupt}: safetensors header is not valid JSON`);
  });
});

describe('safetensors: writing files', () => {
  it('writeSafetensorsFile is readable back, replaces an existing file, and leaves no temp files', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-write-'));
    const file = path.join(dir, 'w.safetensors');
    const data = randomFloats(64, -5, 5);
    await writeSafetensorsFile(file, { w: { shape: [8, 8], data } }, { metadata: { round: '1' } });
    await writeSafetensorsFile(file, { w: { shape: [8, 8], data: data.map((x) => x * 2) } }, { metadata: { round: '2' } });
    expect(readdirSync(dir)).toEqual(['w.safetensors']);
    const { tensors, metadata } = await readSafetensorsFile(file);
    expect(metadata).toEqual({ round: '2' });
    expect(Array.from(tensors.get('w')!.data)).toEqual(Array.from(data, (x) => Math.fround(x * 2)));
  });

  it('a failed write leaves no file behind', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'st-fail-'));
    const target = path.join(dir, 'missing-subdir', 'w.safetensors');
    await expect(writeSafetensorsFile(target, { w: { shape: [1], data: new Float32Array(1) } })).rejects.toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('rejects tensors whose shape does not match their data, and reserved names', () => {
    expect(() => serializeSafetensors({ w: { shape: [2, 3], data: new Float32Array(5) } })).toThrow('has 6 elements but the data has 5');
    expect(() => serializeSafetensors({ w: { shape: [2.5], data: new Float32Array(2) } })).toThrow('non-negative integers');
    expect(() => serializeSafetensors({ __metadata__: { shape: [1], data: new Float32Array(1) } })).toThrow('invalid tensor name');
  });
});
