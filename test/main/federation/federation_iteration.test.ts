// Per-iteration Spry over the network: members upload K jvp scalars instead of weights, the
// aggregator regenerates the perturbations from the round seed and the sender's peer id (the same
// client id the member's worker seeds with). Three members commit rounds with identical
// checkpoints; a wrong K and a NaN scalar are refused and the round goes on. The same federation in
// per-epoch mode runs alongside, to compare the bytes a member sends per round.
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, committedShas, leaderOf, sentBytes } from './harness.ts';
import type { Peer } from '../../../src/main/federation/peer.ts';

const h = new Harness();
afterAll(() => h.close());

const ROUNDS = 3;
const K = 2;

async function run(mode: 'epoch' | 'iteration', tamper: boolean): Promise<{ peers: Peer[]; perRound: { role: string; bytes: number; by: Record<string, number> }[] }> {
  const peers = await h.federation(
    3,
    { rounds: ROUNDS, hp: { maxLocalSteps: 1, batchSize: 4, maxLength: 24, spryMode: mode, k: K } },
    (i) =>
      tamper && i === 1
        ? { tamperJvp: (round: number, jvp: Float32Array) => (round === 2 ? Float32Array.from([...jvp, 0.5]) : jvp) }
        : tamper && i === 2
          ? { tamperJvp: (round: number, jvp: Float32Array) => (round === 3 ? jvp.map((x, j) => (j === 0 ? Number.NaN : x)) : jvp) }
          : {},
  );
  await h.until('round 1 committed everywhere', () => peers.every((p) => p.status().committedRound >= 1), 40_000, 10);
  const before = peers.map(sentBytes);
  await h.until(`all ${ROUNDS} rounds committed everywhere`, () => peers.every((p) => p.status().committedRound >= ROUNDS), 40_000, 10);
  const after = peers.map(sentBytes);
  const leader = leaderOf(peers);
  const perRound = peers.map((p, i) => ({
    role: p === leader ? 'aggregator' : 'member',
    bytes: Math.round((after[i]!.total - before[i]!.total) / (ROUNDS - 1)),
    by: Object.fromEntries(Object.entries(after[i]!.byProtocol).map(([k, v]) => [k, Math.round((v - (before[i]!.byProtocol[k] ?? 0)) / (ROUNDS - 1))])),
  }));
  return { peers, perRound };
}

describe.skipIf(!HAS_FIXTURES)('per-iteration Spry over the network', () => {
  it('commits rounds with identical checkpoints from K jvp scalars per member; refuses wrong K and NaN', { timeout: 270_000 }, async () => {
    const it = await run('iteration', true);
    const shas = await Promise.all(it.peers.map(committedShas));
    for (let r = 1; r <= ROUNDS; r++) expect(new Set(shas.map((m) => m.get(r))).size, `round ${r}`).toBe(1);
    expect(new Set([1, 2, 3].map((r) => shas[0]!.get(r))).size).toBe(3); // the adapter moves every round
    // The members' updates were jvp scalars, accepted (rounds with every update) except the tampered ones.
    expect(h.logs.some((l) => /rejected the update of .*expected 2 jvp scalar\(s\), got 3/.test(l))).toBe(true);
    expect(h.logs.some((l) => /rejected the update of .*jvp scalar has a non-finite value/.test(l))).toBe(true);
    expect(h.logs.some((l) => /round 1 committed by a majority \(3\/3 updates/.test(l))).toBe(true);
    expect(h.logs.some((l) => /round 2 committed by a majority \(2\/3 updates/.test(l))).toBe(true);
    // Members' update traffic is K float32 scalars plus the JSON envelope.
    const members = it.perRound.filter((m) => m.role === 'member');
    for (const m of members) expect(m.by.update ?? 0).toBeLessThan(1024);
    await Promise.all(it.peers.map((p) => p.stop()));

    const ep = await run('epoch', false);
    const eshas = await Promise.all(ep.peers.map(committedShas));
    for (let r = 1; r <= ROUNDS; r++) expect(new Set(eshas.map((m) => m.get(r))).size).toBe(1);
    console.log(
      [
        `[3 members, per-iteration Spry, K=${K}] bytes sent per round (app frames): ${JSON.stringify(it.perRound)}`,
        `[3 members, per-epoch Spry] bytes sent per round (app frames): ${JSON.stringify(ep.perRound)}`,
        `[3 members, per-iteration] timings: ${JSON.stringify(it.peers.flatMap((p) => p.timings()))}`,
      ].join('\n'),
    );
  });
});
