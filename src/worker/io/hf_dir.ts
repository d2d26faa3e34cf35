// Loads a local Hugging Face model directory (config.json, safetensors weights, tokenizer files).
// Nothing is ever downloaded: every peer must point at files it already has, and
// modelFingerprint lets peers check that those files are the same.
import { createReadStream, existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { readSafetensorsFile } from './safetensors.ts';
import { Tokenizer } from './tokenizer.ts';

export interface HfTensor {
  shape: number[];
  data: Float32Array;
}

export interface HfDir {
  config: Record<string, unknown>;
  /** Floating-point tensors by HF name. Integer tensors (buffers such as position_ids) are left
   *  out: they are not weights to train or average. */
  tensors: Map<string, HfTensor>;
  tokenizer: Tokenizer | null;
  /** Absolute path of the directory. */
  dir: string;
}

const CONFIG = 'config.json';
const SINGLE = 'model.safetensors';
const INDEX = 'model.safetensors.index.json';
/** The files that decide which ids a text becomes (tokenizer_config.json's metadata does not). */
const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer.model'];

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();

export async function loadHfDir(dir: string): Promise<HfDir> {
  const abs = await checkDir(dir);
  const config = await readJsonObject(abs, CONFIG);
  const tensors = new Map<string, HfTensor>();
  for (const file of (await weightFiles(abs)).shards) {
    const { tensors: found } = await readSafetensorsFile(path.join(abs, file.name));
    for (const name of file.wanted ?? found.keys()) {
      const t = found.get(name);
      if (!t) throw new Error(`${INDEX} in ${abs} maps tensor "${name}" to ${file.name}, which does not contain it`);
      if (t.data instanceof Float32Array) tensors.set(name, { shape: t.shape, data: t.data });
    }
  }
  return { config, tensors, tokenizer: await loadTokenizer(abs), dir: abs };
}

/**
 * The directory's tokenizer: tokenizer.json, else a legacy GPT-2 pair vocab.json + merges.txt; null
 * when it has neither. Half a pair is an error, not a missing tokenizer.
 */
async function loadTokenizer(dir: string): Promise<Tokenizer | null> {
  const file = (name: string) => path.join(dir, name);
  const configs = ['tokenizer_config.json', 'special_tokens_map.json'].map(file).filter((f) => existsSync(f));
  if (existsSync(file('tokenizer.json'))) return Tokenizer.fromFiles(file('tokenizer.json'), existsSync(file('tokenizer_config.json')) ? file('tokenizer_config.json') : undefined);
  const [vocab, merges] = [existsSync(file('vocab.json')), existsSync(file('merges.txt'))];
  if (vocab && merges) return Tokenizer.fromBpeFiles(file('vocab.json'), file('merges.txt'), configs);
  if (vocab || merges) throw new Error(`${dir} has ${vocab ? 'vocab.json but no merges.txt' : 'merges.txt but no vocab.json'} (and no tokenizer.json)`);
  return null;
}

/**
 * sha256 (hex) over config.json, the weight files (model.safetensors, or the index and its shards
 * in name order) and the tokenizer files that exist, each framed by its name and byte length so no
 * two different file sets hash alike. Peers compare it to make sure they finetune the same base
 * model and encode their text to the same ids.
 */
export async function modelFingerprint(dir: string): Promise<string> {
  const abs = await checkDir(dir);
  const { index, shards } = await weightFiles(abs);
  const tokenizer = TOKENIZER_FILES.filter((name) => existsSync(path.join(abs, name)));
  const names = [CONFIG, ...(index ? [INDEX] : []), ...shards.map((f) => f.name), ...tokenizer];
  const hash = createHash('sha256');
  for (const name of names) {
    const file = path.join(abs, name);
    let size: number;
    try {
      size = (await stat(file)).size;
    } catch (err) {
      throw new Error(`cannot read ${file}: ${oneLine((err as Error).message)}`);
    }
    const frame = new Uint8Array(8);
    new DataView(frame.buffer).setBigUint64(0, BigInt(size), true);
    hash.update(`${name}\0`);
    hash.update(frame);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

async function checkDir(dir: string): Promise<string> {
  const abs = path.resolve(dir);
  let isDir: boolean;
  try {
    isDir = (await stat(abs)).isDirectory();
  } catch {
    throw new Error(`model directory ${abs} does not exist`);
  }
  if (!isDir) throw new Error(`model directory ${abs} is not a directory`);
  return abs;
}

/** The safetensors files to read; for a sharded model (index: true), with the tensors the index
 *  assigns to each. */
async function weightFiles(dir: string): Promise<{ index: boolean; shards: { name: string; wanted?: string[] }[] }> {
  if (existsSync(path.join(dir, SINGLE))) return { index: false, shards: [{ name: SINGLE }] };
  if (!existsSync(path.join(dir, INDEX))) throw new Error(`no ${SINGLE} or ${INDEX} in ${dir}`);
  const weightMap = (await readJsonObject(dir, INDEX)).weight_map;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new Error(`${INDEX} in ${dir} has no "weight_map" object`);
  }
  const byShard = new Map<string, string[]>();
  for (const [tensor, shard] of Object.entries(weightMap)) {
    // Shards must be plain file names in this directory: an index must not reach elsewhere.
    if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '..' || shard === '.') {
      throw new Error(`${INDEX} in ${dir} maps tensor "${tensor}" to ${JSON.stringify(shard)}, not a file name in the directory`);
    }
    if (!byShard.has(shard)) byShard.set(shard, []);
    byShard.get(shard)!.push(tensor);
  }
  if (byShard.size === 0) throw new Error(`${INDEX} in ${dir} has an empty "weight_map"`);
  return { index: true, shards: [...byShard.keys()].sort().map((name) => ({ name, wanted: byShard.get(name) })) };
}

async function readJsonObject(dir: string, name: string): Promise<Record<string, unknown>> {
  const file = path.join(dir, name);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${name} is missing from ${dir}`);
    throw new Error(`cannot read ${name} in ${dir}: ${oneLine((err as Error).message)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${name} in ${dir} is not valid JSON: ${oneLine((err as Error).message)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${name} in ${dir} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}
