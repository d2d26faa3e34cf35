// A model directory checked before a federation is created or joined: config.json parses, every
// safetensors file's header is whole and its tensors lie within the file (a truncated or damaged
// file is caught here, not rounds later in a worker), and the weights fit the config (the token
// embedding is [vocab_size, hidden_size], the layers counted in the tensor names are as many as
// the config says). Only headers are read, so a large model is checked in moments.
import { open, readFile, stat } from 'node:fs/promises';
import path from 'node:path';

const BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const MAX_HEADER = 100 * 1024 * 1024;

/** name → shape of every tensor in one safetensors file, after checking the file's layout. */
async function readHeader(file: string): Promise<Map<string, number[]>> {
  const name = path.basename(file);
  let size: number;
  try {
    size = (await stat(file)).size;
  } catch {
    throw new Error(`${name} is missing from ${path.dirname(file)}`);
  }
  if (size < 8) throw new Error(`${name} is truncated (${size} bytes)`);
  const fh = await open(file, 'r');
  try {
    const len = Buffer.alloc(8);
    await fh.read(len, 0, 8, 0);
    const headerLen = Number(len.readBigUInt64LE(0));
    if (headerLen < 2 || headerLen > MAX_HEADER || 8 + headerLen > size) throw new Error(`${name} has a damaged or truncated header`);
    const buf = Buffer.alloc(headerLen);
    await fh.read(buf, 0, headerLen, 8);
    let header: Record<string, { dtype?: unknown; shape?: unknown; data_offsets?: unknown }>;
    try {
      header = JSON.parse(buf.toString('utf8')) as typeof header;
    } catch {
      throw new Error(`${name} has a damaged header (not JSON)`);
    }
    const out = new Map<string, number[]>();
    let end = 0;
    for (const [tensor, t] of Object.entries(header)) {
      if (tensor === '__metadata__') continue;
      const shape = t.shape;
      const offsets = t.data_offsets;
      const width = typeof t.dtype === 'string' ? BYTES[t.dtype] : undefined;
      if (width === undefined || !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0) || !Array.isArray(offsets) || offsets.length !== 2) {
        throw new Error(`${name}: tensor "${tensor.slice(0, 100)}" has a damaged entry`);
      }
      const [from, to] = offsets as number[];
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (!(Number.isSafeInteger(from) && Number.isSafeInteger(to) && from! >= 0 && to! - from! === count * width)) {
        throw new Error(`${name}: tensor "${tensor.slice(0, 100)}" does not match its shape and dtype`);
      }
      end = Math.max(end, to!);
      out.set(tensor, shape as number[]);
    }
    if (8 + headerLen + end > size) throw new Error(`${name} is truncated: ${size} bytes, its tensors need ${8 + headerLen + end}`);
    return out;
  } finally {
    await fh.close();
  }
}

const first = (config: Record<string, unknown>, keys: string[]): number | undefined => {
  for (const k of keys) if (typeof config[k] === 'number') return config[k] as number;
  return undefined;
};

/** Check the model directory `dir`; throws a one-line Error naming what is wrong. */
export async function checkModelFiles(dir: string): Promise<void> {
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch (e) {
    throw new Error(`the model at ${dir}: config.json is ${(e as { code?: string }).code === 'ENOENT' ? 'missing' : 'not valid JSON'}`);
  }
  const shapes = new Map<string, number[]>();
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  let files: string[];
  try {
    await stat(single);
    files = [single];
  } catch {
    let map: Record<string, string>;
    try {
      map = (JSON.parse(await readFile(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map;
    } catch {
      throw new Error(`the model at ${dir} has no readable model.safetensors or model.safetensors.index.json`);
    }
    files = [...new Set(Object.values(map ?? {}))].map((f) => path.join(dir, path.basename(String(f))));
  }
  try {
    for (const f of files) for (const [k, v] of await readHeader(f)) shapes.set(k, v);
  } catch (e) {
    throw new Error(`the model at ${dir}: ${(e as Error).message}`);
  }
  if (shapes.size === 0) throw new Error(`the model at ${dir} has no tensors`);
  // every member tokenizes its own data with the model's tokenizer: tokenizer.json, or GPT-2's legacy pair
  const has = (f: string) => stat(path.join(dir, f)).then(() => true, () => false);
  if (!(await has('tokenizer.json')) && !((await has('vocab.json')) && (await has('merges.txt'))))
    throw new Error(`the model at ${dir} has no tokenizer (tokenizer.json, or vocab.json + merges.txt)`);
  const hidden = first(config, ['hidden_size', 'n_embd', 'd_model', 'dim']);
  const vocab = first(config, ['vocab_size']);
  const layers = first(config, ['num_hidden_layers', 'n_layer', 'num_layers']);
  if (hidden !== undefined && vocab !== undefined) {
    const embed = [...shapes].find(([n]) => /(embed_tokens|wte|word_embeddings|tok_embeddings)\.weight$/.test(n));
    if (embed !== undefined && (embed[1].length !== 2 || embed[1][0] !== vocab || embed[1][1] !== hidden)) {
      throw new Error(`the model at ${dir}: ${embed[0]} is [${embed[1].join(', ')}], config.json says [${vocab}, ${hidden}]`);
    }
  }
  if (layers !== undefined) {
    const seen = new Set<number>();
    for (const n of shapes.keys()) {
      const m = /(?:^|\.)(?:layers|h|layer|blocks)\.(\d+)\./.exec(n);
      if (m) seen.add(Number(m[1]));
    }
    if (seen.size > 0 && seen.size !== layers) throw new Error(`the model at ${dir} has weights for ${seen.size} layers, config.json says ${layers}`);
  }
}
