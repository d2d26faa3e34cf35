// The API on a real (unstarted) Peer: clear one-line refusals where a method cannot work yet,
// pause holding the Peer's local training until resume, the Peer's step events turned into step
// and memory events, the invite table read and revoked, and export (PEFT and merged) as a task
// with progress events and cancel.
import { afterAll, describe, expect, it } from 'vitest';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Peer } from '../../../src/main/federation/peer.ts';
import { PeerApiImpl } from '../../../src/main/api/peer_api.ts';
import { validatedApi } from '../../../src/main/api/validate.ts';
import type { ApiEventName, ProgressEvent } from '../../../src/shared/api.ts';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { EMBEDDED_MODEL_DIR } from '../../../src/worker/models/embedded.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { initBackend } from '../../../src/worker/backend.ts';
import { writeSafetensorsFile } from '../../../src/worker/io/safetensors.ts';
import { serializeCheckpoint } from '../../../src/main/federation/checkpoint.ts';
import { emptyServerState } from '../../../src/main/spry/server_optimizer.ts';
import type { StepEvent } from '../../../src/main/federation/peer.ts';

const dirs: string[] = [];
const apis: PeerApiImpl[] = [];
afterAll(async () => {
  for (const a of apis) a.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function open() {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ff-api-'));
  dirs.push(dir);
  const peer = await Peer.open({ dataDir: dir });
  const events: [ApiEventName, unknown][] = [];
  const api = new PeerApiImpl(peer, (e, p) => events.push([e, p]), { bench: false, pollMs: 20 });
  apis.push(api);
  return { dir, peer, api, events };
}

const createSettings = {
  name: 'F',
  peerName: 'imdb',
  model: { model: 'embedded' },
  data: { source: 'sentiment', split: { kind: 'local' as const, client: 'imdb', domain: 'imdb' }, seed: 0, limit: 12 },
  rounds: 2,
  minMembers: 2,
};

describe('the peer API before a federation exists', () => {
  it('refuses what needs a federation, in one line', async () => {
    const { api } = await open();
    const s = await api.status();
    expect(s.federation).toBe(null);
    expect(s.phase).toBe('no-federation');
    await expect(api.createInvite()).rejects.toThrow(/^create or join a federation first$/);
    await expect(api.start()).rejects.toThrow(/^create or join a federation first$/);
    await expect(api.pause()).rejects.toThrow(/^create or join a federation first$/);
    await expect(api.exportAdapter({ merged: false })).rejects.toThrow(/^create or join a federation first$/);
    await expect(api.exportAdapter({ merged: true })).rejects.toThrow(/^create or join a federation first$/);
    await expect(api.dataSummary()).rejects.toThrow(/no data yet/);
    expect(await api.listInvites()).toEqual([]);
    expect(await api.cancel('nope')).toBe(false);
  });

  it('checks the model and data of a new federation before creating it', async () => {
    const { api, peer } = await open();
    const v = validatedApi(api);
    await expect(v.createFederation({ name: 'F', model: '/nowhere/model' })).rejects.toThrow(/^no model at \/nowhere\/model: expected a folder with config\.json/);
    await expect(v.createFederation({ name: 'F', data: '/nowhere/data.jsonl' })).rejects.toThrow(/^no data file at \/nowhere\/data\.jsonl$/);
    await expect(v.createFederation({ name: 'F', data: 'no-such-task' })).rejects.toThrow(/neither a built-in task/);
    await expect(v.join('ff1-x', '/nowhere/d.csv')).rejects.toThrow(/^no data file at/);
    expect(peer.settings).toBe(null);
  });
});

describe('the peer API on a created (not started) federation', () => {
  it('summarises this peer’s data: size, balance, preview', async () => {
    const { api, peer, dir } = await open();
    const file = path.join(dir, 'mine.jsonl');
    await writeFile(file, ['a', 'b', 'c', 'd', 'e', 'f'].map((t, i) => JSON.stringify({ text: `text ${t}`, label: i % 3 === 0 ? 'pos' : 'neg' })).join('\n') + '\n');
    await peer.create({ ...createSettings, data: { source: file, split: { kind: 'local', client: 'imdb' }, seed: 0, limit: 0 } });
    const d = await api.dataSummary();
    expect(d).toMatchObject({ source: file, kind: 'file', examples: 6, labels: ['neg', 'pos'] });
    expect(d.size).toBeGreaterThan(0);
    expect(d.balance).toEqual([
      { label: 'neg', count: 4, fraction: 4 / 6 },
      { label: 'pos', count: 2, fraction: 2 / 6 },
    ]);
    expect(d.preview).toHaveLength(5);
    expect(d.preview[0]).toEqual({ text: 'text a', label: 'pos' });
    const s = await api.status();
    expect(s.federation).toMatchObject({ name: 'F', rounds: 2, minMembers: 2 });
    expect(s.phase).toBe('stopped');
    await expect(api.createInvite()).rejects.toThrow(/^start the peer first/);
    await expect(api.exportAdapter({ merged: false })).rejects.toThrow(/^no round has been committed yet$/);
    await expect(api.exportAdapter({ merged: true })).rejects.toThrow(/^no round has been committed yet$/);
  });

  it('pause holds the peer’s local training until resume; its step events become step and memory events', async () => {
    const { api, peer, events } = await open();
    await peer.create(createSettings);
    expect(peer.modelInfo()).toBe(null);
    expect(peer.dataInfo()).toMatchObject({ source: 'sentiment', limit: 12 });
    const peerSteps: StepEvent[] = [];
    const statuses: boolean[] = [];
    peer.on('step', (e) => peerSteps.push(e));
    const off = peer.on('status', (s) => statuses.push(s.paused));
    // The Peer's compute worker, as it would answer (the pool is the Peer's own; the test stands in for it).
    const memory = { rss: 1000, peakRss: 1500 };
    let trained = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const pool = {
      run: async (req: { type: string }, onProgress?: (m: unknown) => void) => {
        trained++;
        onProgress?.({ type: 'progress', client: 'imdb', step: 1, steps: 2, loss: 0.7, memory });
        await gate;
        onProgress?.({ type: 'progress', client: 'imdb', step: 2, steps: 2, loss: 0.6, memory: { ...memory, rss: 1200, peakRss: 1600 } });
        return { type: req.type, result: { loss: 0.65 }, memory };
      },
    };
    const ctx = peer.ctx as unknown as { pool: unknown };
    ctx.pool = pool;
    const inner = peer.member as unknown as { train: (msg: unknown, globals: unknown, units: string[], current: () => boolean) => Promise<unknown> };

    await api.pause();
    expect((await api.status()).paused).toBe(true);
    expect(peer.status().paused).toBe(true);
    const run = inner.train({ round: 1, seed: 0, hyperparameters: {} }, new Map(), ['head'], () => true);
    await new Promise((r) => setTimeout(r, 80));
    expect(trained).toBe(0);
    await api.resume();
    while (trained === 0) await new Promise((r) => setTimeout(r, 5));
    const self = (await api.status()).members.find((m) => m.self)!;
    expect(self.progress).toEqual({ round: 1, step: 1, steps: 2 });
    release();
    await run;
    expect(trained).toBe(1);
    expect(peer.status().training).toBe(null);
    expect(statuses.slice(0, 2)).toEqual([true, false]); // pause, resume
    off();

    expect(peerSteps.map((e) => [e.step, e.done])).toEqual([[1, false], [2, false], [2, true]]);
    const steps = events.filter(([e]) => e === 'step').map(([, p]) => (p as { loss: number }).loss);
    expect(steps).toEqual([0.7, 0.6]);
    expect((await api.metrics()).steps.map((s) => s.step)).toEqual([1, 2]);
    const mem = await api.memory();
    expect(mem.samples.length).toBe(3); // two progress messages and the train reply
    // the process's RSS and its peak as the worker reported them, step by step
    expect(mem.samples.map((p) => [p.step, p.rss, p.peakRss])).toEqual([[1, 1000, 1500], [2, 1200, 1600], [2, 1000, 1500]]);
    expect(mem.backprop).toBe(null); // bench off in this test
  });

  it('a committed round’s evaluation: the peer emits it, the API pushes it as a round event', async () => {
    const { api, peer, events } = await open();
    await peer.create(createSettings);
    const rounds: number[] = [];
    peer.on('round', (m) => rounds.push(m.round));
    const inner = peer.ctx as unknown as { pool: unknown; committed: unknown; init: unknown };
    inner.pool = { run: async () => ({ type: 'evaluate', result: { loss: 0.5, correct: 3, total: 4 }, memory: { rss: 0, peakRss: 0 } }) };
    inner.committed = { round: 1, globals: new Map(), server: { m: new Map(), v: new Map() } };
    inner.init = { backend: 'cpu', family: 'gpt2', lora: { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] }, specs: [], units: [], labels: ['neg', 'pos'], clients: [], initial: new Map() };
    expect(peer.modelInfo()).toMatchObject({ family: 'gpt2', backend: 'cpu', labels: ['neg', 'pos'] });
    await peer.member.evaluate(1);
    expect(rounds).toEqual([1]);
    for (let i = 0; i < 50 && !events.some(([e]) => e === 'round'); i++) await new Promise((r) => setTimeout(r, 10));
    const pushed = events.filter(([e]) => e === 'round').map(([, p]) => p as { round: number; testLoss: number; accuracy: number });
    expect(pushed).toEqual([expect.objectContaining({ round: 1, testLoss: 0.5, accuracy: 0.75 })]);
  });

  it('removeMember reaches the membership, whose refusal comes back in one line', async () => {
    const { api, peer } = await open();
    await peer.create(createSettings);
    // a created peer that is not running cannot evict anyone (membership.test.ts evicts for real)
    await expect(api.removeMember('12D3KooWGzh8Jpe4sT2b3vq5RfsYxo8BfkJVqg4Ha5u6p6DPS3BH')).rejects.toThrow(/not running; start it, then remove/);
  });

  it('puts a collapse on the timeline, by the shared rule: one class predicted, or worse than round 0', async () => {
    const { api, peer, events } = await open();
    await peer.create(createSettings);
    const initial = new Map();
    const byRound = new Map<unknown, { loss: number; predicted: number[]; actual: number[] }>([
      [initial, { loss: 0.69, predicted: [9, 11], actual: [10, 10] }], // round 0: the initial adapter
    ]);
    const inner = peer.ctx as unknown as { pool: unknown; committed: unknown; init: unknown };
    inner.pool = { run: async (req: { globals: unknown }) => {
      const r = byRound.get(req.globals)!;
      return { type: 'evaluate', result: { loss: r.loss, correct: 10, total: 20, predicted: r.predicted, actual: r.actual }, memory: { rss: 0, peakRss: 0 } };
    } };
    inner.init = { backend: 'cpu', family: 'gpt2', lora: { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] }, specs: [], units: [], labels: ['neg', 'pos'], clients: [], initial };
    const collapses: number[] = [];
    peer.on('collapse', (c) => collapses.push(c.round));
    const rounds = [
      { loss: 0.6, predicted: [10, 10], actual: [11, 9] }, // fine
      { loss: 0.65, predicted: [20, 0], actual: [10, 10] }, // one class
      { loss: 0.8, predicted: [12, 8], actual: [10, 10] }, // worse than round 0
    ];
    for (const [i, r] of rounds.entries()) {
      const globals = new Map();
      byRound.set(globals, r);
      inner.committed = { round: i + 1, globals, server: { m: new Map(), v: new Map() } };
      await peer.member.evaluate(i + 1);
    }
    expect(collapses).toEqual([2, 3]);
    const warnings = () => events.filter(([e, p]) => e === 'timeline' && (p as { kind: string }).kind === 'collapse-warning').map(([, p]) => p as { round: number; reason: string });
    for (let i = 0; i < 100 && warnings().length < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(warnings().map((w) => w.round).sort()).toEqual([2, 3]);
    expect(warnings().find((w) => w.round === 2)!.reason).toMatch(/^the adapter predicts one class \("neg"\) for 100 % of the test examples/);
    expect(warnings().find((w) => w.round === 3)!.reason).toMatch(/^test loss 0\.8000 is above the untrained adapter's 0\.6900/);
    expect((await api.timeline()).filter((e) => e.kind === 'collapse-warning')).toHaveLength(2);
  });

  it('exports a committed round as a task: PEFT or merged, with progress events; cancel stops it', async () => {
    const { api, peer, dir, events } = await open();
    // a tiny random GPT-2 as the federation's model, and one committed round of a non-zero adapter
    const modelDir = path.join(dir, 'model');
    await mkdir(modelDir);
    const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 1, hidden: 8, heads: 2, vocab: 20, positions: 8, intermediate: 12 }, 3);
    await writeSafetensorsFile(path.join(modelDir, 'model.safetensors'), new Map([...tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data as Float32Array }])));
    await writeFile(path.join(modelDir, 'config.json'), JSON.stringify(config));
    await copyFile(path.join(EMBEDDED_MODEL_DIR, 'tokenizer.json'), path.join(modelDir, 'tokenizer.json')); // create asks for one
    const file = path.join(dir, 'mine.jsonl');
    await writeFile(file, ['pos', 'neg', 'pos'].map((l, i) => JSON.stringify({ text: `t${i}`, label: l })).join('\n') + '\n');
    const settings = await peer.create({ ...createSettings, model: { model: modelDir, lora: { r: 2, alpha: 2, targetModules: ['c_attn'] } }, data: { source: file, split: { kind: 'local', client: 'imdb' }, seed: 0, limit: 0 } });
    await initBackend('cpu');
    const m = createModel(config, tensors, { kind: 'classification', numLabels: 2 }, { r: 2, alpha: 2, targetModules: ['c_attn'] });
    const globals = new Map(m.trainable.map((s, i) => [s.name, new Float32Array(s.shape.reduce((a, b) => a * b, 1)).fill(0.01 * (i + 1))]));
    m.dispose();
    await peer.dir.commitCheckpoint(1, serializeCheckpoint({ round: 1, globals, server: emptyServerState() }, settings.federationId));

    const progressOf = (taskId: string) => events.filter(([e, p]) => e === 'progress' && (p as ProgressEvent).taskId === taskId).map(([, p]) => p as ProgressEvent);
    const finished = async (taskId: string) => {
      for (let i = 0; i < 400 && !progressOf(taskId).some((p) => p.state !== 'running'); i++) await new Promise((r) => setTimeout(r, 10));
      return progressOf(taskId);
    };
    await expect(api.exportAdapter({ round: 4, merged: true })).rejects.toThrow(/^round 4 is not committed here \(committed: 1\)$/);

    const merged = await api.exportAdapter({ merged: true });
    const ps = await finished(merged.taskId);
    const done = ps.at(-1)!;
    expect(done).toMatchObject({ kind: 'export', state: 'done', fraction: 1 });
    expect(done.files!.map((f) => path.basename(f))).toEqual(expect.arrayContaining(['model.safetensors', 'config.json']));
    expect(existsSync(path.join(done.dir!, 'model.safetensors'))).toBe(true);
    const fractions = ps.map((p) => p.fraction);
    expect(fractions.length).toBeGreaterThan(3);
    expect(fractions.every((f, i) => i === 0 || f >= fractions[i - 1]!)).toBe(true);

    const peft = await api.exportAdapter({ round: 1, merged: false });
    expect((await finished(peft.taskId)).at(-1)!.files!.map((f) => path.basename(f)).sort()).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'fedforward.json']);

    const cancelled = await api.exportAdapter({ merged: true });
    expect(await api.cancel(cancelled.taskId)).toBe(true);
    expect((await finished(cancelled.taskId)).at(-1)).toMatchObject({ state: 'cancelled' });
    expect(await api.cancel(cancelled.taskId)).toBe(false);
  });

  it('revokes an invite in the table; an unknown id is refused', async () => {
    const { api, peer, dir } = await open();
    await peer.create(createSettings);
    await writeFile(path.join(dir, 'invites.json'), JSON.stringify([{ inviteId: 'abc', usesLeft: 2, revoked: false, expiresAt: Date.now() + 60_000 }]));
    expect((await api.listInvites()).map((i) => i.state)).toEqual(['active']);
    expect((await api.revokeInvite('abc')).map((i) => i.state)).toEqual(['revoked']);
    await expect(api.revokeInvite('zzz')).rejects.toThrow(/^no invite with that id$/);
  });
});
