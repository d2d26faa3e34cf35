// Any member can invite: a member that is not the aggregator checks the code and has the aggregator
// add the newcomer (the admit protocol), since only the aggregator changes the membership.
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, data } from './harness.ts';

const h = new Harness();
afterAll(() => h.close());

describe.skipIf(!HAS_FIXTURES)('an invite from a member that is not the aggregator', () => {
  it('admits the newcomer through the aggregator, and is used up only then', { timeout: 180_000 }, async () => {
    // minMembers above the federation's size: no round starts, the test is about membership.
    const [a, b] = await h.federation(2, { minMembers: 4 });
    await h.until('b to follow a', () => b!.status().leader === a!.peerId && b!.status().role === 'follower');
    const code = await b!.invite({ uses: 1 });

    const c = await h.newPeer('c');
    // The code is bound to nobody: c waits at b, the inviter, until b approves it.
    await h.joinApproved(b!, c, code, 'p2', 'amazon');
    const all = [a!, b!, c];
    await h.until('every peer to list three members', () => all.every((p) => p.status().members.length === 3));
    for (const p of all) expect(new Set(p.status().members)).toEqual(new Set(all.map((q) => q.peerId)));
    expect(c.status().leader).toBe(a!.peerId);
    expect(h.logs.some((l) => l.includes(`a: p2 (`) && l.includes(`invited by`))).toBe(true);

    const d = await h.newPeer('d');
    // Used up: the inviter holds no live invite, so its gater refuses d's connection.
    await expect(d.join(code, 'p3', data('yelp'))).rejects.toThrow(/^join refused: the inviter cannot be reached or refused the connection/);
  });
});
