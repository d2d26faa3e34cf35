// What the aggregator reports for the interface's round timeline, on a real two-member federation:
// each round's start with its participants, its aggregation and commit phases, and the commit with
// the members whose updates were counted; a refused update names the member and the reason. Every
// report passes the interface's schema (src/shared/api.ts). A member that did not aggregate gets
// the round's aggregate figures (train loss, updates) and the members' own evaluations with the commit.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Harness, MODEL, leaderOf } from './harness.ts';
import { checkTimelineEntry } from '../../../src/shared/api.ts';
import type { TimelineReport } from '../../../src/main/federation/context.ts';

describe.skipIf(!existsSync(MODEL))('the aggregator’s timeline reports', () => {
  const h = new Harness();
  afterAll(() => h.close());

  it('reports each round from start to commit, and names a refused update', { timeout: 120_000 }, async () => {
    const reports: TimelineReport[] = [];
    const [a, b] = await h.federation(2, { rounds: 2 }, () => ({}));
    const offs = [a!, b!].map((p) => p.on('timeline', (e) => reports.push(e)));
    await h.until('two rounds committed at both', () => [a!, b!].every((p) => p.status().committedRound >= 2), 90_000);
    const leader = leaderOf([a!, b!])!;
    // round 1 may have started before the listeners were on: look at round 2
    const r2 = reports.filter((e) => e.round === 2 && e.kind !== 'evaluations').map((e) => `${e.kind}${e.phase ? ` ${String(e.phase)}` : ''}`);
    expect(r2).toEqual(['round-started', 'phase aggregating', 'phase committing', 'round-committed']);
    const started = reports.find((e) => e.kind === 'round-started' && e.round === 2)!;
    // whoever led round 2 (on a busy machine leadership may have moved on since)
    const aggregator = started.aggregator;
    expect(['p0', 'p1']).toContain(aggregator);
    expect([...(started.participants as string[])].sort()).toEqual(['p0', 'p1']); // in peer-id order
    const committed = reports.find((e) => e.kind === 'round-committed' && e.round === 2)!;
    expect(committed).toMatchObject({ aggregator, participants: 2, updates: 2 });
    expect([...(committed.members as string[])].sort()).toEqual(['p0', 'p1']);
    for (const e of reports) expect(checkTimelineEntry({ at: 1, ...e }), JSON.stringify(e)).not.toBe(null);

    // each update carries its sender's newest evaluation (when one finished before it trained); the
    // aggregator reports those of round 2's counted updates, and the member gets the same with the commit
    // the member's copy comes with the commit, which may land just after its committed round shows
    const evals2 = () => reports.filter((e) => e.kind === 'evaluations' && e.round === 2);
    await h.until('both peers report round 2’s evaluations', () => evals2().length >= 2, 30_000);
    const evals = evals2();
    expect(evals).toHaveLength(2);
    expect(evals[0]!.items).toEqual(evals[1]!.items);
    const items = evals[0]!.items as { member: string; round: number; testLoss: number; accuracy: number | null }[];
    expect(items.length).toBeGreaterThan(0);
    for (const i of items) {
      expect(['p0', 'p1']).toContain(i.member);
      expect(i.round).toBe(1);
      expect(Number.isFinite(i.testLoss)).toBe(true);
    }

    // the member that did not aggregate has the round's aggregate figures too
    const member = leader === a ? b! : a!;
    await h.until('the member’s evaluation of round 2', async () => (await member.dir.readMetrics()).some((m) => m.round === 2), 30_000);
    const m2 = (await member.dir.readMetrics()).find((m) => m.round === 2)!;
    expect(m2).toMatchObject({ updates: 2, participants: 2 });
    expect(m2.trainLoss).toEqual(expect.any(Number));
    expect(m2.wallMs).toBeGreaterThan(0);

    // an update the aggregator cannot count: for a round it is not collecting
    const refusals: TimelineReport[] = [];
    offs.push(leader.on('timeline', (e) => e.kind === 'update-refused' && refusals.push(e)));
    const late = { type: 'update', term: leader.status().term, round: 7, units: [], numExamples: 1, loss: 0 } as never;
    expect(leader.aggregator.onUpdate(late, member.peerId, undefined).type).toBe('error');
    expect(refusals).toEqual([expect.objectContaining({ kind: 'update-refused', round: 7, member: leader === a ? 'p1' : 'p0', reason: expect.stringMatching(/no round in progress|collecting/) })]);
    for (const off of offs) off();
  });
});
