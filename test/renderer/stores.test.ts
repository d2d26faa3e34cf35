// @vitest-environment happy-dom
// The stores (one per concern) over a fake typed API: pushed events, refresh, errors as words.
import { describe, expect, it, vi } from 'vitest';
import { flushSync } from 'svelte';
import { FederationStore } from '../../src/renderer/lib/stores/federation.svelte.ts';
import { TrainingStore, dedupeRounds, lastAttempts, stepX } from '../../src/renderer/lib/stores/training.svelte.ts';
import { MemoryStore, ratioOf } from '../../src/renderer/lib/stores/memory.svelte.ts';
import { ExportStore } from '../../src/renderer/lib/stores/export.svelte.ts';
import type { Api } from '../../src/renderer/lib/bridge.ts';
import type { RoundMetric, StatusInfo } from '../../src/shared/api.ts';

function fakeApi(results: Record<string, (...a: unknown[]) => unknown>) {
  const listeners = new Map<string, Set<(p: unknown) => void>>();
  const calls: [string, unknown[]][] = [];
  const api = {
    call: async (m: string, ...args: unknown[]) => {
      calls.push([m, args]);
      const f = results[m];
      if (!f) throw new Error(`${m}: not in this fake`);
      return f(...args);
    },
    on: (e: string, cb: (p: unknown) => void) => {
      let s = listeners.get(e);
      if (!s) listeners.set(e, (s = new Set()));
      s.add(cb);
      return () => s.delete(cb);
    },
  } as unknown as Api;
  const push = (e: string, p: unknown) => {
    for (const cb of listeners.get(e) ?? []) cb(p);
    flushSync();
  };
  return { api, push, calls };
}

const metric = (round: number, at: number, accuracy: number | null = 0.5): RoundMetric => ({ round, testLoss: 1 / round, accuracy, trainLoss: null, updates: 2, participants: 2, wallMs: 10, at });
const status = (over: Partial<StatusInfo> = {}): StatusInfo => ({
  version: '0.1.0',
  self: { id: 'a', name: 'imdb' },
  federation: { id: 'f', name: 'F', model: 'embedded', method: 'spry', rounds: 3, minMembers: 2 },
  running: true,
  paused: false,
  role: 'leader',
  backend: 'wasm',
  members: [],
  aggregator: { id: 'a', name: 'imdb', term: 4 },
  round: 1,
  phase: 'training',
  committedRound: 0,
  lastMetrics: null,
  lastError: null,
  ...over,
});

describe('FederationStore', () => {
  it('follows pushed status and derives membership and the aggregator', () => {
    const { api, push } = fakeApi({});
    const s = new FederationStore(api);
    expect(s.inFederation).toBe(false);
    push('status', status());
    expect(s.inFederation).toBe(true);
    expect(s.aggregatorName).toBe('imdb');
    s.dispose();
    push('status', status({ aggregator: null }));
    expect(s.aggregatorName).toBe('imdb');
  });

  it('keeps the new invite code and lists invites; a refused call becomes an error line', async () => {
    const { api, calls } = fakeApi({
      createInvite: () => ({ id: 'i1', code: 'ff1-abc', usesLeft: 2, expiresAt: 1, revoked: false, state: 'active' }),
      listInvites: () => [{ id: 'i1', code: 'ff1-abc', usesLeft: 2, expiresAt: 1, revoked: false, state: 'active' }],
      listPending: () => [{ peerId: 'p', name: 'amazon', inviteId: 'i1', at: 0, approved: false }],
      status: () => status(),
      revokeInvite: () => {
        throw new Error('no invite with that id');
      },
    });
    const s = new FederationStore(api);
    expect(await s.createInvite(2, 2)).toBe(null);
    expect(calls[0]).toEqual(['createInvite', [{ expiresHours: 2, uses: 2 }]]);
    expect(s.lastCode).toBe('ff1-abc');
    expect(s.invites).toHaveLength(1);
    expect(await s.createInvite(1, 1, ['p1'])).toBe(null);
    expect(calls[2]).toEqual(['createInvite', [{ expiresHours: 1, uses: 1, for: ['p1'] }]]);
    await s.refresh();
    expect(s.pending.map((p) => p.name)).toEqual(['amazon']);
    expect(await s.revoke('zz')).toBe('no invite with that id');
    expect(s.error).toBe('no invite with that id');
    expect(s.busy).toBe(false);
  });
});

describe('TrainingStore', () => {
  it('keeps one metric per round (the newest), in order, from refresh and from pushes', async () => {
    const { api, push } = fakeApi({ metrics: () => ({ rounds: [metric(2, 5), metric(1, 1), metric(1, 3, 0.7)], steps: [{ round: 1, attempt: 1, step: 1, steps: 4, loss: 0.9, at: 1 }] }) });
    const t = new TrainingStore(api);
    await t.refresh();
    expect(t.rounds.map((r) => [r.round, r.accuracy])).toEqual([[1, 0.7], [2, 0.5]]);
    push('round', metric(3, 9, 0.8));
    push('step', { round: 2, attempt: 1, step: 2, steps: 4, loss: 0.5, at: 2 });
    expect(t.latest?.round).toBe(3);
    expect(t.best).toBe(0.8);
    expect(t.steps.map(stepX)).toEqual([0.25, 1.5]);
  });

  it('dedupes by round', () => {
    expect(dedupeRounds([metric(1, 5), metric(1, 2)]).map((r) => r.at)).toEqual([5]);
  });

  it('keeps round 0 as the baseline, apart from the best round', async () => {
    const { api } = fakeApi({ metrics: () => ({ rounds: [metric(1, 2, 0.55), { ...metric(1, 1, 0.9), round: 0 }], steps: [] }) });
    const t = new TrainingStore(api);
    await t.refresh();
    expect(t.rounds.map((r) => r.round)).toEqual([0, 1]);
    expect(t.baseline?.accuracy).toBe(0.9);
    expect(t.best).toBe(0.55);
  });

  it('draws each round’s newest attempt only: a retried round’s failed steps are left out', () => {
    const { api, push } = fakeApi({});
    const t = new TrainingStore(api);
    const step = (round: number, attempt: number, s: number, loss = 1) => push('step', { round, attempt, step: s, steps: 3, loss, at: 0 });
    for (const s of [1, 2, 3]) step(1, 1, s);
    for (const s of [1, 2]) step(2, 1, s, 9); // attempt 1 of round 2 fails after two steps
    for (const s of [1, 2, 3]) step(2, 2, s, 2);
    expect(t.steps).toHaveLength(8);
    expect(t.lastSteps.map((p) => [p.round, p.attempt, p.step])).toEqual([[1, 1, 1], [1, 1, 2], [1, 1, 3], [2, 2, 1], [2, 2, 2], [2, 2, 3]]);
    expect(t.lastSteps.every((p) => p.loss !== 9)).toBe(true);
    expect(t.retried).toEqual([2]);
    // the same step pushed twice counts once
    expect(lastAttempts([{ round: 1, attempt: 1, step: 1 }, { round: 1, attempt: 1, step: 1 }])).toHaveLength(1);
  });
});

describe('MemoryStore', () => {
  it('adds pushed samples, keeps the last sample of each step and the process peak', () => {
    const { api, push } = fakeApi({});
    const m = new MemoryStore(api);
    push('memory', { at: 1, round: 1, attempt: 1, step: 1, rss: 100, peakRss: 150 });
    push('memory', { at: 2, round: 1, attempt: 1, step: 1, rss: 120, peakRss: 180 });
    push('memory', { at: 3, round: 1, attempt: 1, step: 2, rss: 110, peakRss: 180 });
    expect(m.steps.map((s) => [s.step, s.rss])).toEqual([
      [1, 120],
      [2, 110],
    ]);
    expect(m.peakRss).toBe(180);
    expect(m.latest?.at).toBe(3);
    m.dispose();
  });

  it('counts the same steps as Training (each round’s newest attempt), and the RSS at each round’s end', () => {
    const { api, push } = fakeApi({});
    const m = new MemoryStore(api);
    const t = new TrainingStore(api);
    let at = 0;
    const step = (round: number, attempt: number, s: number, rss: number) => {
      push('memory', { at: ++at, round, attempt, step: s, rss, peakRss: 200 });
      push('step', { round, attempt, step: s, steps: 2, loss: 1, at });
    };
    step(1, 1, 1, 100);
    step(1, 1, 2, 110);
    step(2, 1, 1, 120);
    step(2, 2, 1, 130);
    step(2, 2, 2, 140);
    expect(m.steps).toHaveLength(4);
    expect(m.steps).toHaveLength(t.lastSteps.length);
    expect(m.rssGrowth).toBe('end of round 1 → 2: 110 B → 140 B');
  });

  it('states backprop over forward only when both were measured', () => {
    const fig = { state: 'measured', kind: 'measured', model: 'm', batch: 4, seq: 32 } as const;
    expect(ratioOf(null)).toBe(null);
    expect(ratioOf({ ...fig })).toBe(null);
    const r = { peakRssBytes: 0, medianStepMs: 0 };
    expect(ratioOf({ ...fig, forward: { ...r, workingRssBytes: 10 }, backprop: { ...r, workingRssBytes: 58 } })).toBe(5.8);
    // off Linux the working memory is not measured
    expect(ratioOf({ ...fig, forward: { ...r, workingRssBytes: null }, backprop: { ...r, workingRssBytes: 58 } })).toBe(null);
  });
});

describe('ExportStore', () => {
  it('follows the progress of its own task only, and reports a refusal', async () => {
    let merged: unknown;
    const { api, push } = fakeApi({
      exportAdapter: (a) => {
        merged = (a as { merged: boolean }).merged;
        if (merged) throw new Error('merged export is not available yet');
        return { taskId: 't1' };
      },
      cancel: () => true,
      listExports: () => [{ id: 'adapter-round-2-x', round: 2, merged: false, dir: '/d/exports/adapter-round-2-x', files: [{ name: 'a', bytes: 1 }], at: 5 }],
    });
    const e = new ExportStore(api);
    await e.start(undefined, true);
    expect(e.error).toBe('merged export is not available yet');
    await e.start(2, false);
    expect(e.running).toBe(true);
    push('progress', { taskId: 'other', kind: 'export', stage: 'x', fraction: 1, state: 'done' });
    expect(e.task?.stage).toBe('starting');
    push('progress', { taskId: 't1', kind: 'export', stage: 'exported round 2', fraction: 1, state: 'done', files: ['a'] });
    expect(e.running).toBe(false);
    expect(e.task?.files).toEqual(['a']);
    // a finished export joins the history
    await vi.waitFor(() => expect(e.history.map((h) => h.id)).toEqual(['adapter-round-2-x']));
    expect(e.error).toBe(null);
  });

  it('opens an export’s folder through the peer, and says why it could not', async () => {
    let answer = '';
    const { api, calls } = fakeApi({ openExportFolder: () => answer });
    const e = new ExportStore(api);
    await e.openFolder('adapter-round-1-x');
    expect(calls).toEqual([['openExportFolder', ['adapter-round-1-x']]]);
    expect(e.error).toBe(null);
    answer = 'Failed to open path';
    await e.openFolder('adapter-round-1-x');
    expect(e.error).toBe('cannot open the folder: Failed to open path');
  });
});
