// A network partition of a real 5-member federation on loopback: two members are cut off from the
// other three (libp2p's connection gater refuses dials and inbound connections both ways, and the
// open connections are closed). The minority side elects no aggregator and commits nothing while
// the majority goes on; after healing there is one history: every committed checkpoint is the same
// bytes at every member.
import { afterAll, describe, expect, it } from 'vitest';
import { peerIdFromString } from '@libp2p/peer-id';
import { HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, committedShas, leaderOf } from './harness.ts';

const h = new Harness();
afterAll(() => h.close());

const ROUNDS = 40;

describe.skipIf(!HAS_FIXTURES)('a partitioned 5-member federation', () => {
  it('makes progress only on the majority side and has one history after healing', { timeout: 120_000 }, async () => {
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
    const majorityStart = Math.max(...majority.map((p) => p.status().committedRound));

    // For a few election timeouts: the minority never has an aggregator and commits nothing; the
    // majority commits more rounds.
    const end = Date.now() + 5000;
    let minorityTermRaised = false;
    while (Date.now() < end) {
      for (const [j, p] of minority.entries()) {
        const st = p.status();
        expect(st.role, 'a minority member became aggregator').not.toBe('leader');
        expect(st.committedRound).toBe(minorityRounds[j]);
        if (st.role === 'candidate') minorityTermRaised = true;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(minorityTermRaised).toBe(true); // they did try
    const majorityRound = Math.min(...majority.map((p) => p.status().committedRound));
    expect(majorityRound).toBeGreaterThan(majorityStart);
    expect(leaderOf(majority)).toBeDefined();

    // Heal: the minority catches up from the committed rounds and the federation goes on as one.
    for (const b of blocked) b.clear();
    const target = majorityRound + 2;
    await h.until(`round ${target} committed everywhere after healing`, () => peers.every((p) => p.status().committedRound >= target), 40_000);
    const shas = await Promise.all(peers.map(committedShas));
    for (let r = 1; r <= target; r++) expect(new Set(shas.map((m) => m.get(r))).size, `round ${r}`).toBe(1);
    for (const m of shas) for (let r = 1; r <= target; r++) expect(m.has(r), `round ${r} present`).toBe(true);
    expect(h.logs.some((l) => /caught up: fetched \d+ committed round/.test(l))).toBe(true);
  });
});
