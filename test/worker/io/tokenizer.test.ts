import { describe, it, expect } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { FIXTURES } from '../../fixtures.ts';
import { Tokenizer } from '../../../src/worker/io/tokenizer.ts';

const STORIES_HF = path.join(FIXTURES, 'stories260K', 'hf');
const GPT2 = path.join(FIXTURES, 'gpt2-char-selftrained');

describe.skipIf(!existsSync(FIXTURES))('Tokenizer on the fixture models', () => {
  it('stories260K: encode gives the published ids, decode gives the text back', async () => {
    const tok = await Tokenizer.fromFiles(path.join(STORIES_HF, 'tokenizer.json'), path.join(STORIES_HF, 'tokenizer_config.json'));
    const { tokenizer_examples: examples } = JSON.parse(readFileSync(path.join(FIXTURES, 'stories260K', 'expected.json'), 'utf8'));
    expect(examples.length).toBeGreaterThan(5);
    for (const { text, ids } of examples as { text: string; ids: number[] }[]) {
      expect(tok.encode(text), text).toEqual(ids);
      expect(tok.encode(text, { addSpecialTokens: false }), text).toEqual(ids.slice(1));
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
    }
    expect(tok.decode([1, 403, 407])).toBe('<s> Once upon'); // special tokens kept by default
    expect(tok.vocabSize).toBe(512);
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(2);
    expect(tok.padId).toBe(2); // no pad token: falls back to EOS
  });

  it('stories260K: published generations (greedy and sampled) decode to their published text', async () => {
    const tok = await Tokenizer.fromFiles(path.join(STORIES_HF, 'tokenizer.json'), path.join(STORIES_HF, 'tokenizer_config.json'));
    const expected = JSON.parse(readFileSync(path.join(FIXTURES, 'stories260K', 'expected.json'), 'utf8'));
    const texts: { ids: number[]; text: string }[] = [
      { ids: expected.golden_greedy.output_ids, text: expected.golden_greedy.output_text },
      { ids: expected.greedy_until_bos.output_ids, text: expected.greedy_until_bos.output_text },
      ...expected.sampled_run_c.runs,
    ];
    for (const { ids, text } of texts) {
      expect(text.length).toBeGreaterThan(100);
      expect(tok.decode(ids, { skipSpecialTokens: true })).toBe(text);
    }
  });

  it('gpt2-char: the reference prompt encodes to its ids and the greedy ids decode to its text', async () => {
    const tok = await Tokenizer.fromFiles(path.join(GPT2, 'tokenizer.json'));
    const ref = JSON.parse(readFileSync(path.join(GPT2, 'reference.json'), 'utf8'));
    expect(tok.encode(ref.greedy.prompt)).toEqual(ref.greedy.prompt_ids);
    expect(tok.decode(ref.greedy.output_ids)).toBe(ref.greedy.output_text);
    const sentence = 'She said, "Look!" and they laughed.\nThe end?';
    expect(tok.decode(tok.encode(sentence))).toBe(sentence);
    const vocab: Record<string, number> = JSON.parse(readFileSync(path.join(GPT2, 'vocab_chars.json'), 'utf8'));
    expect(tok.encode(sentence)).toEqual(Array.from(sentence, (c) => vocab[c]));
    expect(tok.vocabSize).toBe(61);
    // A character tokenizer without special tokens has none to report.
    expect([tok.bosId, tok.eosId, tok.padId]).toEqual([null, null, null]);
  });
});

describe('Tokenizer construction', () => {
  // A tiny word-level BPE with two special tokens, built in memory.
  const json = {
    version: '1.0',
    added_tokens: [
      { id: 0, content: '<|endoftext|>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
      { id: 1, content: '<pad>', special: true, normalized: false, lstrip: false, rstrip: false, single_word: false },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'WhitespaceSplit' },
    post_processor: null,
    decoder: { type: 'Fuse' },
    model: { type: 'BPE', vocab: { '<|endoftext|>': 0, '<pad>': 1, a: 2, b: 3, ab: 7 }, merges: [['a', 'b']], unk_token: null },
  };

  it('finds special tokens by well-known names when tokenizer_config.json is absent', () => {
    const tok = new Tokenizer(json);
    expect(tok.eosId).toBe(0);
    expect(tok.padId).toBe(1);
    expect(tok.bosId).toBe(null);
    expect(tok.vocabSize).toBe(8); // largest id + 1, not the number of entries
    expect(tok.encode('ab a')).toEqual([7, 2]);
  });

  it('tokenizer_config.json names win over the fallbacks, in string or object form', () => {
    const tok = new Tokenizer(json, { bos_token: { content: '<pad>' }, eos_token: 'ab', pad_token: null });
    expect(tok.bosId).toBe(1);
    expect(tok.eosId).toBe(7);
    expect(tok.padId).toBe(1); // no pad_token named: the "<pad>" fallback
    expect(() => new Tokenizer(json, { eos_token: '<nope>' })).toThrow('eos_token "<nope>"');
  });

  it('fromFiles: missing or corrupt files give one-line errors naming the file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tok-'));
    const missing = path.join(dir, 'tokenizer.json');
    await expect(Tokenizer.fromFiles(missing)).rejects.toThrow(/^cannot read .*tokenizer\.json: ENOENT[^\n]*$/);
    const bad = path.join(dir, 'bad.json');
    writeFileSync(bad, '{"model":\n{');
    await expect(Tokenizer.fromFiles(bad)).rejects.toThrow(/^\S*bad\.json is not valid JSON: [^\n]*$/);
    const good = path.join(dir, 'good.json');
    writeFileSync(good, JSON.stringify(json));
    const arr = path.join(dir, 'cfg.json');
    writeFileSync(arr, '[1]');
    await expect(Tokenizer.fromFiles(good, arr)).rejects.toThrow(`${arr} is not a JSON object`);
    const unsupported = path.join(dir, 'unsupported.json');
    writeFileSync(unsupported, JSON.stringify({ ...json, model: { type: 'NoSuchModel' } }));
    await expect(Tokenizer.fromFiles(unsupported)).rejects.toThrow(/^\S*unsupported\.json: cannot build the tokenizer: [^\n]*$/);
    expect((await Tokenizer.fromFiles(good)).encode('b')).toEqual([3]);
  });
});
