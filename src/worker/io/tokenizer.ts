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
