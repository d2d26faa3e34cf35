import { describe, it, expect } from 'vitest';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { FIXTURES } from '../../fixtures.ts';
import { loadHfDir, modelFingerprint } from '../../../src/worker/io/hf_dir.ts';
import { serializeSafetensors, type TensorToWrite } from '../../../src/worker/io/safetensors.ts';

const STORIES_HF = path.join(FIXTURES, 'stories260K', 'hf');
const GPT2 = path.join(FIXTURES, 'gpt2-char-selftrained');
const FILES = ['config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json'];

/** A writable copy of the stories260K directory (only the named files). */
function copyStories(files = FILES): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hfdir-'));
  for (const f of files) copyFileSync(path.join(STORIES_HF, f), path.join(dir, f));
  return dir;
}

function expectOneLine(err: unknown, ...parts: string[]): void {
  expect(err).toBeInstanceOf(Error);
  const msg = (err as Error).message;
  expect(msg).not.toMatch(/[\r\n]/);
  for (const p of parts) expect(msg).toContain(p);
}

async function loadError(dir: string): Promise<unknown> {
  return loadHfDir(dir).then(
    () => new Error('expected loadHfDir to fail'),
    (err: unknown) => err,
  );
}

describe.skipIf(!existsSync(FIXTURES))('loadHfDir on the fixture models', () => {
  it('stories260K: config, all weights, and a working tokenizer', async () => {
    const m = await loadHfDir(STORIES_HF);
    expect(m.dir).toBe(path.resolve(STORIES_HF));
    expect(m.config.model_type).toBe('llama');
    expect(m.config.hidden_size).toBe(64);
    expect(m.tensors.size).toBe(2 + 9 * 5);
    expect(m.tensors.get('model.embed_tokens.weight')!.shape).toEqual([512, 64]);
    expect(m.tensors.get('model.layers.4.self_attn.k_proj.weight')!.shape).toEqual([32, 64]);
    expect([...m.tensors.values()].reduce((n, t) => n + t.data.length, 0)).toBe(260032);
    expect(m.tokenizer).not.toBeNull();
    expect(m.tokenizer!.encode('Once upon a time')).toEqual([1, 403, 407, 261, 378]);
  });

  it('gpt2-char: no tokenizer_config.json is fine', async () => {
    const m = await loadHfDir(GPT2);
    expect(m.config.model_type).toBe('gpt2');
    expect(m.tensors.get('transformer.wte.weight')!.shape).toEqual([61, 64]);
    expect(m.tokenizer!.encode('Once')).toEqual([24, 46, 35, 37]);
  });

  it('a sharded model (model.safetensors.index.json) loads the same tensors', async () => {
    const single = await loadHfDir(STORIES_HF);
    const dir = copyStories(['config.json', 'tokenizer.json']);
    const names = [...single.tensors.keys()].sort();
    const shards: Record<string, TensorToWrite>[] = [{}, {}];
    const weightMap: Record<string, string> = {};
    names.forEach((name, i) => {
      shards[i % 2][name] = single.tensors.get(name)!;
      weightMap[name] = `model-0000${(i % 2) + 1}-of-00002.safetensors`;
    });
    // An extra tensor in a shard that the index does not list is ignored.
    shards[0]['not.in.index'] = { shape: [1], data: new Float32Array(1) };
    shards.forEach((s, i) => writeFileSync(path.join(dir, `model-0000${i + 1}-of-00002.safetensors`), serializeSafetensors(s)));
    writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const sharded = await loadHfDir(dir);
    expect([...sharded.tensors.keys()].sort()).toEqual(names);
    for (const name of names) {
      expect(sharded.tensors.get(name)!.shape).toEqual(single.tensors.get(name)!.shape);
      expect(sharded.tensors.get(name)!.data).toEqual(single.tensors.get(name)!.data);
    }
    // no tokenizer_config.json: bos falls back to the "<s>" special token
    expect(sharded.tokenizer!.bosId).toBe(1);
    expect(await modelFingerprint(dir)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('integer tensors are left out of the weights; a missing tokenizer gives null', async () => {
    const dir = copyStories(['config.json']);
    // Hand-built file with one F32 and one I64 tensor.
    const header = JSON.stringify({
      w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      position_ids: { dtype: 'I64', shape: [1, 2], data_offsets: [8, 24] },
    });
    const bytes = new Uint8Array(8 + header.length + 24);
    new DataView(bytes.buffer).setBigUint64(0, BigInt(header.length), true);
    bytes.set(new TextEncoder().encode(header), 8);
    bytes.set(new Uint8Array(new Float32Array([1, 2]).buffer), 8 + header.length);
    bytes.set(new Uint8Array(new BigInt64Array([0n, 1n]).buffer), 8 + header.length + 8);
    writeFileSync(path.join(dir, 'model.safetensors'), bytes);
    const m = await loadHfDir(dir);
    expect([...m.tensors.keys()]).toEqual(['w']);
    expect(m.tensors.get('w')!.data).toEqual(new Float32Array([1, 2]));
    expect(m.tokenizer).toBeNull();
  });
});

describe.skipIf(!existsSync(FIXTURES))('loadHfDir errors: one line, naming the file', () => {
  it('missing directory, or a file instead of a directory', async () => {
    expectOneLine(await loadError('/nonexistent/model-dir'), '/nonexistent/model-dir', 'does not exist');
    expectOneLine(await loadError(path.join(STORIES_HF, 'config.json')), 'config.json', 'is not a directory');
  });

  it('missing config.json', async () => {
    const dir = copyStories(['model.safetensors']);
    expectOneLine(await loadError(dir), `config.json is missing from ${dir}`);
  });

  it('config.json that is not valid JSON, or not an object', async () => {
    const dir = copyStories();
    writeFileSync(path.join(dir, 'config.json'), '{\n  "hidden_size": 64,\n');
    expectOneLine(await loadError(dir), `config.json in ${dir} is not valid JSON: `);
    writeFileSync(path.join(dir, 'config.json'), '"llama"');
    expectOneLine(await loadError(dir), `config.json in ${dir} is not a JSON object`);
  });

  it('no weights at all', async () => {
    const dir = copyStories(['config.json', 'tokenizer.json']);
    expectOneLine(await loadError(dir), `no model.safetensors or model.safetensors.index.json in ${dir}`);
  });

  it('truncated model.safetensors', async () => {
    const dir = copyStories();
    const file = path.join(dir, 'model.safetensors');
    writeFileSync(file, readFileSync(file).subarray(0, 5000));
    expectOneLine(await loadError(dir), file, 'truncated');
  });

  it('broken sharded index: bad JSON, no weight_map, missing shard, missing tensor, path outside the directory', async () => {
    const dir = copyStories(['config.json']);
    const index = path.join(dir, 'model.safetensors.index.json');
    writeFileSync(index, '{"weight_map": ');
    expectOneLine(await loadError(dir), `model.safetensors.index.json in ${dir} is not valid JSON`);
    writeFileSync(index, '{"metadata": {}}');
    expectOneLine(await loadError(dir), 'model.safetensors.index.json', 'no "weight_map"');
    writeFileSync(index, JSON.stringify({ weight_map: { w: 'shard-1.safetensors' } }));
    expectOneLine(await loadError(dir), path.join(dir, 'shard-1.safetensors'), 'ENOENT');
    writeFileSync(path.join(dir, 'shard-1.safetensors'), serializeSafetensors({ other: { shape: [1], data: new Float32Array(1) } }));
    expectOneLine(await loadError(dir), 'maps tensor "w" to shard-1.safetensors, which does not contain it');
    writeFileSync(index, JSON.stringify({ weight_map: { w: '../elsewhere.safetensors' } }));
    expectOneLine(await loadError(dir), 'model.safetensors.index.json', '"../elsewhere.safetensors"', 'not a file name');
  });

  it('corrupt tokenizer.json and tokenizer_config.json', async () => {
    const dir = copyStories();
    writeFileSync(path.join(dir, 'tokenizer_config.json'), '{"bos_token": ');
    expectOneLine(await loadError(dir), path.join(dir, 'tokenizer_config.json'), 'not valid JSON');
    copyFileSync(path.join(STORIES_HF, 'tokenizer_config.json'), path.join(dir, 'tokenizer_config.json'));
    writeFileSync(path.join(dir, 'tokenizer.json'), 'not json at all');
    expectOneLine(await loadError(dir), path.join(dir, 'tokenizer.json'), 'not valid JSON');
  });
});

describe.skipIf(!existsSync(FIXTURES))('modelFingerprint', () => {
  it('is the same for identical copies and changes with config.json, any weight byte or the tokenizer, not with tokenizer_config.json', async () => {
    const base = await modelFingerprint(STORIES_HF);
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    const copy = copyStories();
    expect(await modelFingerprint(copy)).toBe(base);

    writeFileSync(path.join(copy, 'tokenizer_config.json'), '{}');
    expect(await modelFingerprint(copy)).toBe(base);
    const otherTokenizer = copyStories();
    const tok = readFileSync(path.join(otherTokenizer, 'tokenizer.json'), 'utf8');
    writeFileSync(path.join(otherTokenizer, 'tokenizer.json'), tok.replace('"<unk>"', '"<UNK>"'));
    expect(readFileSync(path.join(otherTokenizer, 'tokenizer.json'), 'utf8')).not.toBe(tok);
    expect(await modelFingerprint(otherTokenizer)).not.toBe(base);

    const weights = readFileSync(path.join(copy, 'model.safetensors'));
    weights[weights.length - 1] ^= 1;
    writeFileSync(path.join(copy, 'model.safetensors'), weights);
    const flipped = await modelFingerprint(copy);
    expect(flipped).not.toBe(base);

    const other = copyStories();
    const cfg = readFileSync(path.join(other, 'config.json'), 'utf8');
    const changed = cfg.replace('"rope_theta": 10000.0', '"rope_theta": 500000.0');
    expect(changed).not.toBe(cfg);
    writeFileSync(path.join(other, 'config.json'), changed);
    const changedConfig = await modelFingerprint(other);
    expect(changedConfig).not.toBe(base);
    expect(changedConfig).not.toBe(flipped);
    expect(await modelFingerprint(GPT2)).not.toBe(base);
  });

  it('is sha256 over (name, NUL, u64 LE size, bytes) of config.json, model.safetensors, then tokenizer.json', async () => {
    const hash = createHash('sha256');
    for (const name of ['config.json', 'model.safetensors', 'tokenizer.json']) {
      const bytes = readFileSync(path.join(STORIES_HF, name));
      const size = Buffer.alloc(8);
      size.writeBigUInt64LE(BigInt(bytes.length));
      hash.update(Buffer.concat([Buffer.from(name + '\0'), size, bytes]));
    }
    expect(await modelFingerprint(STORIES_HF)).toBe(hash.digest('hex'));
  });

  it('fails with one-line errors when the weights or config.json are missing', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hfdir-empty-'));
    mkdirSync(path.join(dir, 'sub'));
    await expect(modelFingerprint(path.join(dir, 'sub'))).rejects.toThrow(/^no model\.safetensors or model\.safetensors\.index\.json in [^\n]*sub$/);
    copyFileSync(path.join(STORIES_HF, 'model.safetensors'), path.join(dir, 'sub', 'model.safetensors'));
    await expect(modelFingerprint(path.join(dir, 'sub'))).rejects.toThrow(/^cannot read [^\n]*config\.json: ENOENT/);
  });
});
