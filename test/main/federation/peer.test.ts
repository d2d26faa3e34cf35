// A real 3-peer federation on 127.0.0.1 in one process: create → invite → two joins → an
// aggregator is elected → rounds commit at every peer with byte-identical checkpoints; then the
// aggregator dies and the two survivors elect another and commit the next round.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Peer, type PeerOptions } from '../../../src/main/federation/peer.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';

const MODEL = path.join(FIXTURES, 'stories260K', 'hf');
const peers: Peer[] = [];
const dirs: string[] = [];
const logs: string[] = [];
const T0 = Date.now();

afterAll(async () => {
  if (process.env.FF_TEST_LOGS) console.log(logs.join('\n'));
  await Promise.all(peers.map((p) => p.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function newPeer(tag: string, extra: Partial<PeerOptions> = {}): Promise<Peer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `ff-peer-${tag}-`));
  dirs.push(dir);
  const p = await Peer.open({
    dataDir: dir,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    electionTimeoutMs: 1000,
    heartbeatIntervalMs: 150,
    log: (l) => logs.push(`${((Date.now() - T0) / 1000).toFixed(2)} ${tag}: ${l}`),
    ...extra,
  });
  peers.push(p);
  return p;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}\n${logs.slice(-40).join('\n')}`);
}

const data = (domain: string) => ({ source: 'sentiment', split: { kind: 'local' as const, client: domain, domain }, seed: 1, limit: 24 });

describe.skipIf(!HAS_FIXTURES)('a 3-peer federation on loopback', () => {
  let a: Peer, b: Peer, c: Peer;

  it('creates, invites, joins, elects, commits rounds with identical checkpoints, refuses bad updates, survives the aggregator dying', { timeout: 60_000 }, async () => {
    a = await newPeer('a');
    await a.create({
      name: 'test federation',
      peerName: 'imdb',
      model: { model: MODEL, lora: { r: 1, alpha: 1, dropout: 0 }, backend: 'wasm', maxLength: 32 },
      data: data('imdb'),
      hp: { maxLocalSteps: 2, batchSize: 4, maxLength: 32 },
      rounds: 4,
      minMembers: 3,
      seed: 7,
      roundDeadlineMs: 15_000,
    });
    await a.start();
    await until('a to lead its one-member federation', () => a.status().role === 'leader');

    // b sends a wrong-shaped update in round 1, c a NaN in round 2: both are refused, the rounds go on.
    b = await newPeer('b', {
      tamperUpdate: (round, w) => (round === 1 ? new Map([...w].map(([k, v], i) => [k, i === 0 ? v.subarray(0, v.length - 1) : v])) : w),
    });
    c = await newPeer('c', {
      tamperUpdate: (round, w) => (round === 2 ? new Map([...w].map(([k, v]) => [k, v.map((x, i) => (i === 0 ? Number.NaN : x))])) : w),
    });
    // A mistyped invite is refused with a one-line reason, before any network traffic.
    const code = await a.invite({ for: [b.peerId, c.peerId], expiresMs: 60_000 });
    const typo = code.slice(0, 20) + (code[20] === 'a' ? 'b' : 'a') + code.slice(21);
    await expect(b.join(typo, 'yelp', data('yelp'))).rejects.toThrow(/^invite code is mistyped/);

    await b.join(code, 'yelp', data('yelp'));
    await c.join(code, 'amazon', data('amazon'));
    // The invite was for b and c, and is used up: a third newcomer cannot even connect.
    const d = await newPeer('d');
    await expect(d.join(code, 'imdb', data('imdb'))).rejects.toThrow(/^join refused: the inviter cannot be reached or refused the connection/);

    await until('2 rounds committed everywhere', () => [a, b, c].every((p) => p.status().committedRound >= 2), 45_000);
    const leaderNow = [a, b, c].find((p) => p.status().role === 'leader')!;
    const crashedAt = leaderNow.status().committedRound;
    // The aggregator dies mid-run, without a word to the others.
    const stopping = leaderNow.stop();
    const shas = await Promise.all([a, b, c].map(async (p) => (await p.dir.readCheckpoint(2)).entry.sha256));
    expect(new Set(shas).size).toBe(1);
    const s1 = await Promise.all([a, b, c].map(async (p) => (await p.dir.readCheckpoint(1)).entry.sha256));
    expect(new Set(s1).size).toBe(1);
    expect(s1[0]).not.toBe(shas[0]);

    expect(logs.some((l) => /rejected the update of .*has shape/.test(l))).toBe(true);
    expect(logs.some((l) => /rejected the update of .*non-finite/.test(l))).toBe(true);

    const statuses = [a, b, c].map((p) => p.status());
    for (const s of statuses) expect(s.members).toHaveLength(3);
    expect(statuses.filter((s) => s.role === 'leader')).toHaveLength(0); // the old one is stopped
    await stopping;
    const leaderId = leaderNow.peerId;
    const metrics = await leaderNow.dir.readMetrics();
    const m2 = metrics.find((m) => m.round === 2 && 'updates' in m);
    if (m2 !== undefined) expect(m2.updates).toBe(2); // c's NaN update was left out

    // The two survivors (a majority of 3) elect another aggregator and commit the remaining rounds.
    const survivors = [a, b, c].filter((p) => p !== leaderNow);
    await until('a new leader', () => survivors.some((p) => p.status().role === 'leader' && p.status().leader === p.peerId), 10_000);
    await until('round 4 committed by the survivors', () => survivors.every((p) => p.status().committedRound >= 4), 30_000);
    expect(crashedAt).toBeLessThan(4);
    const s4 = await Promise.all(survivors.map(async (p) => (await p.dir.readCheckpoint(4)).entry.sha256));
    expect(s4[0]).toBe(s4[1]);
    const after = survivors.map((p) => p.status());
    expect(after.filter((s) => s.role === 'leader')).toHaveLength(1);
    expect(after[0]!.leader).toBe(after[1]!.leader);
    expect(after[0]!.leader).not.toBe(leaderId);
    for (const s of after) expect(s.term).toBeGreaterThan(statuses.find((x) => x.peerId === leaderId)!.term);
  });
});
