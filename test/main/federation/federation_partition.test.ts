// A network partition of a real 5-member federation on loopback: two members are cut off from the
// other three (libp2p's connection gater refuses dials and inbound connections both ways, and the
// open connections are closed). The minority side elects no aggregator and commits nothing while
// the majority goes on; after healing there is one history: every committed checkpoint is the same
// bytes at every member. With Raft pre-vote, the cut-off members do not even raise their term, so
// healing causes no needless re-election.
//
// Second scenario, the two-phase commit: the aggregator and one follower are cut off from the three
// others just as the aggregator sends a round's commit-requests. The follower stages that round but
// never commits it (the aggregator cannot reach a majority); the majority commits its own round of
// that number; after healing every member holds the majority's history, and none ever exposed
// (index.json) the stranded round.
import { readdir } from 'node:fs/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { peerIdFromString } from '@libp2p/peer-id';
import { HAS_FIXTURES } from '../../fixtures.ts';
import type { Peer } from '../../../src/main/federation/peer.ts';
import { Harness, committedShas, leaderOf } from './harness.ts';

const h = new Harness();
afterAll(() => h.close());

const ROUNDS = 40;

describe.skipIf(!HAS_FIXTURES)('a partitioned 5-member federation', () => {
  it('makes progress only on the majority side and has one history after healing', { timeout: 900_000 }, async () => {
    const blocked = Array.from({ length: 5 }, () => new Set<string>());
    const peers = await h.federation(5, { rounds: ROUNDS }, (i) => ({ blockedPeers: blocked[i]! }));
    await h.until('round 2 committed everywhere', () => peers.every((p) => p.status().committedRound >= 2), 40_000);

    // Cut two members that are not the aggregator off from the other three.
    const leader = leaderOf(peers)!;
    const minority = peers.filter((p) => p !== leader).slice(0, 2);
    const majority = peers.filter((p) => !minority.includes(p));
    for (const [i, p] of peers.entries()) {
      const other = minority.includes(p) ? majority : minority;
      for (const q of other) blocked[i]!.add(q.peerId);
    }
    await Promise.all(peers.map((p) => Promise.all([...blocked[peers.indexOf(p)]!].map((id) => p.node!.hangUp(peerIdFromString(id)).catch(() => {})))));
    // A commit already on its way may still land on the minority side: take its state after a moment.
    await new Promise((r) => setTimeout(r, 500));
    const minorityRounds = minority.map((p) => p.status().committedRound);
    const minorityTerms = minority.map((p) => p.status().term);
    const majorityStart = Math.max(...majority.map((p) => p.status().committedRound));

    // Until the majority commits another round (an event, however long a busy machine takes): the
    // minority never has an aggregator and commits nothing.
    const progressed = () => Math.min(...majority.map((p) => p.status().committedRound)) > majorityStart;
    const end = Date.now() + 150_000;
    while (!progressed() && Date.now() < end) {
      for (const [j, p] of minority.entries()) {
        const st = p.status();
        expect(st.role, 'a minority member became aggregator').not.toBe('leader');
        expect(st.committedRound).toBe(minorityRounds[j]);
        // Pre-vote: no majority would vote, so they never stand and never raise their term.
        expect(st.role, 'a minority member stood for election').not.toBe('candidate');
        expect(st.term).toBe(minorityTerms[j]);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    const majorityRound = Math.min(...majority.map((p) => p.status().committedRound));
    expect(majorityRound).toBeGreaterThan(majorityStart);
    const majorityLeader = leaderOf(majority)!;
    expect(majorityLeader).toBeDefined();
    const majorityTerm = majorityLeader.status().term;

    // Heal: the minority catches up from the committed rounds and the federation goes on as one,
    // under the same aggregator in the same term (the returning members disturb nothing).
    for (const b of blocked) b.clear();
    const target = majorityRound + 2;
    await h.until(`round ${target} committed everywhere after healing`, () => peers.every((p) => p.status().committedRound >= target), 40_000);
    expect(leaderOf(peers)).toBe(majorityLeader);
    expect(majorityLeader.status().term).toBe(majorityTerm);
    const shas = await Promise.all(peers.map(committedShas));
    for (let r = 1; r <= target; r++) expect(new Set(shas.map((m) => m.get(r))).size, `round ${r}`).toBe(1);
    for (const m of shas) for (let r = 1; r <= target; r++) expect(m.has(r), `round ${r} present`).toBe(true);
    expect(h.logs.some((l) => /caught up: fetched \d+ committed round/.test(l))).toBe(true);
    // This federation's work is done: free the machine for the next one.
    await Promise.all(peers.map((p) => p.stop()));
  });

  it('a follower cut off with the aggregator during its commit-requests stages the round but never commits it', { timeout: 450_000 }, async () => {
    const blocked = Array.from({ length: 5 }, () => new Set<string>());
    let peers: Peer[] = [];
    let cut: { round: number; aggregator: Peer; follower: Peer } | null = null;
    let armed = false;
    // The aggregator's hook: cut {aggregator, one follower} off from the three others, then let it
    // send its commit-requests (only the follower gets one).
    const hook = async (i: number, round: number) => {
      if (!armed || round < 3) return;
      armed = false;
      const aggregator = peers[i]!;
      const follower = peers.find((p) => p !== aggregator)!;
      const minority = [aggregator, follower];
      for (const [j, p] of peers.entries()) {
        const other = minority.includes(p) ? peers.filter((q) => !minority.includes(q)) : minority;
        for (const q of other) blocked[j]!.add(q.peerId);
      }
      await Promise.all(peers.map((p, j) => Promise.all([...blocked[j]!].map((id) => p.node!.hangUp(peerIdFromString(id)).catch(() => {})))));
      cut = { round, aggregator, follower };
    };
    peers = await h.federation(5, { rounds: ROUNDS }, (i) => ({ blockedPeers: blocked[i]!, beforeCommitRequest: (r) => hook(i, r) }));
    await h.until('round 2 committed everywhere', () => peers.every((p) => p.status().committedRound >= 2), 40_000);
    armed = true;
    await h.until('the partition during a commit', () => cut !== null, 40_000);
    const { round, aggregator, follower } = cut!;
    const minority = [aggregator, follower];
    const majority = peers.filter((p) => !minority.includes(p));
    const stagedOf = async (p: Peer) => (await readdir(p.dir.checkpointsDir)).filter((n) => n.startsWith(`staged-round-${round}-`));
    const maxIndexed = async (p: Peer) => Math.max(0, ...(await p.dir.listCheckpoints()).map((e) => e.round));

    // The follower staged the stranded round; neither it nor the old aggregator ever commits it.
    await h.until('the follower staged the round', async () => (await stagedOf(follower)).length === 1, 10_000);
    const strandedSha = /-([0-9a-f]{64})\.safetensors$/.exec((await stagedOf(follower))[0]!)![1]!;
    await h.until(`the majority commits round ${round + 1}`, async () => {
      for (const p of minority) {
        expect(p.status().committedRound, 'a minority member committed the stranded round').toBeLessThan(round);
        expect(await maxIndexed(p), 'a minority member exposed the stranded round').toBeLessThan(round);
      }
      expect(follower.status().role).not.toBe('leader');
      return majority.every((p) => p.status().committedRound >= round + 1);
    }, 40_000);
    for (const p of minority) expect(await maxIndexed(p)).toBeLessThan(round);

    // Heal: one history, the majority's; the stranded checkpoint is in no index anywhere.
    for (const b of blocked) b.clear();
    const target = Math.min(...majority.map((p) => p.status().committedRound)) + 2;
    await h.until(`round ${target} committed everywhere after healing`, () => peers.every((p) => p.status().committedRound >= target), 40_000);
    const shas = await Promise.all(peers.map(committedShas));
    for (let r = 1; r <= target; r++) {
      expect(new Set(shas.map((m) => m.get(r))).size, `round ${r}`).toBe(1);
      for (const m of shas) expect(m.has(r), `round ${r} present`).toBe(true);
    }
    expect(shas[0]!.get(round)).not.toBe(strandedSha);
    for (const m of shas) expect([...m.values()]).not.toContain(strandedSha);
    // The follower dropped its stale staged copy once it committed past it.
    await h.until('the stale staged copy is gone', async () => (await stagedOf(follower)).length === 0, 10_000);
  });
});
