// Export of a committed round from a peer's data directory:
// - the PEFT adapter (adapter_config.json + adapter_model.safetensors, see peft.ts), or
// - a merged, full Hugging Face checkpoint: W' = W + (α/r)·B·A folded into every adapted base
//   weight, the task head under its Hugging Face name, config.json (architectures, labels) and
//   the base model's tokenizer files, loadable without PEFT.
//
// Layouts: lora_A is [r, in], lora_B is [out, r], so B·A is [out, in]. nn.Linear (Llama, BERT)
// stores its weight as [out, in]: the delta adds as it is. GPT-2's Conv1D stores [in, out]: the
// delta adds transposed, (B·A)ᵀ.
//
// The output is written to a staging folder beside the destination and renamed into place at the
// end, so a failed or cancelled export leaves nothing half-written. Failures are one-line Errors.
import { access, copyFile, mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { exportPeftAdapter, type AdapterInfo } from './peft.ts';
import { parseCheckpoint } from '../federation/checkpoint.ts';
import { localConfigSchema } from '../federation/peer.ts';
import { openDataDir, storageError, type DataDir } from '../storage/data_dir.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { ModelSpec } from '../../shared/worker_protocol.ts';
import type { TensorSpec, Weights } from '../../shared/units.ts';
import { writeSafetensorsFile, type TensorToWrite } from '../../worker/io/safetensors.ts';
import { loadHfDir, type HfDir } from '../../worker/io/hf_dir.ts';
import { createModel, familyOf } from '../../worker/models/index.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';
import { backendInfo, initBackend } from '../../worker/backend.ts';
import type { LoraConfig } from '../../worker/models/lora.ts';
import type { Family, TensorMap } from '../../worker/models/model.ts';

export type Progress = (fraction: number, stage: string) => void;

/** What the adapter of a federation looks like; a running peer knows it (Peer.modelInfo()). */
export interface AdapterShape {
  family: Family;
  lora: LoraConfig;
  specs: TensorSpec[];
  /** label names (classification); empty for causal LM */
  labels: string[];
}

export interface ExportOptions {
  /** The peer's data directory (a path, or one already open). */
  dataDir: string | DataDir;
  /** A committed round (default: the newest). */
  round?: number;
  /** Destination folder (default: DATA_DIR/exports/<adapter|merged>-round-N-<time>); must not exist or be empty. */
  out?: string;
  /** Write a full merged checkpoint instead of the PEFT adapter. */
  merged?: boolean;
  /** The adapter's shape when known (a running peer): spares loading the model for a PEFT export. */
  shape?: AdapterShape;
  /** Label names (default: the running peer's, else read from this peer's data, else LABEL_i). */
  labels?: string[];
  /** 0..1 with a short stage line. */
  onProgress?: Progress;
  signal?: AbortSignal;
}

export interface ExportResult {
  round: number;
  merged: boolean;
  dir: string;
  files: string[];
  family: Family;
  task: 'classification' | 'causal-lm';
}

/** Thrown when the AbortSignal fires; its message is one line. */
export class ExportCancelled extends Error {
  override name = 'ExportCancelled';
  constructor() {
    super('export cancelled');
  }
}

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 400);

/** The Hugging Face head module of each family, and the tensors the task head consists of. */
const HEAD_TENSORS: Record<Family, string[]> = { gpt2: ['score.weight'], llama: ['score.weight'], bert: ['classifier.weight', 'classifier.bias'] };

/**
 * The round to export: `round` when it is committed, else the newest; throws a one-line reason
 * (no data directory, no federation, nothing committed, round not committed).
 */
export async function resolveRound(dir: DataDir, round?: number): Promise<number> {
  const list = await dir.listCheckpoints();
  if (list.length === 0) throw new Error('no round has been committed yet');
  const r = round ?? list.at(-1)!.round;
  if (!list.some((c) => c.round === r)) throw new Error(`round ${r} is not committed here (committed: ${summarise(list.map((c) => c.round))})`);
  return r;
}

function summarise(rounds: number[]): string {
  return rounds.length <= 8 ? rounds.join(', ') : `${rounds.slice(0, 3).join(', ')}, …, ${rounds.slice(-3).join(', ')}`;
}

async function openExisting(d: string | DataDir): Promise<DataDir> {
  if (typeof d !== 'string') return d;
  try {
    if (!(await stat(d)).isDirectory()) throw new Error();
  } catch {
    throw new Error(`no data directory at ${d}`);
  }
  return openDataDir(d);
}

/** Export a committed round's adapter (PEFT) or the merged model; see the file's header. */
export async function exportRound(o: ExportOptions): Promise<ExportResult> {
  const progress: Progress = o.onProgress ?? (() => {});
  const check = () => {
    if (o.signal?.aborted) throw new ExportCancelled();
  };
  check();
  const dir = await openExisting(o.dataDir);
  const fed = await dir.readFederation();
  if (fed === null) throw new Error(`${dir.root} belongs to no federation; create or join one first`);
  const settings = fed.settings;
  if (settings.modelSpec === undefined) throw new Error('the federation settings carry no model');
  const spec = ModelSpec.parse(settings.modelSpec);
  const round = await resolveRound(dir, o.round);
  const merged = o.merged ?? false;
  const out = path.resolve(o.out ?? dir.exportPath(`${merged ? 'merged' : 'adapter'}-round-${round}-${new Date().toISOString().replace(/[:.]/g, '-')}`));
  await checkDestination(out);

  progress(0.02, `reading the checkpoint of round ${round}`);
  const { bytes } = await dir.readCheckpoint(round);
  check();

  // The model: only needed for a merge, or to learn the adapter's shapes when no running peer told them.
  let hf: HfDir | null = null;
  let shape = o.shape ?? null;
  if (merged || shape === null) {
    progress(0.05, `loading the base model ${spec.model}`);
    hf = await loadHfDir(resolveModelDir(spec.model));
    check();
    progress(merged ? 0.2 : 0.5, 'building the adapter layout');
    if (shape === null) shape = await shapeOf(hf, spec, bytes, o.labels ?? (await labelsOfPeer(dir)), round);
  }
  check();
  let cp;
  try {
    cp = parseCheckpoint(bytes, shape.specs);
  } catch (e) {
    throw new Error(`round ${round}: ${oneLine(e)} (corrupt checkpoint, or another model than ${spec.model})`);
  }
  const labels = o.labels && o.labels.length === numLabelsOf(shape) ? o.labels : shape.labels;
  const task = shape.specs.some((s) => HEAD_TENSORS[shape.family].includes(s.name)) ? 'classification' : 'causal-lm';

  const stage = path.join(path.dirname(out), `.${path.basename(out)}.partial-${randomBytes(4).toString('hex')}`);
  try {
    await mkdir(stage, { recursive: true });
  } catch (e) {
    throw storageError(e, 'create', stage);
  }
  try {
    let names: string[];
    if (!merged) {
      progress(0.7, 'writing adapter_model.safetensors');
      const info: AdapterInfo = {
        family: shape.family,
        task,
        r: shape.lora.r,
        alpha: shape.lora.alpha,
        dropout: shape.lora.dropout,
        targetModules: shape.lora.targetModules,
        baseModel: resolveModelDir(spec.model),
        ...(task === 'classification' ? { labels } : {}),
      };
      names = (await exportPeftAdapter(stage, info, shape.specs, cp.globals)).map((f) => path.basename(f));
    } else {
      names = await writeMerged(stage, hf!, shape, cp.globals, labels, task, (f, s) => progress(0.2 + 0.75 * f, s), check);
    }
    check();
    progress(0.97, `moving into ${out}`);
    await rm(out, { recursive: true, force: true }).catch(() => {}); // an empty folder we checked
    await rename(stage, out);
    progress(1, `exported round ${round}`);
    return { round, merged, dir: out, files: names.map((n) => path.join(out, n)), family: shape.family, task };
  } catch (e) {
    await rm(stage, { recursive: true, force: true }).catch(() => {});
    if (e instanceof ExportCancelled) throw e;
    if ((e as { code?: string }).code !== undefined) throw storageError(e, 'write', out);
    throw e;
  }
}

/** The destination must be absent or an empty folder, and its parent creatable and writable. */
async function checkDestination(out: string): Promise<void> {
  let entries: string[] | null = null;
  try {
    if (!(await stat(out)).isDirectory()) throw new Error(`${out} exists and is not a folder`);
    entries = await readdir(out);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === undefined) throw e;
    if (code !== 'ENOENT') throw storageError(e, 'create', out);
  }
  if (entries !== null && entries.length > 0) throw new Error(`${out} already exists and is not empty`);
  const parent = path.dirname(out);
  try {
    await mkdir(parent, { recursive: true });
    await access(parent, constants.W_OK);
  } catch (e) {
    throw storageError(e, 'create', out);
  }
}

function numLabelsOf(shape: AdapterShape): number {
  const head = shape.specs.find((s) => s.name === HEAD_TENSORS[shape.family][0]);
  return head ? head.shape[0]! : 0;
}

/** Label names of this peer's data (its peer.json), or [] when they cannot be read. */
async function labelsOfPeer(dir: DataDir): Promise<string[]> {
  try {
    const local = localConfigSchema.parse(JSON.parse(await readFile(path.join(dir.root, 'peer.json'), 'utf8')));
    const { loadDataset } = await import('../../worker/data/task_data.ts');
    return (await loadDataset(local.data.source)).labels;
  } catch {
    return [];
  }
}

/**
 * The adapter's tensor specs, as the worker built them: the task is classification when the
 * checkpoint has a head tensor, with as many labels as the head has rows.
 */
async function shapeOf(hf: HfDir, spec: ModelSpec, checkpoint: Uint8Array, labels: string[], round: number): Promise<AdapterShape> {
  const family = familyOf(hf.config);
  const { parseSafetensors } = await import('../../worker/io/safetensors.ts');
  let head: number | null = null;
  try {
    const t = parseSafetensors(checkpoint, 'checkpoint').tensors.get(HEAD_TENSORS[family][0]!);
    if (t) head = t.data.length;
  } catch (e) {
    throw new Error(`round ${round}: the checkpoint is corrupt: ${oneLine(e)}`);
  }
  const hidden = Number(hf.config.n_embd ?? hf.config.hidden_size);
  let task: { kind: 'causal-lm' } | { kind: 'classification'; numLabels: number } = { kind: 'causal-lm' };
  if (head !== null) {
    const numLabels = head / hidden;
    if (!Number.isInteger(numLabels) || numLabels < 1)
      throw new Error(`round ${round}: the checkpoint's head has ${head} values, not a multiple of the hidden size ${hidden} (corrupt checkpoint, or another model than ${spec.model})`);
    task = { kind: 'classification', numLabels };
  }
  // createModel makes (CPU) tensors of the base weights: a backend must be up in this thread
  if (backendInfo() === null) await initBackend('cpu');
  const model = createModel(hf.config, hf.tensors as TensorMap, task, spec.lora);
  try {
    const n = task.kind === 'classification' ? task.numLabels : 0;
    return {
      family: model.family,
      lora: { ...model.lora },
      specs: model.trainable.map((s) => ({ name: s.name, shape: s.shape })),
      labels: labels.length === n ? labels : Array.from({ length: n }, (_, i) => `LABEL_${i}`),
    };
  } finally {
    model.dispose();
  }
}

const ARCHITECTURES: Record<string, { cls: string; lm: string }> = {
  gpt2: { cls: 'GPT2ForSequenceClassification', lm: 'GPT2LMHeadModel' },
  llama: { cls: 'LlamaForSequenceClassification', lm: 'LlamaForCausalLM' },
  mistral: { cls: 'MistralForSequenceClassification', lm: 'MistralForCausalLM' },
  bert: { cls: 'BertForSequenceClassification', lm: 'BertForMaskedLM' },
  roberta: { cls: 'RobertaForSequenceClassification', lm: 'RobertaForMaskedLM' },
};

/** Tokenizer and generation files copied from the base model when present. */
const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'added_tokens.json',
  'vocab.json',
  'merges.txt',
  'vocab.txt',
  'tokenizer.model',
  'generation_config.json',
];

/**
 * The prefix under which a ForSequenceClassification / ForCausalLM model keeps the base model's
 * weights, and the prefix the loaded checkpoint used (GPT2Model / BertModel checkpoints have none).
 */
function prefixes(family: Family, config: Record<string, unknown>, tensors: Map<string, unknown>): { want: string; have: string } {
  if (family === 'gpt2') return { want: 'transformer.', have: tensors.has('transformer.wte.weight') ? 'transformer.' : '' };
  if (family === 'bert') {
    const have = ['bert.', 'roberta.', ''].find((p) => tensors.has(`${p}embeddings.word_embeddings.weight`)) ?? '';
    return { want: have === '' ? `${String(config.model_type ?? 'bert')}.` : have, have };
  }
  return { want: '', have: '' };
}

/** Writes the merged checkpoint into `dir`; returns the file names written. */
async function writeMerged(
  dir: string,
  hf: HfDir,
  shape: AdapterShape,
  globals: Weights,
  labels: string[],
  task: 'classification' | 'causal-lm',
  progress: Progress,
  check: () => void,
): Promise<string[]> {
  const { family, lora } = shape;
  const { want, have } = prefixes(family, hf.config, hf.tensors);
  // Base weights under the names the task model expects (a copy only where the merge changes them).
  // A checkpoint without the prefix (GPT2Model, BertModel) holds nothing but base-model weights.
  const toWant = (name: string) => (have === '' ? want + name : name.startsWith(have) ? want + name.slice(have.length) : name);
  // LoRA module names are the task model's already (GPT-2's "transformer.", BERT's "bert.").
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of hf.tensors) {
    if (task === 'classification' && (name === 'lm_head.weight' || name.startsWith('cls.'))) continue;
    // the checkpoint's own head (e.g. a ForSequenceClassification base) is replaced by the adapter's
    if (name === 'score.weight' || name.startsWith('classifier.')) continue;
    tensors.set(toWant(name), { shape: t.shape, data: t.data });
  }
  const modules = [...new Set(shape.specs.map((s) => s.name.match(/^(.*)\.lora_A\.weight$/)?.[1]).filter((m): m is string => m !== undefined))];
  const scale = lora.alpha / lora.r;
  const bySpec = new Map(shape.specs.map((s) => [s.name, s]));
  for (let mi = 0; mi < modules.length; mi++) {
    check();
    const module = modules[mi]!;
    const a = globals.get(`${module}.lora_A.weight`);
    const b = globals.get(`${module}.lora_B.weight`);
    const aSpec = bySpec.get(`${module}.lora_A.weight`);
    const bSpec = bySpec.get(`${module}.lora_B.weight`);
    if (!a || !b || !aSpec || !bSpec) throw new Error(`the adapter lacks lora_A/lora_B of ${module}`);
    const [r, inF] = aSpec.shape as [number, number];
    const outF = bSpec.shape[0]!;
    const name = `${module}.weight`;
    const base = tensors.get(name);
    if (!base) throw new Error(`the base model has no weight ${name} for the adapted module ${module}`);
    const w = new Float32Array(base.data as Float32Array); // the base model's tensors stay untouched
    // Conv1D (GPT-2) keeps [in, out]; nn.Linear keeps [out, in].
    const conv1d = family === 'gpt2';
    const expect = conv1d ? [inF, outF] : [outF, inF];
    if (base.shape.length !== 2 || base.shape[0] !== expect[0] || base.shape[1] !== expect[1])
      throw new Error(`weight ${name} has shape [${base.shape.join(', ')}], the adapter implies [${expect.join(', ')}]`);
    const row = new Float64Array(inF);
    for (let o = 0; o < outF; o++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const bk = b[o * r + k]! * scale;
        if (bk === 0) continue;
        const ak = k * inF;
        for (let i = 0; i < inF; i++) row[i]! += bk * a[ak + i]!;
      }
      if (conv1d) for (let i = 0; i < inF; i++) w[i * outF + o]! += row[i]!;
      else {
        const at = o * inF;
        for (let i = 0; i < inF; i++) w[at + i]! += row[i]!;
      }
    }
    tensors.set(name, { shape: base.shape, data: w });
    progress(((mi + 1) / Math.max(1, modules.length)) * 0.6, `merging ${module}`);
    if (mi % 8 === 7) await new Promise<void>((res) => setImmediate(res)); // let a cancel arrive
  }
  if (task === 'classification') {
    for (const n of HEAD_TENSORS[family]) {
      const s = bySpec.get(n);
      const data = globals.get(n);
      if (!s || !data) throw new Error(`the adapter has no head tensor ${n}`);
      tensors.set(n, { shape: s.shape, data });
    }
  }
  check();
  progress(0.65, 'writing model.safetensors');
  await writeSafetensorsFile(path.join(dir, 'model.safetensors'), tensors, { metadata: { format: 'pt' } });
  check();

  progress(0.95, 'writing config.json and the tokenizer');
  const type = String(hf.config.model_type ?? family);
  const arch = ARCHITECTURES[type] ?? ARCHITECTURES[family]!;
  const config: Record<string, unknown> = { ...hf.config, architectures: [task === 'classification' ? arch.cls : arch.lm], torch_dtype: 'float32' };
  if (task === 'classification') {
    config.num_labels = labels.length;
    config.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    config.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
    config.problem_type = 'single_label_classification';
    // decoder classification pools the last non-padding token: HF needs a pad id for batches
    if (family !== 'bert' && config.pad_token_id === undefined && config.eos_token_id !== undefined) config.pad_token_id = config.eos_token_id;
  }
  config.fedforward = { merged: true, lora: { r: lora.r, alpha: lora.alpha, target_modules: lora.targetModules } };
  await writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  const names = ['model.safetensors', 'config.json'];
  for (const f of TOKENIZER_FILES) {
    try {
      await copyFile(path.join(hf.dir, f), path.join(dir, f));
      names.push(f);
    } catch (e) {
      if ((e as { code?: string }).code !== 'ENOENT') throw storageError(e, 'write', path.join(dir, f));
    }
  }
  progress(1, 'written');
  return names;
}
