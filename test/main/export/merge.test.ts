// Export of a committed round: the merged checkpoint computes what base + adapter computes
// (GPT-2's Conv1D and Llama's nn.Linear layouts), the PEFT adapter's files, and the one-line
// refusals (nothing committed, unknown round, corrupt checkpoint, unwritable or busy destination,
// cancel).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from '../../../src/worker/backend.ts';
import { randomCheckpoint, type RandomShape } from '../../../src/worker/models/random.ts';
import { createModel, loadModel } from '../../../src/worker/models/index.ts';
import { plainParams, type Task } from '../../../src/worker/models/model.ts';
import { readSafetensorsFile, writeSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import { serializeCheckpoint } from '../../../src/main/federation/checkpoint.ts';
import { emptyServerState } from '../../../src/main/spry/server_optimizer.ts';
import { Peer } from '../../../src/main/federation/peer.ts';
import { exportRound, ExportCancelled } from '../../../src/main/export/merge.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';
import type { Weights } from '../../../src/shared/units.ts';

let tmp = '';
beforeAll(async () => {
  await initBackend('cpu');
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-export-'));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const LABELS = ['neg', 'neutral', 'pos'];
// The keys PEFT's LoraConfig knows (peft 0.20.1.dev0): any other makes PEFT warn of a newer version.
const PEFT_FIELDS = (JSON.parse(await readFile(path.join(path.dirname(fileURLToPath(import.meta.url)), 'peft_lora_config_fields.json'), 'utf8')) as { fields: string[] }).fields;
const TASK: Task = { kind: 'classification', numLabels: 3 };

/** A small LCG: deterministic adapter values without tf's RNG. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

/** A random HF model directory (config.json, model.safetensors, a tokenizer when the fixtures exist). */
async function baseModel(name: string, shape: RandomShape, bare = false): Promise<{ dir: string; config: Record<string, unknown>; tensors: ReturnType<typeof randomCheckpoint>['tensors'] }> {
  const dir = path.join(tmp, name);
  await mkdir(dir, { recursive: true });
  const { config, tensors: all } = randomCheckpoint(shape, 7);
  // bare: as a BertModel saves itself, without BertForSequenceClassification's "bert." prefix
  const tensors = bare ? new Map([...all].map(([k, t]) => [k.replace(/^bert\./, ''), t])) : all;
  await writeSafetensorsFile(path.join(dir, 'model.safetensors'), new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
  const tok = path.join(FIXTURES, 'gpt2-char-selftrained', 'tokenizer.json');
  if (HAS_FIXTURES && existsSync(tok)) await copyFile(tok, path.join(dir, 'tokenizer.json'));
  return { dir, config, tensors };
}

/** A peer data directory of a federation on `model` with committed rounds of random non-zero adapters. */
async function peerWithRounds(name: string, model: string, lora: { r: number; alpha: number; targetModules: string[] }, specs: { name: string; shape: number[] }[], rounds: number[]) {
  const dataDir = path.join(tmp, name);
  const data = path.join(tmp, `${name}.jsonl`);
  await writeFile(data, LABELS.map((l, i) => JSON.stringify({ text: `example ${i}`, label: l })).join('\n') + '\n');
  const peer = await Peer.open({ dataDir });
  const settings = await peer.create({
    name: 'F',
    peerName: 'org',
    model: { model, lora },
    data: { source: data, split: { kind: 'local', client: 'org' }, seed: 0, limit: 0 },
    rounds: 5,
    minMembers: 1,
  });
  const byRound = new Map<number, Weights>();
  for (const round of rounds) {
    const next = rng(round * 101 + name.length);
    const globals: Weights = new Map(specs.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => 0.4 * next())]));
    await peer.dir.commitCheckpoint(round, serializeCheckpoint({ round, globals, server: emptyServerState() }, settings.federationId));
    byRound.set(round, globals);
  }
  return { dataDir, peer, byRound };
}

function batch(vocab: number) {
  const ids = tf.tensor2d([[3, 9, 4, 1, 7, 2], [5, 8, 11, 0, 0, 0]].map((r) => r.map((v) => v % vocab)), [2, 6], 'int32');
  const mask = tf.tensor2d([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]], [2, 6], 'int32');
  return { ids, mask };
}

async function checkMerged(family: 'gpt2' | 'llama' | 'bert', shape: RandomShape, targets: string[], bare = false) {
  const name = `${family}${bare ? '-bare' : ''}`;
  const base = await baseModel(`${name}-base`, shape, bare);
  const lora = { r: 2, alpha: 5, targetModules: targets };
  const ref = createModel(base.config, base.tensors, TASK, lora);
  const specs = ref.trainable.map((s) => ({ name: s.name, shape: s.shape }));
  expect(specs.filter((s) => s.name.includes('.lora_')).length).toBeGreaterThanOrEqual(2 * targets.length);
  const { dataDir, byRound } = await peerWithRounds(`${name}-peer`, base.dir, lora, specs, [1, 2]);
  const out = path.join(tmp, `${name}-merged`);
  const fractions: number[] = [];
  const r = await exportRound({ dataDir, round: 1, out, merged: true, onProgress: (f) => fractions.push(f) });
  expect(r).toMatchObject({ round: 1, merged: true, dir: out, family, task: 'classification' });
  expect(fractions.at(-1)).toBe(1);
  expect(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]!))).toBe(true);

  // config.json: the classification architecture and the labels
  const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
  expect(config.architectures).toEqual([{ gpt2: 'GPT2ForSequenceClassification', llama: 'LlamaForSequenceClassification', bert: 'BertForSequenceClassification' }[family]]);
  expect(config.num_labels).toBe(3);
  expect(config.id2label).toEqual({ 0: 'neg', 1: 'neutral', 2: 'pos' });
  expect(existsSync(path.join(out, 'tokenizer.json'))).toBe(existsSync(path.join(base.dir, 'tokenizer.json')));
  const saved = await readSafetensorsFile(path.join(out, 'model.safetensors'));
  expect([...saved.tensors.keys()].some((k) => k.includes('lora_'))).toBe(false);
  const headNames = family === 'bert' ? ['classifier.weight', 'classifier.bias'] : ['score.weight'];
  const heads = headNames.map((n) => saved.tensors.get(n)!);
  expect(heads[0]!.shape).toEqual([3, shape.hidden]);
  if (family === 'bert') expect([...saved.tensors.keys()].filter((k) => !k.startsWith('classifier.')).every((k) => k.startsWith('bert.'))).toBe(true);

  // base + adapter (round 1) vs. the merged model with no adapter, on the same batch
  const globals = byRound.get(1)!;
  const adapter = new Map(specs.map((s) => [s.name, tf.tensor(globals.get(s.name)!, s.shape)]));
  const b = batch(shape.vocab);
  const want = ref.forward(b, plainParams(adapter), null).p;
  const merged = await loadModel(out, TASK, { targetModules: [] });
  expect(merged.model.trainable.map((s) => s.name)).toEqual(headNames);
  const head = new Map(headNames.map((n, i) => [n, tf.tensor(heads[i]!.data as Float32Array, heads[i]!.shape)]));
  const got = merged.model.forward(b, plainParams(head), null).p;
  const diff = tf.max(tf.abs(tf.sub(want, got))).dataSync()[0]!;
  const scaleOf = tf.max(tf.abs(want)).dataSync()[0]!;
  expect(diff).toBeLessThan(1e-4);
  // the adapter matters: the base model alone computes something else
  const plain = createModel(base.config, base.tensors, TASK, { targetModules: [] });
  const without = plain.forward(b, plainParams(head), null).p;
  expect(tf.max(tf.abs(tf.sub(want, without))).dataSync()[0]!).toBeGreaterThan(100 * diff + 1e-5);
  expect(scaleOf).toBeGreaterThan(0);
  tf.dispose([want, got, without, b.ids, b.mask, ...adapter.values(), ...head.values()]);
  ref.dispose();
  plain.dispose();
  merged.model.dispose();
  return { dataDir, specs, base };
}

describe('merged export', () => {
  it('GPT-2 (Conv1D, [in, out]): merged logits equal base + adapter logits', async () => {
    await checkMerged('gpt2', { family: 'gpt2', layers: 2, hidden: 16, heads: 2, vocab: 40, positions: 16, intermediate: 24 }, ['c_attn', 'c_proj', 'c_fc']);
  });

  it('Llama (nn.Linear, [out, in]): merged logits equal base + adapter logits', async () => {
    await checkMerged('llama', { family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, vocab: 40, positions: 16, intermediate: 24 }, ['q_proj', 'v_proj', 'down_proj']);
  });

  it('BERT (nn.Linear, "bert." prefix, classifier weight and bias): merged logits equal base + adapter logits', async () => {
    await checkMerged('bert', { family: 'bert', layers: 2, hidden: 16, heads: 2, vocab: 40, positions: 16, intermediate: 24 }, ['query', 'value', 'dense']);
  });

  it('BERT from a bare BertModel checkpoint (no prefix): merged and PEFT adapter under BertForSequenceClassification\'s "bert." names', async () => {
    const { dataDir } = await checkMerged('bert', { family: 'bert', layers: 2, hidden: 16, heads: 2, vocab: 40, positions: 16, intermediate: 24 }, ['query', 'value'], true);
    const r = await exportRound({ dataDir, round: 1 });
    const names = [...(await readSafetensorsFile(path.join(r.dir, 'adapter_model.safetensors'))).tensors.keys()].filter((k) => k.includes('lora_'));
    expect(names.length).toBe(8);
    for (const n of names) expect(n).toMatch(/^base_model\.model\.bert\.encoder\.layer\.[01]\.attention\.self\.(query|value)\.lora_[AB]\.weight$/);
  });
});

describe('PEFT adapter export', () => {
  it('writes adapter_config.json and PEFT tensor names and shapes; the newest round by default', async () => {
    for (const [family, shape, targets] of [
      ['gpt2', { family: 'gpt2', layers: 1, hidden: 8, heads: 2, vocab: 20, positions: 8, intermediate: 12 }, ['c_attn', 'c_fc']],
      ['llama', { family: 'llama', layers: 1, hidden: 8, heads: 2, kvHeads: 1, vocab: 20, positions: 8, intermediate: 12 }, ['q_proj', 'v_proj']],
    ] as const) {
      const base = await baseModel(`${family}-peft-base`, shape);
      const lora = { r: 3, alpha: 6, targetModules: [...targets] };
      const specs = createModel(base.config, base.tensors, TASK, lora).trainable.map((s) => ({ name: s.name, shape: s.shape }));
      const { dataDir, byRound } = await peerWithRounds(`${family}-peft-peer`, base.dir, lora, specs, [1, 2, 3]);
      const r = await exportRound({ dataDir });
      expect(r.round).toBe(3);
      expect(r.dir.startsWith(path.join(dataDir, 'exports'))).toBe(true);
      expect(r.files.map((f) => path.basename(f)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'fedforward.json']);
      const cfg = JSON.parse(await readFile(path.join(r.dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      const adapted = specs.filter((s) => s.name.endsWith('.lora_A.weight')).map((s) => s.name.slice(0, -'.lora_A.weight'.length));
      // the full name of every adapted module, and the base model as a path AutoPeftModel can open
      expect(cfg).toMatchObject({ peft_type: 'LORA', r: 3, lora_alpha: 6, target_modules: adapted, fan_in_fan_out: family === 'gpt2', task_type: 'SEQ_CLS', base_model_name_or_path: base.dir });
      expect(cfg.modules_to_save).toEqual(['score']);
      for (const key of Object.keys(cfg)) expect(PEFT_FIELDS).toContain(key);
      const meta = JSON.parse(await readFile(path.join(r.dir, 'fedforward.json'), 'utf8')) as Record<string, unknown>;
      expect(meta).toEqual({ family, task: 'classification', target_modules: [...targets], labels: LABELS });
      const st = await readSafetensorsFile(path.join(r.dir, 'adapter_model.safetensors'));
      const loraNames = [...st.tensors.keys()].filter((k) => k.includes('lora_'));
      expect(loraNames.length).toBe(2 * targets.length * shape.layers);
      for (const name of loraNames) {
        expect(name).toMatch(/^base_model\.model\.(transformer\.h|model\.layers)\.0\..+\.lora_[AB]\.weight$/);
        const spec = specs.find((s) => `base_model.model.${s.name}` === name)!;
        const t = st.tensors.get(name)!;
        expect(t.shape).toEqual(spec.shape);
        expect(Array.from(t.data)).toEqual(Array.from(byRound.get(3)!.get(spec.name)!));
        const [inF, outF] = family === 'gpt2' ? [shape.hidden, name.includes('c_attn') ? 3 * shape.hidden : shape.intermediate!] : [shape.hidden, name.includes('v_proj') ? shape.hidden / 2 : shape.hidden];
        expect(t.shape).toEqual(name.includes('lora_A') ? [3, inF] : [outF, 3]);
      }
      expect(st.tensors.get('base_model.model.score.weight')!.shape).toEqual([3, shape.hidden]);
    }
  });
});

describe('export refusals', () => {
  const shape: RandomShape = { family: 'gpt2', layers: 1, hidden: 8, heads: 2, vocab: 20, positions: 8, intermediate: 12 };
  const lora = { r: 1, alpha: 1, targetModules: ['c_attn'] };
  let specs: { name: string; shape: number[] }[] = [];
  let model = '';
  beforeAll(async () => {
    const base = await baseModel('refusal-base', shape);
    model = base.dir;
    specs = createModel(base.config, base.tensors, TASK, lora).trainable.map((s) => ({ name: s.name, shape: s.shape }));
  });

  it('no data directory, no federation, nothing committed, an unknown round', async () => {
    await expect(exportRound({ dataDir: path.join(tmp, 'nowhere') })).rejects.toThrow(/^no data directory at /);
    const empty = path.join(tmp, 'empty-peer');
    await Peer.open({ dataDir: empty });
    await expect(exportRound({ dataDir: empty })).rejects.toThrow(/belongs to no federation/);
    const { dataDir } = await peerWithRounds('none-committed', model, lora, specs, []);
    await expect(exportRound({ dataDir })).rejects.toThrow(/^no round has been committed yet$/);
    const two = await peerWithRounds('two-rounds', model, lora, specs, [1, 2]);
    await expect(exportRound({ dataDir: two.dataDir, round: 7 })).rejects.toThrow(/^round 7 is not committed here \(committed: 1, 2\)$/);
  });

  it('a corrupt checkpoint, or one of another model', async () => {
    const { dataDir, peer } = await peerWithRounds('corrupt', model, lora, specs, [1, 2]);
    const file = peer.dir.checkpointPath(2);
    const bytes = await readFile(file);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(file, bytes);
    await expect(exportRound({ dataDir, round: 2 })).rejects.toThrow(/^checkpoint of round 2 is missing or corrupt/);
    // round 1 written for a bigger adapter than this model has
    const other = await peerWithRounds('other-model', model, lora, specs.map((s) => (s.name.includes('lora_') ? { ...s, shape: s.shape.map((d) => d + 1) } : s)), [1]);
    await expect(exportRound({ dataDir: other.dataDir, merged: true })).rejects.toThrow(/^round 1: checkpoint: tensor .* does not match the model's adapter \(corrupt checkpoint/);
  });

  it('an unwritable or non-empty destination; nothing is left behind', async () => {
    const { dataDir } = await peerWithRounds('dest', model, lora, specs, [1]);
    const file = path.join(tmp, 'a-file');
    await writeFile(file, 'x');
    await expect(exportRound({ dataDir, out: path.join(file, 'out') })).rejects.toThrow(/^cannot create .*a-file\/out: a parent path is not a directory$/);
    const busy = path.join(tmp, 'busy');
    await mkdir(busy);
    await writeFile(path.join(busy, 'keep.txt'), 'x');
    await expect(exportRound({ dataDir, out: busy, merged: true })).rejects.toThrow(/busy already exists and is not empty$/);
    expect(await readdir(busy)).toEqual(['keep.txt']);
  });

  it('cancels through the AbortSignal, before or during the merge, leaving no files', async () => {
    const { dataDir } = await peerWithRounds('cancel', model, lora, specs, [1]);
    const before = new AbortController();
    before.abort();
    await expect(exportRound({ dataDir, merged: true, signal: before.signal })).rejects.toBeInstanceOf(ExportCancelled);
    const during = new AbortController();
    const out = path.join(tmp, 'cancel-out');
    const p = exportRound({ dataDir, out, merged: true, signal: during.signal, onProgress: (f) => f >= 0.2 && during.abort() });
    await expect(p).rejects.toThrow(/^export cancelled$/);
    expect(existsSync(out)).toBe(false);
    expect((await readdir(tmp)).filter((n) => n.includes('partial'))).toEqual([]);
  });
});
