// The round timeline as a peer's API records it: elections, starts (a retry is a second start of a
// round), phases, commits, entries from the peer checked and cut to size; and the export history.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { TimelineRecorder } from '../../../src/main/api/timeline.ts';
import { listExports, exportFile } from '../../../src/main/api/exports.ts';
import { checkTimelineEntry, MAX_TIMELINE_ENTRIES, type StatusInfo, type TimelineEntry } from '../../../src/shared/api.ts';

const status = (over: Partial<StatusInfo>): StatusInfo => ({
  version: '0.1.0',
  self: { id: 'a', name: 'imdb' },
  federation: { id: 'f', name: 'F', model: 'embedded', method: 'spry', rounds: 5, minMembers: 2 },
  running: true,
  paused: false,
  role: 'leader',
  backend: 'wasm',
  members: [
    { id: 'a', name: 'imdb', self: true, aggregator: true, link: 'self', progress: null, lastUpdateRound: null },
    { id: 'b', name: 'yelp', self: false, aggregator: false, link: 'connected', progress: null, lastUpdateRound: null },
  ],
  aggregator: { id: 'a', name: 'imdb', term: 1 },
  round: 0,
  phase: 'waiting-for-members',
  committedRound: 0,
  lastMetrics: null,
  lastError: null,
  ...over,
});

function recorder() {
  const pushed: TimelineEntry[] = [];
  let t = 1000;
  const r = new TimelineRecorder((e) => pushed.push(e), () => t++);
  return { r, pushed };
}

const brief = (e: TimelineEntry) => `${e.kind}${'round' in e ? ` ${e.round}` : ''}${'attempt' in e ? `#${e.attempt}` : ''}${'term' in e ? ` t${e.term}` : ''}${'phase' in e ? ` ${e.phase}` : ''}`;

describe('TimelineRecorder', () => {
  it('records an election, a round through its phases, a retry under a new aggregator, and the commit', () => {
    const { r, pushed } = recorder();
    r.observe(status({}));
    r.observe(status({ round: 1, phase: 'training' }));
    expect(r.step(1, 1)).toBe(1);
    expect(r.step(1, 2)).toBe(1);
    r.observe(status({ round: 1, phase: 'collecting' }));
    // the aggregator is lost; yelp wins term 2 and starts round 1 again
    r.observe(status({ round: 1, phase: 'collecting', role: 'follower', aggregator: { id: 'b', name: 'yelp', term: 2 } }));
    r.observe(status({ round: 1, phase: 'training', role: 'follower', aggregator: { id: 'b', name: 'yelp', term: 2 } }));
    expect(r.step(1, 1)).toBe(2);
    r.observe(status({ round: 1, phase: 'collecting', committedRound: 1, role: 'follower', aggregator: { id: 'b', name: 'yelp', term: 2 } }));
    expect(pushed.map(brief)).toEqual([
      'election t1',
      'round-started 1#1 t1',
      'phase 1 training',
      'phase 1 collecting',
      'election t2',
      'round-started 1#2 t2',
      'phase 1 training',
      'round-committed 1 t2',
    ]);
    const start = pushed[1] as Extract<TimelineEntry, { kind: 'round-started' }>;
    expect(start.participants).toEqual(['imdb', 'yelp']);
    expect(start.aggregator).toBe('imdb');
    expect(pushed.at(-1)).toMatchObject({ aggregator: 'yelp' });
    expect(r.entries()).toEqual(pushed);
    expect(pushed.map((e) => e.at)).toEqual([...pushed.map((e) => e.at)].sort((a, b) => a - b));
  });

  it('numbers a second training of the same round as a new attempt when no one said the round started again', () => {
    const { r, pushed } = recorder();
    r.observe(status({ round: 3, committedRound: 2, phase: 'training' }));
    expect([r.step(3, 1), r.step(3, 2), r.step(3, 3)]).toEqual([1, 1, 1]);
    expect([r.step(3, 1), r.step(3, 2)]).toEqual([2, 2]);
    expect(r.attemptOf(3)).toBe(2);
    expect(pushed.filter((e) => e.kind === 'round-started').map(brief)).toEqual(['round-started 3#1 t1', 'round-started 3#2 t1']);
  });

  it('takes the aggregator’s own report of a start (with its participants) instead of deriving a second one', () => {
    const { r, pushed } = recorder();
    r.observe(status({}));
    r.add({ kind: 'round-started', round: 1, term: 1, attempt: 0, aggregator: 'imdb', participants: ['imdb'] });
    r.observe(status({ round: 1, phase: 'collecting' })); // before this peer trained: not a phase of its own
    r.add({ kind: 'round-failed', round: 1, term: 1, reason: 'no update arrived before the deadline' });
    r.add({ kind: 'round-started', round: 1, term: 1, attempt: 0, aggregator: 'imdb', participants: ['imdb', 'yelp'] });
    expect(r.step(1, 1)).toBe(2);
    expect(pushed.map(brief)).toEqual(['election t1', 'round-started 1#1 t1', 'round-failed 1 t1', 'round-started 1#2 t1']);
  });

  it('counts a member’s updates from commits that name it', () => {
    const { r } = recorder();
    r.add({ kind: 'round-committed', round: 1, term: 1, aggregator: 'imdb', participants: 2, updates: 2, members: ['imdb', 'yelp'] });
    r.add({ kind: 'round-committed', round: 2, term: 1, aggregator: 'imdb', participants: 2, updates: 1, members: ['imdb'] });
    expect(Object.fromEntries(r.lastUpdates())).toEqual({ imdb: 2, yelp: 1 });
  });

  it('keeps no entry that is not one, cuts long strings, and keeps at most MAX_TIMELINE_ENTRIES', () => {
    const { r, pushed } = recorder();
    expect(r.add({ kind: 'nonsense', round: 1 })).toBe(null);
    expect(r.add({ kind: 'update-refused', round: -1, member: 'x', reason: 'r' })).toBe(null);
    const e = r.add({ kind: 'update-refused', round: 2, member: 'm'.repeat(500), reason: 'why\n'.repeat(200) });
    expect(e).not.toBe(null);
    expect((e as { member: string }).member).toHaveLength(120);
    expect((e as { reason: string }).reason).toHaveLength(300);
    expect(pushed).toHaveLength(1);
    for (let i = 0; i < MAX_TIMELINE_ENTRIES + 5; i++) r.add({ kind: 'phase', round: i, phase: 'training' });
    expect(r.entries()).toHaveLength(MAX_TIMELINE_ENTRIES);
    expect(r.entries().at(-1)).toMatchObject({ round: MAX_TIMELINE_ENTRIES + 4 });
    expect(checkTimelineEntry({ kind: 'phase', at: 1, round: 1, phase: 'sleeping' })).toBe(null);
  });
});

describe('the export history', () => {
  const dirs: string[] = [];
  afterAll(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

  it('lists finished exports newest first with their files, and hands out only their files', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'ff-exports-'));
    dirs.push(root);
    expect(await listExports(path.join(root, 'none'))).toEqual([]);
    const a = 'adapter-round-1-2026-11-30T10-00-00-000Z';
    const m = 'merged-round-2-2026-11-30T11-00-00-000Z';
    for (const [d, f] of [[a, 'adapter_config.json'], [m, 'model.safetensors'], ['.partial-x', 'half.bin'], ['notes', 'n.txt']] as const) {
      await mkdir(path.join(root, d), { recursive: true });
      await writeFile(path.join(root, d, f), 'abc');
    }
    const { utimes } = await import('node:fs/promises');
    await utimes(path.join(root, a), new Date(1000), new Date(1000));
    const list = await listExports(root);
    expect(list.map((e) => [e.id, e.round, e.merged])).toEqual([
      [m, 2, true],
      [a, 1, false],
    ]);
    expect(list[1]!.files).toEqual([{ name: 'adapter_config.json', bytes: 3 }]);
    expect(await exportFile(root, a, 'adapter_config.json')).toBe(path.join(root, a, 'adapter_config.json'));
    expect(await exportFile(root, 'notes', 'n.txt')).toBe(null);
    expect(await exportFile(root, a, '../notes')).toBe(null);
    expect(await exportFile(root, a, 'missing')).toBe(null);
  });
});
