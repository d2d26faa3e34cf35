// A joiner whose copy of the base model differs from the creator's is refused before it becomes a
// member: the inviter lists no such member and the invite stays unused.
import { afterAll, describe, expect, it } from 'vitest';
import { appendFile, cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { multiaddr } from '@multiformats/multiaddr';
import { Peer } from '../../../src/main/federation/peer.ts';
import { createPeerNode } from '../../../src/main/federation/node.ts';
import { request } from '../../../src/main/federation/wire.ts';
import { PROTOCOLS } from '../../../src/shared/messages.ts';
import { decodeInvite } from '../../../src/shared/invite.ts';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';

const peers: Peer[] = [];
const dirs: string[] = [];

afterAll(async () => {
  await Promise.all(peers.map((p) => p.stop()));
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const tmp = async (tag: string) => {
  const d = await mkdtemp(path.join(os.tmpdir(), `ff-fp-${tag}-`));
  dirs.push(d);
  return d;
};

const data = (domain: string) => ({ source: 'sentiment', split: { kind: 'local' as const, client: domain, domain }, seed: 1, limit: 12 });

describe.skipIf(!HAS_FIXTURES)('model fingerprint', () => {
  it('refuses a joiner whose model files differ without admitting it or using its invite, and accepts one whose files match', { timeout: 60_000 }, async () => {
    const model = path.join(await tmp('model'), 'hf');
    await cp(path.join(FIXTURES, 'stories260K', 'hf'), model, { recursive: true });
    const a = await Peer.open({ dataDir: await tmp('a'), listen: ['/ip4/127.0.0.1/tcp/0'] });
    peers.push(a);
    const settings = await a.create({
      name: 'fingerprint', peerName: 'imdb', model: { model, backend: 'wasm', maxLength: 16 }, data: data('imdb'),
      hp: { maxLocalSteps: 1, batchSize: 4, maxLength: 16 }, rounds: 1, minMembers: 1,
    });
    expect(settings.modelFingerprint).toMatch(/^[0-9a-f]{64}$/);
    await a.start();
    const code = await a.invite({ uses: 1, expiresMs: 60_000 });

    const config = path.join(model, 'config.json');
    const original = await readFile(config);
    await appendFile(config, '\n'); // same JSON, different bytes: a different model file
    const b = await Peer.open({ dataDir: await tmp('b'), listen: ['/ip4/127.0.0.1/tcp/0'] });
    peers.push(b);
    await expect(b.join(code, 'yelp', data('yelp'))).rejects.toThrow(/^join refused: the model at .* is not the federation's/);
    expect(a.status().members).toEqual([a.peerId]);
    expect(b.status().federation).toBeNull();

    // A joiner that sends some other fingerprint (an older copy, or a lie) is refused by the inviter.
    const invite = decodeInvite(code);
    const key = await generateKeyPair('Ed25519');
    const stranger = await createPeerNode({ privateKey: key, swarmKey: invite.swarmKey, listen: ['/ip4/127.0.0.1/tcp/0'] });
    try {
      const peer = { peerId: stranger.peerId.toString(), name: 'liar', multiaddrs: [], capacity: 1 };
      const terms = await request(stranger, invite.bootstrap.map((m) => multiaddr(m)), PROTOCOLS.join, { type: 'join-request', invite: code, peer });
      expect(terms.msg).toMatchObject({ type: 'join-terms', settings: { modelFingerprint: settings.modelFingerprint } });
      const lie = await request(stranger, invite.bootstrap.map((m) => multiaddr(m)), PROTOCOLS.join, { type: 'join-request', invite: code, peer, modelFingerprint: '0'.repeat(64) });
      expect(lie.msg).toMatchObject({ type: 'join-refused', reason: expect.stringMatching(/^the joiner's base model is not the federation's/) });
    } finally {
      await stranger.stop();
    }
    expect(a.status().members).toEqual([a.peerId]);

    await writeFile(config, original);
    const c = await Peer.open({ dataDir: await tmp('c'), listen: ['/ip4/127.0.0.1/tcp/0'] });
    peers.push(c);
    // The same one-use invite (nobody used it yet); bound to nobody, so a member approves c first.
    const joining = c.join(code, 'amazon', data('amazon'));
    joining.catch(() => {});
    for (let i = 0; i < 400 && !(await a.pending()).some((p) => p.peerId === c.peerId); i++) await new Promise((r) => setTimeout(r, 50));
    expect((await a.pending()).map((p) => p.peerId)).not.toContain(b.peerId); // refused on its model, never pending
    await a.approve(c.peerId);
    await joining;
    expect(c.status().federation).not.toBeNull();
    expect(a.status().members).toEqual([a.peerId, c.peerId]);
  });
});
