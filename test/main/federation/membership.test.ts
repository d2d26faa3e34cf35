// Membership that a leaked code cannot take: a stranger holding a code bound to nobody waits for an
// approval that never comes and stays out; a used invite's network key opens no connection; an
// evicted member is hung up on, cannot connect again, and gets none of the later rounds.
import { afterAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromString } from '@libp2p/peer-id';
import { HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, data } from './harness.ts';
import { createPeerNode, type PeerNode } from '../../../src/main/federation/node.ts';
import { decodeInvite } from '../../../src/shared/invite.ts';

const h = new Harness();

/** Whether `node` can ping `addr`: a gated dial may seem to open, but is aborted before any stream. */
async function reaches(node: PeerNode, addr: string): Promise<boolean> {
  try {
    await node.services.ping.ping(multiaddr(addr), { signal: AbortSignal.timeout(10_000) });
    return true;
  } catch {
    return false;
  }
}
afterAll(() => h.close());

describe.skipIf(!HAS_FIXTURES)('membership', () => {
  it('a stranger with a leaked code stays pending and out; the used code opens no connection', { timeout: 360_000 }, async () => {
    const [a, b] = await h.federation(2, { minMembers: 9 }); // no rounds: this is about membership
    await h.until('b to follow', () => b!.status().leader === a!.peerId);
    // One code, bound to nobody, reaches both the rightful newcomer and a stranger.
    const code = await a!.invite({ uses: 1, expiresMs: 60_000 });
    const rightful = await h.newPeer('rightful');
    const stranger = await h.newPeer('stranger');
    const strangerJoin = stranger.join(code, 'stranger', data('yelp'));
    strangerJoin.catch(() => {});
    await h.until('the stranger to be pending', async () => (await a!.pending()).some((p) => p.peerId === stranger.peerId));
    expect(a!.status().members).not.toContain(stranger.peerId);
    // The member approves the peer id its owner gave out of band, and only that one.
    await h.joinApproved(a!, rightful, code, 'rightful', 'amazon');
    await h.until('everyone to list the rightful newcomer', () => [a!, b!].every((p) => p.status().members.includes(rightful.peerId)));
    // The code is used up: the stranger's next try cannot even connect, and it never was a member.
    await expect(strangerJoin).rejects.toThrow(/^join refused: /);
    for (const p of [a!, b!, rightful]) expect(p.status().members).not.toContain(stranger.peerId);
    expect(stranger.status().federation).toBeNull();

    // A libp2p node holding the used invite's network key (and a fresh identity) cannot connect.
    const invite = decodeInvite(code, 0);
    const outsider = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), swarmKey: invite.swarmKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
    try {
      expect(await reaches(outsider, a!.addresses()[0]!)).toBe(false);
      expect(await reaches(b!.node!, a!.addresses()[0]!)).toBe(true); // a member does
      await h.until('the refused connection to be gone', () => a!.node!.getConnections(outsider.peerId).length === 0);
    } finally {
      await outsider.stop();
    }
  });

  it('an evicted member is hung up on, cannot connect again, and gets no later round', { timeout: 540_000 }, async () => {
    const [a, b, c] = await h.federation(3, { rounds: 30, minMembers: 3 });
    await h.until('round 1 committed everywhere', () => [a!, b!, c!].every((p) => p.status().committedRound >= 1), 90_000);
    // Any member may remove one; a follower asks the aggregator.
    const leader = [a!, b!, c!].find((p) => p.status().role === 'leader')!;
    const victim = [a!, b!, c!].find((p) => p !== leader)!;
    const remover = [a!, b!, c!].find((p) => p !== leader && p !== victim)!;
    await remover.remove(victim.peerId);
    const stay = [leader, remover];
    await h.until('the members to drop the victim', () => stay.every((p) => !p.status().members.includes(victim.peerId)));
    await h.until('connections to the victim to close', () => stay.every((p) => p.node!.getConnections(peerIdFromString(victim.peerId)).length === 0));
    const victimRound = victim.status().committedRound;
    // It cannot connect again, though it still holds the network key and its identity.
    expect(await reaches(victim.node!, leader.addresses()[0]!)).toBe(false);
    expect(await reaches(victim.node!, remover.addresses()[0]!)).toBe(false);
    // The others go on; the victim gets none of their later rounds.
    await h.until('two more rounds at the remaining members', () => stay.every((p) => p.status().committedRound >= victimRound + 2), 120_000);
    expect(victim.status().committedRound).toBe(victimRound);
    const rounds = (await victim.dir.listCheckpoints()).map((e) => e.round);
    expect(Math.max(0, ...rounds)).toBeLessThanOrEqual(victimRound);
    await expect(stay[0]!.remove(victim.peerId)).rejects.toThrow(/is not a member/);
  });
});
