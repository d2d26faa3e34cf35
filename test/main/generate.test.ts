// `fedforward generate` as a user runs it: --ids --json on a checkpoint without a tokenizer against
// transformers' reference logits, and --adapter with an exported PEFT adapter, which must change the
// output of the base model and give what the merged checkpoint gives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path, { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomCheckpoint } from '../../src/worker/models/random.ts';
import { EMBEDDED_MODEL_DIR } from '../../src/worker/models/embedded.ts';
import { createModel } from '../../src/worker/models/index.ts';
import { initBackend } from '../../src/worker/backend.ts';
import { writeSafetensorsFile } from '../../src/worker/io/safetensors.ts';
import { serializeCheckpoint } from '../../src/main/federation/checkpoint.ts';
import { emptyServerState } from '../../src/main/spry/server_optimizer.ts';
import { Peer } from '../../src/main/federation/peer.ts';
import { exportRound } from '../../src/main/export/merge.ts';
import { loadHfDir } from '../../src/worker/io/hf_dir.ts';
import { plainParams } from '../../src/worker/models/model.ts';
import * as tf from '@tensorflow/tfjs';
import { FIXTURES, HAS_FIXTURES } from '../fixtures.ts';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/main/cli/index.ts');

interface Out {
  promptIds: number[];
  ids: number[];
  text: string | null;
  lastLogits: number[];
  backend: string;
}

function run(...args: string[]): Promise<{ code: number; out: Out | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, 'generate', '--backend', 'wasm', ...args], { timeout: 60_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: number }).code ?? 1) : 0;
      resolve({ code, out: code === 0 ? (JSON.parse(stdout) as Out) : null, stderr });
    });
  });
}

const maxAbs = (a: number[], b: number[]) => a.reduce((w, x, i) => Math.max(w, Math.abs(x - b[i]!)), 0);
const maxAbsOf = (a: number[]) => a.reduce((w, x) => Math.max(w, Math.abs(x)), 0);

describe.skipIf(!HAS_FIXTURES)('generate --ids --json on stories260K (no tokenizer needed)', () => {
  const dir = join(FIXTURES, 'stories260K');
  const ref = HAS_FIXTURES ? JSON.parse(readFileSync(join(dir, 'reference_logits_hf.json'), 'utf8')) : null;
  const expected = HAS_FIXTURES ? JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) : null;

  it("prints transformers' logits of the last prompt position and llama2.c's greedy ids", { timeout: 90_000 }, async () => {
    const lily = ref.lily as { input_ids: number[]; logits: number[][] };
    const golden = new Float32Array(readFileSync(join(dir, 'logits_golden_f32le.bin')).buffer.slice(0));
    const want: number[] = expected.test_all_py.output_ids.slice(0, 12);
    const [a, b] = await Promise.all([
      run('--model', join(dir, 'hf'), '--ids', lily.input_ids.join(','), '--max-new-tokens', '1', '--json'),
      run('--model', join(dir, 'hf'), '--ids', '1', '--max-new-tokens', String(want.length), '--json'),
    ]);
    expect(a.stderr).toBe('');
    // decoded by ONNX Runtime's runner, as every command runs now
    expect(a.out!.backend).toMatch(/^onnxruntime-node .* \(cpu, \d+ threads?\)$/);
    expect(a.out!.promptIds).toEqual(lily.input_ids);
    // fixtures/README: transformers' float32 logits, compared with an absolute tolerance of 1e-4
    expect(maxAbs(a.out!.lastLogits, lily.logits.at(-1)!)).toBeLessThan(1e-4);
    expect(b.out!.ids).toEqual(want);
    expect(maxAbs(b.out!.lastLogits, Array.from(golden.subarray(0, 512)))).toBeLessThan(1e-4);
  });
});

describe('generate --adapter with an exported PEFT adapter', () => {
  let tmp = '';
  let base = '';
  let adapter = '';
  let merged = '';
  let clsAdapter = '';
  let clsMerged = '';
  beforeAll(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-generate-'));
    base = path.join(tmp, 'base');
    await mkdir(base);
    const { config, tensors } = randomCheckpoint({ family: 'llama', layers: 2, hidden: 16, heads: 4, kvHeads: 2, vocab: 40, positions: 32, intermediate: 24 }, 3);
    await writeSafetensorsFile(path.join(base, 'model.safetensors'), new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    await writeFile(path.join(base, 'config.json'), JSON.stringify(config));
    const data = path.join(tmp, 'data.jsonl');
    await writeFile(data, '{"text":"a b c"}\n{"text":"d e f"}\n');
    const dataDir = path.join(tmp, 'peer');
    const peer = await Peer.open({ dataDir });
    const lora = { r: 2, alpha: 4, targetModules: ['q_proj', 'v_proj', 'down_proj'] };
    // create asks for a tokenizer (every member encodes its data); it goes again below, so that the
    // base is a checkpoint without one, on which --ids works and --prompt refuses
    await copyFile(path.join(EMBEDDED_MODEL_DIR, 'tokenizer.json'), path.join(base, 'tokenizer.json'));
    const settings = await peer.create({ name: 'F', peerName: 'org', model: { model: base, lora }, data: { source: data, split: { kind: 'local', client: 'org' }, seed: 0, limit: 0 }, rounds: 1, minMembers: 1 });
    await initBackend('cpu');
    const m = createModel(config, tensors, { kind: 'causal-lm' }, lora);
    // a causal-LM round: LoRA tensors only, B ≠ 0 so the adapter changes the logits
    let s = 7;
    const next = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5) * 0.6;
    const globals = new Map(m.trainable.map((t) => [t.name, Float32Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, next)]));
    m.dispose();
    await peer.dir.commitCheckpoint(1, serializeCheckpoint({ round: 1, globals, server: emptyServerState() }, settings.federationId));
    adapter = (await exportRound({ dataDir, out: path.join(tmp, 'adapter') })).dir;
    merged = (await exportRound({ dataDir, out: path.join(tmp, 'merged'), merged: true })).dir;

    // a classification round of another federation on the same base: LoRA tensors and the head
    const clsDir = path.join(tmp, 'cls-peer');
    const clsData = path.join(tmp, 'cls.jsonl');
    await writeFile(clsData, ['neg', 'pos', 'mixed'].map((l) => JSON.stringify({ text: 'a b', label: l })).join('\n') + '\n');
    const clsPeer = await Peer.open({ dataDir: clsDir });
    const clsSettings = await clsPeer.create({ name: 'C', peerName: 'org', model: { model: base, lora }, data: { source: clsData, split: { kind: 'local', client: 'org' }, seed: 0, limit: 0 }, rounds: 1, minMembers: 1 });
    const c = createModel(config, tensors, { kind: 'classification', numLabels: 3 }, lora);
    const clsGlobals = new Map(c.trainable.map((t) => [t.name, Float32Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, next)]));
    c.dispose();
    await clsPeer.dir.commitCheckpoint(1, serializeCheckpoint({ round: 1, globals: clsGlobals, server: emptyServerState() }, clsSettings.federationId));
    clsAdapter = (await exportRound({ dataDir: clsDir, out: path.join(tmp, 'cls-adapter'), labels: ['neg', 'pos', 'mixed'] })).dir;
    clsMerged = (await exportRound({ dataDir: clsDir, out: path.join(tmp, 'cls-merged'), merged: true })).dir;
    await rm(path.join(base, 'tokenizer.json'));
  });
  afterAll(async () => {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  });

  it('changes the logits of the base model and equals the merged checkpoint', { timeout: 90_000 }, async () => {
    const ids = ['--ids', '3,17,5,9,30', '--max-new-tokens', '6', '--json'];
    const [plain, adapted, full, own] = await Promise.all([
      run('--model', base, ...ids),
      run('--model', base, '--adapter', adapter, ...ids),
      run('--model', merged, ...ids),
      run('--adapter', adapter, ...ids), // the base from adapter_config.json's base_model_name_or_path
    ]);
    for (const r of [plain, adapted, full, own]) expect(r.stderr).toBe('');
    expect([own.out!.ids, own.out!.lastLogits]).toEqual([adapted.out!.ids, adapted.out!.lastLogits]);
    expect(maxAbs(adapted.out!.lastLogits, plain.out!.lastLogits)).toBeGreaterThan(1e-2 * maxAbsOf(plain.out!.lastLogits));
    expect(maxAbs(adapted.out!.lastLogits, full.out!.lastLogits)).toBeLessThan(1e-5 * maxAbsOf(full.out!.lastLogits) + 1e-6);
    expect(adapted.out!.ids).toEqual(full.out!.ids);
  });

  it('a classification adapter prints its class logits, which the merged checkpoint gives too', { timeout: 90_000 }, async () => {
    const ids = [3, 17, 5, 9, 30];
    const r = await new Promise<{ logits: number[]; labels: string[]; label: string }>((resolve, reject) =>
      execFile(process.execPath, [CLI, 'generate', '--backend', 'wasm', '--model', base, '--adapter', clsAdapter, '--ids', ids.join(','), '--json'], { timeout: 60_000 }, (err, out) =>
        err ? reject(err) : resolve(JSON.parse(out)),
      ),
    );
    expect(r.labels).toEqual(['neg', 'pos', 'mixed']); // from fedforward.json
    expect(r.label).toBe(r.labels[r.logits.indexOf(Math.max(...r.logits))]);
    // the merged checkpoint: LoRA folded into its weights, the head stored as score.weight
    await initBackend('cpu');
    const hf = await loadHfDir(clsMerged);
    const m = createModel(hf.config, hf.tensors, { kind: 'classification', numLabels: 3 }, { targetModules: [] });
    const head = hf.tensors.get('score.weight')!;
    const out = tf.tidy(() => m.forward({ ids: tf.tensor2d([ids], undefined, 'int32'), mask: tf.ones([1, ids.length]) as tf.Tensor2D }, plainParams(new Map([['score.weight', tf.tensor(head.data, head.shape)]])), null).p);
    const want = Array.from(out.dataSync());
    m.dispose();
    expect(maxAbs(r.logits, want)).toBeLessThan(1e-5 * maxAbsOf(want));
    expect(maxAbsOf(r.logits)).toBeGreaterThan(0);
  });

  it('refuses in one line: a SEQ_CLS adapter without a head, a bad id, no tokenizer for --prompt', { timeout: 90_000 }, async () => {
    const cls = path.join(tmp, 'cls');
    await mkdir(cls);
    const cfg = JSON.parse(readFileSync(path.join(adapter, 'adapter_config.json'), 'utf8'));
    await writeFile(path.join(cls, 'adapter_config.json'), JSON.stringify({ ...cfg, task_type: 'SEQ_CLS' }));
    await writeFile(path.join(cls, 'adapter_model.safetensors'), readFileSync(path.join(adapter, 'adapter_model.safetensors')));
    const [a, b, c] = await Promise.all([
      run('--model', base, '--adapter', cls, '--ids', '1'),
      run('--model', base, '--ids', '1,40'),
      run('--model', base, '--prompt', 'hello'),
    ]);
    expect(a.stderr).toMatch(/^fedforward: .*: a SEQ_CLS adapter without its head \(score\.weight or classifier\.weight\)\n$/);
    expect(b.stderr).toBe('fedforward: token id 40 is outside the vocabulary (vocab_size 40)\n');
    expect(c.stderr).toMatch(/^fedforward: .* has no tokenizer: give the prompt as --ids\n$/);
    for (const r of [a, b, c]) expect(r.code).toBe(1);
  });
});
