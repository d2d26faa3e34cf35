// Helpers for the tests that run real federations on loopback: peers in temporary data
// directories, a create → invite → join sequence, polling with a timeout, and a log with times.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Peer, type CreateSettings, type PeerOptions } from '../../../src/main/federation/peer.ts';
import { FIXTURES } from '../../fixtures.ts';

export const MODEL = path.join(FIXTURES, 'stories260K', 'hf');

export const data = (domain: string) => ({ source: 'sentiment', split: { kind: 'local' as const, client: domain, domain }, seed: 1, limit: 16 });

export const DOMAINS = ['imdb', 'yelp', 'amazon', 'imdb', 'yelp'];

/** How much longer than on an idle machine a wait may take (other test runs share the cores). */
export const SLACK = 3;

export class Harness {
  readonly peers: Peer[] = [];
  readonly dirs: string[] = [];
  readonly logs: string[] = [];
  private readonly t0 = Date.now();

  async newPeer(tag: string, extra: Partial<PeerOptions> = {}, dir?: string): Promise<Peer> {
    if (dir === undefined) {
      dir = await mkdtemp(path.join(os.tmpdir(), `ff-fed-${tag}-`));
      this.dirs.push(dir);
    }
    const p = await Peer.open({
      dataDir: dir,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      electionTimeoutMs: 1000,
      heartbeatIntervalMs: 150,
      log: (l) => this.logs.push(`${((Date.now() - this.t0) / 1000).toFixed(2)} ${tag}: ${l}`),
      ...extra,
    });
    this.peers.push(p);
    return p;
  }

  /** A federation of `n` members: the first creates it, the others join with one invite. */
  async federation(n: number, settings: Partial<CreateSettings>, extra: (i: number) => Partial<PeerOptions> = () => ({})): Promise<Peer[]> {
    const tags = 'abcdefgh'.split('');
    const a = await this.newPeer(tags[0]!, extra(0));
    await a.create({
      name: 'test federation',
      peerName: 'p0',
      model: { model: MODEL, lora: { r: 1, alpha: 2, dropout: 0 }, backend: 'wasm', maxLength: 24 },
      data: data(DOMAINS[0]!),
      hp: { maxLocalSteps: 1, batchSize: 4, maxLength: 24 },
      rounds: 3,
      minMembers: n,
      seed: 11,
      roundDeadlineMs: 15_000,
      ...settings,
    });
    await a.start();
    await this.until('the creator to lead', () => a.status().role === 'leader');
    // Each newcomer's peer id is known first (as `fedforward id` tells it): the invite is bound to them.
    const others: Peer[] = [];
    for (let i = 1; i < n; i++) others.push(await this.newPeer(tags[i]!, extra(i)));
    const code = await a.invite({ for: others.map((p) => p.peerId), expiresMs: 120_000 });
    for (const [i, p] of others.entries()) await p.join(code, `p${i + 1}`, data(DOMAINS[(i + 1) % DOMAINS.length]!));
    return [a, ...others];
  }

  /** `joiner` joins with an invite bound to nobody: it waits pending until `inviter` approves it. */
  async joinApproved(inviter: Peer, joiner: Peer, code: string, name: string, domain: string): Promise<void> {
    const joining = joiner.join(code, name, data(domain));
    joining.catch(() => {}); // awaited below; a refusal must not go unhandled while we wait
    await this.until(`${name} to be pending`, async () => (await inviter.pending()).some((x) => x.peerId === joiner.peerId));
    await inviter.approve(joiner.peerId);
    await joining;
  }

  /** Wait for an event; `ms` is what an idle machine needs, stretched by SLACK for a busy one. */
  async until(what: string, cond: () => boolean | Promise<boolean>, ms = 20_000, every = 50): Promise<void> {
    const end = Date.now() + ms * SLACK;
    while (Date.now() < end) {
      if (await cond()) return;
      await new Promise((r) => setTimeout(r, every));
    }
    throw new Error(`timed out waiting for ${what}\n${this.logs.slice(-60).join('\n')}`);
  }

  async close(): Promise<void> {
    if (process.env.FF_TEST_LOGS) console.log(this.logs.join('\n'));
    await Promise.all(this.peers.map((p) => p.stop()));
    await Promise.all(this.dirs.map((d) => rm(d, { recursive: true, force: true })));
  }
}

export const leaderOf = (peers: Peer[]) => peers.find((p) => p.status().role === 'leader');

/** sha256 of every committed checkpoint a peer holds, by round. */
export async function committedShas(p: Peer): Promise<Map<number, string>> {
  return new Map((await p.dir.listCheckpoints()).map((e) => [e.round, e.sha256]));
}

/** Bytes sent by each peer, summed over protocols, and per protocol (short names). */
export function sentBytes(p: Peer): { total: number; byProtocol: Record<string, number> } {
  const byProtocol: Record<string, number> = {};
  let total = 0;
  for (const [id, t] of p.traffic()) {
    const name = id.split('/')[2] ?? id;
    byProtocol[name] = (byProtocol[name] ?? 0) + t.sent;
    total += t.sent;
  }
  return { total, byProtocol };
}
