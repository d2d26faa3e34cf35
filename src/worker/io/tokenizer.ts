// Thin wrapper over @huggingface/tokenizers (pure JS, reads the HF tokenizer.json format), so the
// rest of the code sees plain number[] ids and resolved special-token ids, not the library's API.
import { readFile } from 'node:fs/promises';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

// Tried, in order, when tokenizer_config.json does not name the token (or is absent).
const BOS_NAMES = ['<s>', '<|begin_of_text|>', '<bos>', '<|startoftext|>'];
const EOS_NAMES = ['</s>', '<|end_of_text|>', '<|endoftext|>', '<eos>'];
const PAD_NAMES = ['<pad>', '<|pad|>', '[PAD]'];

export interface EncodeOptions {
  /** Add the tokens the tokenizer's post-processor adds (e.g. BOS for Llama). Default true. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (BOS, EOS, pad, ...) from the text. Default false. */
  skipSpecialTokens?: boolean;
}

export class Tokenizer {
  /** One more than the largest id, i.e. the number of embedding rows the ids need. */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Falls back to eosId: padded positions are masked out, so any valid id will do. */
  readonly padId: number | null;
  #tok: HfTokenizer;

  /** tokenizerJson: parsed tokenizer.json; tokenizerConfig: parsed tokenizer_config.json, if any. */
  constructor(tokenizerJson: object, tokenizerConfig: Record<string, unknown> = {}) {
    this.#tok = new HfTokenizer(tokenizerJson, tokenizerConfig);
    let max = -1;
    for (const id of this.#tok.get_vocab(true).values()) max = Math.max(max, id);
    this.vocabSize = max + 1;
    // Only special added tokens qualify for the name fallbacks: a plain vocabulary entry spelled
    // "<s>" in some other tokenizer is ordinary text.
    const special = new Set<string>();
    for (const t of this.#tok.get_added_tokens_decoder().values()) if (t.special) special.add(t.content);
    const resolve = (key: string, names: string[]): number | null => {
      const named = tokenName(tokenizerConfig[key]);
      if (named !== null) {
        const id = this.#tok.token_to_id(named);
        if (id === undefined) throw new Error(`tokenizer_config.json names ${key} "${named}", which is not in the vocabulary`);
        return id;
      }
      const found = names.find((n) => special.has(n));
      return found === undefined ? null : (this.#tok.token_to_id(found) ?? null);
    };
    this.bosId = resolve('bos_token', BOS_NAMES);
    this.eosId = resolve('eos_token', EOS_NAMES);
    this.padId = resolve('pad_token', PAD_NAMES) ?? this.eosId;
  }

  /** Reads tokenizer.json (and tokenizer_config.json when given); errors name the file. */
  static async fromFiles(tokenizerJsonPath: string, tokenizerConfigPath?: string): Promise<Tokenizer> {
    const json = await readJsonObject(tokenizerJsonPath);
    const config = tokenizerConfigPath === undefined ? {} : await readJsonObject(tokenizerConfigPath);
    try {
      return new Tokenizer(json, config);
    } catch (err) {
      throw new Error(`${tokenizerJsonPath}: cannot build the tokenizer: ${oneLine((err as Error).message)}`);
    }
  }

  /**
   * A legacy GPT-2 directory's byte-level BPE (vocab.json + merges.txt, no tokenizer.json), built as
   * the tokenizer.json that transformers' GPT2 converter writes for it: ByteLevel pre-tokenizer (GPT-2's
   * regex), BPE model, ByteLevel decoder, and the special tokens the configs name as added tokens.
   * configPaths: tokenizer_config.json and special_tokens_map.json where present (the first wins).
   */
  static async fromBpeFiles(vocabPath: string, mergesPath: string, configPaths: string[] = []): Promise<Tokenizer> {
    const vocab = await readJsonObject(vocabPath);
    for (const [token, id] of Object.entries(vocab))
      if (!Number.isInteger(id) || (id as number) < 0) throw new Error(`${vocabPath}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, not a non-negative integer`);
    let text: string;
    try {
      text = await readFile(mergesPath, 'utf8');
    } catch (err) {
      throw new Error(`cannot read ${mergesPath}: ${oneLine((err as Error).message)}`);
    }
    const merges: [string, string][] = [];
    text.split('\n').forEach((line, i) => {
      if (line === '' || (i === 0 && line.startsWith('#version'))) return;
      const pair = line.split(' ');
      if (pair.length !== 2) throw new Error(`${mergesPath}: line ${i + 1} is not two tokens separated by one space`);
      merges.push(pair as [string, string]);
    });
    const configs = await Promise.all(configPaths.map((f) => readJsonObject(f)));
    // transformers' GPT2Tokenizer defaults: <|endoftext|> is BOS, EOS and UNK unless the configs say otherwise
    const eot = '<|endoftext|>';
    const defaults = eot in vocab ? { bos_token: eot, eos_token: eot, unk_token: eot } : {};
    const config: Record<string, unknown> = Object.assign(defaults, ...configs.reverse());
    if (config.add_bos_token === true) throw new Error(`${configPaths[0]}: add_bos_token is not supported without a tokenizer.json`);
    const prefixSpace = config.add_prefix_space === true;
    const specials = new Set(['bos_token', 'eos_token', 'unk_token', 'pad_token'].map((k) => tokenName(config[k])).filter((n): n is string => n !== null));
    const addedTokens = [...specials].map((content) => {
      const id = vocab[content];
      if (id === undefined) throw new Error(`${vocabPath} lacks the special token ${JSON.stringify(content)} that the tokenizer configuration names`);
      return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true };
    });
    const byteLevel = (trimOffsets: boolean) => ({ type: 'ByteLevel', add_prefix_space: prefixSpace, trim_offsets: trimOffsets, use_regex: true });
    const json = {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: addedTokens,
      normalizer: null,
      pre_tokenizer: byteLevel(true),
      post_processor: byteLevel(false),
      decoder: byteLevel(true),
      model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: '', end_of_word_suffix: '', fuse_unk: false, byte_fallback: false, vocab, merges },
    };
    try {
      return new Tokenizer(json, config);
    } catch (err) {
      throw new Error(`${vocabPath} + ${mergesPath}: cannot build the tokenizer: ${oneLine((err as Error).message)}`);
    }
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.#tok.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: number[], opts: DecodeOptions = {}): string {
    return this.#tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }
}

// tokenizer_config.json writes special tokens either as a string or as an AddedToken object.
function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && v !== null && typeof (v as { content?: unknown }).content === 'string') {
    return (v as { content: string }).content;
  }
  return null;
}

async function readJsonObject(file: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read ${file}: ${oneLine((err as Error).message)}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file} is not valid JSON: ${oneLine((err as Error).message)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file} is not a JSON object`);
  return value as Record<string, unknown>;
}

const oneLine = (s: string): string => s.replace(/\s+/g, ' ').trim();
