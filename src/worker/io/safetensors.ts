// Reader and writer for the safetensors format (https://github.com/huggingface/safetensors):
//   u64 little-endian N | N bytes of UTF-8 JSON header | raw little-endian tensor data
// The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets relative
// to the start of the data section) plus an optional "__metadata__" map of strings.
// Our own implementation rather than a dependency: it is small, and every malformed file must fail
// with a one-line error naming the file instead of yielding garbage weights.
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../../shared/atomic_write.ts';

export type ReadDtype = 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';
export type WriteDtype = 'F32' | 'F16' | 'BF16';

export interface SafeTensor {
  /** The dtype stored in the file; the data is widened to float32 / int32 on read. */
  dtype: ReadDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface ParsedSafetensors {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

export interface TensorToWrite {
  shape: number[];
  data: Float32Array;
}

export interface SerializeOptions {
  dtype?: WriteDtype;
  metadata?: Record<string, string>;
}

const ITEM_SIZE: Record<ReadDtype, number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };
const METADATA_KEY = '__metadata__';

// Tensor data is copied byte-for-byte into typed arrays, which use the host's byte order.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('safetensors support needs a little-endian host');
}

// Embedded messages (JSON.parse quotes the input) may span lines; our errors must not.
const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

export function parseSafetensors(buf: Uint8Array, source = 'model.safetensors'): ParsedSafetensors {
  const fail = (msg: string): never => {
    throw new Error(`${source}: ${oneLine(msg)}`);
  };
  if (buf.length < 8) fail(`truncated safetensors file (${buf.length} bytes; the 8-byte header length is missing)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const headerLen = view.getBigUint64(0, true);
  if (headerLen > BigInt(buf.length - 8)) {
    fail(`truncated safetensors file: header length ${headerLen} exceeds the ${buf.length - 8} bytes after it`);
  }
  const dataStart = 8 + Number(headerLen);
  const dataLen = buf.length - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, dataStart)));
  } catch (err) {
    fail(`safetensors header is not valid JSON: ${(err as Error).message}`);
  }
  if (!isPlainObject(header)) fail('safetensors header is not a JSON object');
  const entries = header as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const rawMeta = entries[METADATA_KEY];
  if (rawMeta !== undefined) {
    if (!isPlainObject(rawMeta)) fail(`"${METADATA_KEY}" is not an object of strings`);
    for (const [k, v] of Object.entries(rawMeta as Record<string, unknown>)) {
      if (typeof v !== 'string') fail(`"${METADATA_KEY}" entry "${k}" is not a string`);
      metadata[k] = v as string;
    }
  }

  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors = new Map<string, SafeTensor>();
  for (const [name, info] of Object.entries(entries)) {
    if (name === METADATA_KEY) continue;
    if (!isPlainObject(info)) fail(`tensor "${name}": entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
    if (typeof dtype !== 'string' || !Object.hasOwn(ITEM_SIZE, dtype)) {
      fail(`tensor "${name}": unsupported dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(ITEM_SIZE).join(', ')})`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) || offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
    ) {
      fail(`tensor "${name}": data_offsets ${JSON.stringify(offsets)} is not a pair [begin, end] with 0 <= begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLen) fail(`tensor "${name}": data_offsets [${begin}, ${end}] run past the ${dataLen}-byte data section (file truncated?)`);
    const dims = shape as number[];
    const expected = dims.reduce((a, b) => a * b, 1) * ITEM_SIZE[dtype as ReadDtype];
    if (end - begin !== expected) {
      fail(`tensor "${name}": data_offsets [${begin}, ${end}] hold ${end - begin} bytes but ${dtype} shape [${dims.join(', ')}] needs ${expected}`);
    }
    spans.push({ name, begin, end });
    tensors.set(name, {
      dtype: dtype as ReadDtype,
      shape: [...dims],
      data: decode(dtype as ReadDtype, buf.subarray(dataStart + begin, dataStart + end), name, fail),
    });
  }

  // Empty tensors occupy no bytes, so they may sit at any offset.
  const filled = spans.filter((s) => s.end > s.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < filled.length; i++) {
    const prev = filled[i - 1];
    const cur = filled[i];
    if (cur.begin < prev.end) {
      fail(`tensors "${prev.name}" [${prev.begin}, ${prev.end}] and "${cur.name}" [${cur.begin}, ${cur.end}] overlap`);
    }
  }
  return { tensors, metadata };
}

function decode(dtype: ReadDtype, bytes: Uint8Array, name: string, fail: (msg: string) => never): Float32Array | Int32Array {
  // Copy into a fresh, aligned buffer: offsets in the file need not be multiples of 4. (Not
  // bytes.slice(): on a Node Buffer that returns a view of the shared buffer, not a copy.)
  const copy = new Uint8Array(bytes).buffer;
  switch (dtype) {
    case 'F32':
      return new Float32Array(copy);
    case 'I32':
      return new Int32Array(copy);
    case 'F16': {
      const half = new Uint16Array(copy);
      const out = new Float32Array(half.length);
      for (let i = 0; i < half.length; i++) out[i] = f16ToF32(half[i]);
      return out;
    }
    case 'BF16': {
      // bf16 is the top half of a float32, so widening is exact.
      const half = new Uint16Array(copy);
      const bits = new Uint32Array(half.length);
      for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
      return new Float32Array(bits.buffer);
    }
    case 'I64': {
      const wide = new BigInt64Array(copy);
      const out = new Int32Array(wide.length);
      for (let i = 0; i < wide.length; i++) {
        const v = wide[i];
        if (v < -2147483648n || v > 2147483647n) fail(`tensor "${name}": I64 value ${v} at index ${i} does not fit in int32`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1024 + mant) * 2 ** (exp - 25);
}

/** float32 bit pattern -> float16 bit pattern, round to nearest, ties to even (as numpy/torch do). */
export function f32BitsToF16(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 | (mant >>> 13) : 0);
  if (exp >= 113) {
    // Normal in half precision (unbiased exponent >= -14). A rounding carry out of the mantissa moves
    // to the next exponent; anything at or past 0x7c00 is an overflow to infinity.
    let h = ((exp - 112) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
    return sign | Math.min(h, 0x7c00);
  }
  // Subnormal or zero in half precision: the value is m * 2^(exp-150), the half unit is 2^-24.
  const shift = 126 - exp;
  if (shift > 24) return sign;
  const m = mant | 0x800000;
  let h = m >>> shift;
  const rest = m & ((1 << shift) - 1);
  const halfway = 1 << (shift - 1);
  if (rest > halfway || (rest === halfway && h & 1)) h++;
  return sign | h;
}

/** float32 bit pattern -> bfloat16 bit pattern, round to nearest, ties to even. */
export function f32BitsToBf16(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return (x >>> 16) | 0x40; // NaN stays a (quiet) NaN
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function serializeSafetensors(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  opts: SerializeOptions = {},
): Uint8Array {
  const dtype = opts.dtype ?? 'F32';
  if (!['F32', 'F16', 'BF16'].includes(dtype)) throw new Error(`cannot write safetensors dtype ${dtype}`);
  const itemSize = ITEM_SIZE[dtype];
  // Sorted names make the bytes a function of the content alone, so files can be compared by hash.
  const named = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );

  const header: Record<string, unknown> = {};
  if (opts.metadata) {
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== 'string') throw new Error(`safetensors metadata "${k}" must be a string`);
    }
    header[METADATA_KEY] = opts.metadata;
  }
  let offset = 0;
  for (const [name, t] of named) {
    if (name === METADATA_KEY || name === '') throw new Error(`invalid tensor name "${name}"`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`tensor "${name}": shape [${t.shape.join(', ')}] is not a list of non-negative integers`);
    }
    const numel = t.shape.reduce((a, b) => a * b, 1);
    if (numel !== t.data.length) {
      throw new Error(`tensor "${name}": shape [${t.shape.join(', ')}] has ${numel} elements but the data has ${t.data.length}`);
    }
    header[name] = { dtype, shape: t.shape, data_offsets: [offset, offset + numel * itemSize] };
    offset += numel * itemSize;
  }

  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad with spaces so the data section starts 8-byte aligned, as the reference implementation does.
  const headerLen = Math.ceil((8 + json.length) / 8) * 8 - 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + headerLen);

  let pos = 8 + headerLen;
  for (const [, t] of named) {
    const bits = new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length);
    if (dtype === 'F32') {
      out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), pos);
    } else {
      const convert = dtype === 'F16' ? f32BitsToF16 : f32BitsToBf16;
      const half = new Uint16Array(out.buffer, pos, t.data.length); // pos is even: aligned
      for (let i = 0; i < bits.length; i++) half[i] = convert(bits[i]);
    }
    pos += t.data.length * itemSize;
  }
  return out;
}

export async function readSafetensorsFile(file: string): Promise<ParsedSafetensors> {
  let buf: Uint8Array;
  try {
    buf = await readFile(file);
  } catch (err) {
    throw new Error(`cannot read ${file}: ${oneLine((err as Error).message)}`);
  }
  return parseSafetensors(buf, file);
}

/** Atomic: readers never see a partly written file, even if the process dies mid-write. */
export async function writeSafetensorsFile(
  file: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  opts: SerializeOptions = {},
): Promise<void> {
  await writeFileAtomic(file, serializeSafetensors(tensors, opts));
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
