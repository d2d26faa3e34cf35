// `fedforward export` as a user runs it: --merged --json on a stopped peer's data directory, the
// PEFT default, and a one-line refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { EMBEDDED_MODEL_DIR } from '../../../src/worker/models/embedded.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { initBackend } from '../../../src/worker/backend.ts';
import { writeSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import { serializeCheckpoint } from '../../../src/main/federation/checkpoint.ts';
import { emptyServerState } from '../../../src/main/spry/server_optimizer.ts';
import { Peer } from '../../../src/main/federation/peer.ts';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/main/cli/index.ts');
let tmp = '';
let dataDir = '';

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 25_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-export-cli-'));
  const model = path.join(tmp, 'model');
  await mkdir(model);
  const { config, tensors } = randomCheckpoint({ family: 'llama', layers: 1, hidden: 8, heads: 2, vocab: 20, positions: 8, intermediate: 12 }, 1);
  await writeSafetensorsFile(path.join(model, 'model.safetensors'), new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
  await writeFile(path.join(model, 'config.json'), JSON.stringify(config));
  await copyFile(path.join(EMBEDDED_MODEL_DIR, 'tokenizer.json'), path.join(model, 'tokenizer.json')); // create asks for one
  const data = path.join(tmp, 'data.csv');
  await writeFile(data, 'text,label\na,x\nb,y\nc,z\n');
  dataDir = path.join(tmp, 'peer');
  const peer = await Peer.open({ dataDir });
  const lora = { r: 2, alpha: 4, targetModules: ['q_proj', 'v_proj'] };
  const settings = await peer.create({ name: 'F', peerName: 'org', model: { model, lora }, data: { source: data, split: { kind: 'local', client: 'org' }, seed: 0, limit: 0 }, rounds: 3, minMembers: 1 });
  await initBackend('cpu');
  const m = createModel(config, tensors, { kind: 'classification', numLabels: 3 }, lora);
  const globals = new Map(m.trainable.map((s) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(0.05)]));
  m.dispose();
  for (const round of [1, 2]) await peer.dir.commitCheckpoint(round, serializeCheckpoint({ round, globals, server: emptyServerState() }, settings.federationId));
});
afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('fedforward export', () => {
  it('writes a merged checkpoint (--merged --json), the PEFT adapter by default, and refuses in one line', { timeout: 60_000 }, async () => {
    const out = path.join(tmp, 'merged');
    const [merged, peft, missing, nowhere] = await Promise.all([
      run('export', '--data-dir', dataDir, '--round', '1', '--out', out, '--merged', '--json'),
      run('export', '--data-dir', dataDir),
      run('export', '--data-dir', dataDir, '--round', '9'),
      run('export', '--data-dir', path.join(tmp, 'none')),
    ]);
    expect(merged.stderr).not.toMatch(/fedforward:/);
    expect(merged.code).toBe(0);
    const r = JSON.parse(merged.stdout) as { round: number; merged: boolean; dir: string; files: string[]; task: string };
    expect(r).toMatchObject({ round: 1, merged: true, dir: out, task: 'classification' });
    expect(r.files.map((f) => path.basename(f))).toEqual(['model.safetensors', 'config.json', 'tokenizer.json']); // the base model's tokenizer comes along
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toMatchObject({ architectures: ['LlamaForSequenceClassification'], num_labels: 3, id2label: { 0: 'x', 1: 'y', 2: 'z' } });

    expect(peft.code).toBe(0);
    expect(peft.stdout).toMatch(/^exported round 2 \(PEFT adapter\) to .*exports.adapter-round-2-/);
    const dir = peft.stdout.split('\n')[0]!.replace(/^.* to /, '');
    expect(existsSync(path.join(dir, 'adapter_config.json'))).toBe(true);

    expect(missing.code).toBe(1);
    expect(missing.stderr.trim().split('\n').at(-1)).toBe('fedforward: round 9 is not committed here (committed: 1, 2)');
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr.trim().split('\n').at(-1)).toMatch(/^fedforward: no data directory at .*none$/);
  });
});
