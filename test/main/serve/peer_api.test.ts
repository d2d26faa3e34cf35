// The API on a real (unstarted) Peer: clear one-line refusals where a method cannot work yet,
// pause holding local training in the worker until resume, the worker's progress turned into
// step and memory events, and the invite table read and revoked.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Peer } from '../../../src/main/federation/peer.ts';
import { PeerApiImpl } from '../../../src/main/api/peer_api.ts';
import { validatedApi } from '../../../src/main/api/validate.ts';
import type { ApiEventName } from '../../../src/shared/api.ts';

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
    await expect(api.exportAdapter({ merged: true })).rejects.toThrow(/^merged export is not available yet/);
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
    await expect(api.exportAdapter({ merged: false })).rejects.toThrow(/has not loaded its model yet/);
  });

  it('pause holds local training in the worker until resume; progress becomes step and memory events', async () => {
    const { api, peer, events } = await open();
    await peer.create(createSettings);
    // The Peer's compute pool, as the worker would answer it.
    const memory = { tensorBytes: 10, peakTensorBytes: 20, rss: 1000 };
    let trained = 0;
    const pool = {
      run: async (req: { type: string }, onProgress?: (m: unknown) => void) => {
        if (req.type === 'train') {
          trained++;
          onProgress?.({ type: 'progress', client: 'imdb', step: 1, steps: 2, loss: 0.7, memory });
          onProgress?.({ type: 'progress', client: 'imdb', step: 2, steps: 2, loss: 0.6, memory: { ...memory, peakTensorBytes: 25 } });
        }
        return { type: req.type, result: {}, memory };
      },
    };
    (peer as unknown as { pool: unknown }).pool = pool;
    await new Promise((r) => setTimeout(r, 60)); // the API's poll wraps the new pool

    await api.pause();
    expect((await api.status()).paused).toBe(true);
    const run = pool.run({ type: 'train' });
    await new Promise((r) => setTimeout(r, 80));
    expect(trained).toBe(0);
    await pool.run({ type: 'evaluate' }); // evaluation is not held
    await api.resume();
    await run;
    expect(trained).toBe(1);

    const steps = events.filter(([e]) => e === 'step').map(([, p]) => (p as { loss: number }).loss);
    expect(steps).toEqual([0.7, 0.6]);
    expect((await api.metrics()).steps.map((s) => s.step)).toEqual([1, 2]);
    const mem = await api.memory();
    expect(mem.samples.length).toBe(3); // two progress messages and the train reply
    expect(mem.peakPerStep.map((p) => p.peakTensorBytes)).toEqual([20, 25]);
    expect(mem.backprop).toBe(null); // bench off in this test
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
