// `revoke`: an invite marked revoked in the inviter's invites.json opens nothing: with no other live
// invite, the inviter's connection gater refuses the holder's connection outright.
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, MODEL, data } from './harness.ts';

const h = new Harness();
afterAll(() => h.close());

describe.skipIf(!HAS_FIXTURES)('revoking an invite', () => {
  it('the inviter refuses the holder of a revoked code with a one-line reason; another code still works', { timeout: 180_000 }, async () => {
    const a = await h.newPeer('a');
    await a.create({ name: 'f', peerName: 'p0', model: { model: MODEL, lora: { r: 1, alpha: 2, dropout: 0 }, backend: 'wasm', maxLength: 24 }, data: data('imdb'), rounds: 1, minMembers: 3 });
    await a.start();
    await h.until('a to lead', () => a.status().role === 'leader');
    const code = await a.invite({ uses: 5 });
    await a.revoke(code);
    const b = await h.newPeer('b');
    await expect(b.join(code, 'p1', data('yelp'))).rejects.toThrow(/^join refused: the inviter cannot be reached or refused the connection/);
    expect(b.status().federation).toBeNull();
    await expect(a.revoke('garbage')).rejects.toThrow(/not a FedForward invite/);
    // With another live invite, the revoked code's holder connects, and is refused by the join itself.
    const other = await a.invite({ for: [b.peerId] });
    await expect(b.join(code, 'p1', data('yelp'))).rejects.toThrow(/^join refused: invite has been revoked/);
    await b.join(other, 'p1', data('yelp'));
    expect(b.status().members).toHaveLength(2);
  });
});
