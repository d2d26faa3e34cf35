// Members that cannot dial each other (as behind two NATs: the test's gater refuses every direct
// connection between them, on loopback) still run rounds, through a relay member (circuit relay
// v2, named in the federation settings); DCUtR then tries the direct upgrade, which the "NATs"
// refuse here, and the test reports whether it happened.
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../free_port.ts';
import { HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, MODEL, data } from './harness.ts';

const h = new Harness();
afterAll(() => h.close());

describe.skipIf(!HAS_FIXTURES)('NAT traversal', () => {
  it('two members that cannot dial each other commit rounds through the relay member', { timeout: 600_000 }, async () => {
    const port = await freePort();
    const relay = await h.newPeer('relay', { listen: [`/ip4/127.0.0.1/tcp/${port}`], capacity: 0 });
    const relayAddr = `/ip4/127.0.0.1/tcp/${port}/p2p/${relay.peerId}`;
    const natB = new Set<string>();
    const natC = new Set<string>();
    const b = await h.newPeer('b', { noDirect: natB, capacity: 10 });
    const c = await h.newPeer('c', { noDirect: natC, capacity: 1 });
    natB.add(c.peerId);
    natC.add(b.peerId);
    await b.create({
      name: 'behind NATs', peerName: 'b', model: { model: MODEL, lora: { r: 1, alpha: 2, dropout: 0 }, backend: 'wasm', maxLength: 24 },
      data: data('imdb'), hp: { maxLocalSteps: 1, batchSize: 4, maxLength: 24 }, rounds: 2, minMembers: 3, seed: 3, roundDeadlineMs: 60_000, relays: [relayAddr],
    });
    await b.start();
    await h.until('b to lead', () => b.status().role === 'leader');
    await relay.join(await b.invite({ for: [relay.peerId] }), 'relay', data('yelp'));
    // c cannot reach b: the relay member, which it can reach, invites it.
    await c.join(await relay.invite({ for: [c.peerId] }), 'c', data('amazon'));
    await h.until('round 1 committed everywhere', () => [b, relay, c].every((p) => p.status().committedRound >= 1), 120_000);

    const leader = [b, relay, c].find((p) => p.status().role === 'leader');
    expect(leader, 'the relay led: its rounds would not cross the relay').not.toBe(relay);
    // b and c talk, and only through the relay; the direct upgrade (DCUtR) was refused.
    const conns = b.node!.getConnections(c.node!.peerId);
    expect(conns.length).toBeGreaterThan(0);
    const relayed = conns.filter((x) => x.remoteAddr.toString().includes('/p2p-circuit'));
    const direct = conns.length - relayed.length;
    console.log(`NAT test: round 1 committed with b, c connected through the relay (${relayed.length} relayed connection(s)); direct upgrade: ${direct > 0 ? 'yes' : 'no'}`);
    expect(relayed.length).toBe(conns.length);
    expect(c.status().committedRound).toBeGreaterThanOrEqual(1);
  });
});
