// Two (or three) real libp2p nodes on 127.0.0.1: private-network handshake, request/response over
// the wire helpers, hostile input on a protocol stream, and the identity kept in the data directory.
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { byteStream } from '@libp2p/utils';
import type { PeerId } from '@libp2p/interface';
import { createPeerNode, formatSwarmKey, generateSwarmKey, parseSwarmKey, type PeerNode } from '../../../src/main/federation/node.ts';
import { encodeVarint, registerProtocol, request, sha256Hex, withData, WireError } from '../../../src/main/federation/wire.ts';
import { PROTOCOLS, type CommitAck, type ErrorReply, type WeightsFetchResponse } from '../../../src/shared/messages.ts';
import { openDataDir } from '../../../src/main/storage/data_dir.ts';

const LISTEN = ['/ip4/127.0.0.1/tcp/0'];
const nodes: PeerNode[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function peer(swarmKey: Uint8Array, bootstrap?: string[]): Promise<PeerNode> {
  const node = await createPeerNode({ privateKey: await generateKeyPair('Ed25519'), swarmKey, listen: LISTEN, bootstrap });
  nodes.push(node);
  return node;
}

function loopbackAddr(node: PeerNode): string {
  const a = node.getMultiaddrs().find((m) => m.toString().startsWith('/ip4/127.0.0.1/'));
  if (a === undefined) throw new Error('no loopback address');
  return a.toString();
}

describe('swarm keys', () => {
  it('formats and parses the pnet swarm-key format', () => {
    const raw = generateSwarmKey();
    const formatted = formatSwarmKey(raw);
    expect(new TextDecoder().decode(formatted)).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/);
    expect(parseSwarmKey(formatted)).toEqual(raw);
    expect(parseSwarmKey(raw)).toBe(raw);
    expect(() => parseSwarmKey(new Uint8Array(5))).toThrow(/not a swarm key/);
    expect(() => formatSwarmKey(new Uint8Array(31))).toThrow(/32 bytes/);
  });
});

describe('peer nodes on loopback', () => {
  it('two nodes with the same swarm key connect and exchange a request/response with data', async () => {
    const key = generateSwarmKey();
    const server = await peer(key);
    const client = await peer(formatSwarmKey(key)); // either key form works
    const weights = new Uint8Array(new Float32Array([1, 2, 3, 4.5]).buffer);
    const seen: string[] = [];
    await registerProtocol(server, PROTOCOLS.weights, (msg, from) => {
      seen.push(`${msg.type} r${msg.round} from ${from.toString()}`);
      // dataBytes and dataSha256 are filled in by the wire.
      return withData<WeightsFetchResponse>({ type: 'weights-fetch-response', round: msg.round, sha256: msg.sha256, dtype: 'float32' }, weights);
    });
    const res = await request(client, server.getMultiaddrs(), PROTOCOLS.weights, {
      type: 'weights-fetch-request',
      round: 3,
      sha256: 'a'.repeat(64),
    });
    expect(seen).toEqual([`weights-fetch-request r3 from ${client.peerId.toString()}`]);
    expect(res.msg.type).toBe('weights-fetch-response');
    const msg = res.msg as WeightsFetchResponse;
    expect(msg.dataBytes).toBe(16);
    expect(msg.dataSha256).toBe(sha256Hex(weights));
    expect(new Float32Array(res.data!.slice().buffer)).toEqual(new Float32Array([1, 2, 3, 4.5]));
    expect(client.getConnections(server.peerId)).toHaveLength(1);
    const rtt = await client.services.ping.ping(server.peerId);
    expect(rtt).toBeGreaterThanOrEqual(0);
  });

  it('carries a request attachment (update submission) and replies with an error when the handler throws', async () => {
    const key = generateSwarmKey();
    const server = await peer(key);
    const client = await peer(key);
    let received: Uint8Array | undefined;
    await registerProtocol(server, PROTOCOLS.update, (msg, _from, data) => {
      if (msg.round !== 1) throw new Error(`round ${msg.round} is not open\nsecond line`);
      received = data;
      return { type: 'ack' };
    });
    const update = new Uint8Array(new Float32Array(1024).fill(0.25).buffer);
    const base = { type: 'update-submission' as const, term: 2, units: ['layer.0.q'], numExamples: 32, dtype: 'float32' as const };
    const ok = await request(client, server.getMultiaddrs(), PROTOCOLS.update, { ...base, round: 1 }, { data: update });
    expect(ok.msg).toEqual({ type: 'ack' });
    expect(received).toEqual(update);
    const refused = await request(client, server.peerId, PROTOCOLS.update, { ...base, round: 2 }, { data: update });
    expect(refused.msg).toEqual({ type: 'error', reason: 'round 2 is not open' } satisfies ErrorReply);
  });

  it('moves a few MiB of weights in one reply', async () => {
    const key = generateSwarmKey();
    const server = await peer(key);
    const client = await peer(key);
    const big = new Uint8Array(6 * 1024 * 1024);
    for (let i = 0; i < big.length; i += 4093) big[i] = i & 0xff;
    await registerProtocol(server, PROTOCOLS.commit, (msg, _from, data) => {
      const ok = data !== undefined && sha256Hex(data) === msg.sha256;
      return { type: 'commit-ack', term: msg.term, round: msg.round, sha256: msg.sha256, ok } satisfies CommitAck;
    });
    const res = await request(client, server.getMultiaddrs(), PROTOCOLS.commit, { type: 'commit-request', term: 1, round: 9, sha256: sha256Hex(big) }, { data: big });
    expect((res.msg as CommitAck).ok).toBe(true);
  });

  it('refuses to send a message that breaks its own schema or limit', async () => {
    const key = generateSwarmKey();
    const server = await peer(key);
    const client = await peer(key);
    await registerProtocol(server, PROTOCOLS.raft, () => ({ type: 'ack' }));
    await expect(
      request(client, server.getMultiaddrs(), PROTOCOLS.raft, { type: 'vote-request', term: -1, committedRound: 0 }),
    ).rejects.toThrow(/refusing to send: message does not match its schema: term/);
    await expect(
      request(client, server.getMultiaddrs(), PROTOCOLS.raft, {
        type: 'heartbeat',
        term: 1,
        committedRound: 0,
        members: Array.from({ length: 300 }, () => 'QmPeer'),
        membershipVersion: 0,
      }),
    ).rejects.toThrow(WireError);
  });

  it('a node with a different swarm key cannot connect', async () => {
    const server = await peer(generateSwarmKey());
    const outsider = await peer(generateSwarmKey());
    // The handshake fails either at once (EncryptionFailedError: ECONNRESET) or hangs until a
    // timeout, depending on where the garbled bytes derail Noise (libp2p's own per-address dial
    // timeout is 6 s; here our 2 s signal fires first: TimeoutError). Never a connection.
    const err = await outsider.dial(server.getMultiaddrs(), { signal: AbortSignal.timeout(2_000) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(['EncryptionFailedError', 'TimeoutError', 'AbortError']).toContain((err as Error).name);
    expect(outsider.getConnections()).toHaveLength(0);
    expect(server.getConnections()).toHaveLength(0);
    // Nor can it open a protocol stream.
    await registerProtocol(server, PROTOCOLS.raft, () => ({ type: 'ack' }));
    await expect(
      request(outsider, server.getMultiaddrs(), PROTOCOLS.raft, { type: 'vote-request', term: 1, committedRound: 0 }, { timeoutMs: 2_000 }),
    ).rejects.toThrow();
  });

  it('bootstrap addresses are dialled after start', async () => {
    const key = generateSwarmKey();
    const first = await peer(key);
    const addr = loopbackAddr(first); // getMultiaddrs() already ends in /p2p/<peer id>
    expect(addr.endsWith(`/p2p/${first.peerId.toString()}`)).toBe(true);
    const second = await peer(key, [addr]);
    const deadline = Date.now() + 5_000;
    while (second.getConnections(first.peerId).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(second.getConnections(first.peerId).length).toBeGreaterThan(0);
  });

  it('garbage on a protocol stream never crashes the node, and it still answers afterwards', async () => {
    const key = generateSwarmKey();
    const server = await peer(key);
    const client = await peer(key);
    const refusals: string[] = [];
    let handled = 0;
    await registerProtocol(
      server,
      PROTOCOLS.raft,
      (_msg, _from: PeerId) => {
        handled++;
        return { type: 'ack' };
      },
      { timeoutMs: 2_000, onError: (err) => refusals.push(err.message) },
    );
    await client.dial(server.getMultiaddrs());

    let seed = 987654321;
    const rnd = (n: number): number => {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      return seed % n;
    };
    const enc = new TextEncoder();
    const frame = (body: Uint8Array): Uint8Array => {
      const p = encodeVarint(body.byteLength);
      const out = new Uint8Array(p.byteLength + body.byteLength);
      out.set(p);
      out.set(body, p.byteLength);
      return out;
    };
    const cases: Uint8Array[] = [];
    for (let i = 0; i < 12; i++) cases.push(Uint8Array.from({ length: 1 + rnd(300) }, () => rnd(256))); // random bytes
    cases.push(encodeVarint(2 ** 40)); // oversized length prefix
    cases.push(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01])); // overlong varint
    cases.push(encodeVarint(100_000)); // over the raft limit, with no body
    cases.push(frame(Uint8Array.from([0xc3, 0x28]))); // invalid UTF-8
    cases.push(frame(enc.encode('{"type": "vote-request", "term": 1,'))); // truncated JSON
    cases.push(frame(enc.encode('{"type":"vote-request","term":"one","committedRound":0}'))); // wrong field type
    cases.push(frame(enc.encode('{"type":"join-request","invite":"x","peer":{}}'))); // another protocol's message
    cases.push(frame(enc.encode('[1,2,3]'))); // valid JSON, not an object
    cases.push(frame(enc.encode('{"type":"__proto__"}')));
    cases.push(frame(enc.encode(`{"type":"vote-request","term":1,"committedRound":0,"pad":"${'x'.repeat(2000)}"}`))); // over the per-type limit
    cases.push(frame(enc.encode('{"type":"vote-request","term":1,"committedRound":0,"dataBytes":4}'))); // data on a type that has none
    cases.push(frame(enc.encode('{"type":"vote-req'))); // a frame cut short by the sender...
    cases[cases.length - 1] = cases[cases.length - 1]!.subarray(0, 6);

    for (const bytes of cases) {
      const stream = await client.dialProtocol(server.peerId, PROTOCOLS.raft.id);
      stream.send(bytes);
      await stream.close().catch(() => {});
      // Drain whatever comes back until the server closes or resets the stream.
      const bs = byteStream(stream);
      await bs.read({ signal: AbortSignal.timeout(3_000) }).catch(() => null);
    }
    // Every bad stream was refused, none reached the handler.
    await new Promise((r) => setTimeout(r, 100));
    expect(handled).toBe(0);
    expect(refusals.length).toBe(cases.length);
    expect(refusals.some((m) => m.includes('message too large'))).toBe(true);
    expect(refusals.some((m) => m.includes('does not match its schema'))).toBe(true);
    expect(refusals.some((m) => m.includes('not valid UTF-8'))).toBe(true);
    expect(refusals.some((m) => m.includes('not valid JSON'))).toBe(true);
    expect(refusals.every((m) => !m.includes('\n'))).toBe(true);

    // The node is still up and answers a valid request on the same connection.
    const res = await request(client, server.peerId, PROTOCOLS.raft, { type: 'vote-request', term: 3, committedRound: 1 });
    expect(res.msg).toEqual({ type: 'ack' });
    expect(handled).toBe(1);
    expect(server.status).toBe('started');
  });

  it('a client reading a garbage reply gets a one-line WireError', async () => {
    const key = generateSwarmKey();
    const server = await peer(key);
    const client = await peer(key);
    await server.handle(PROTOCOLS.join.id, async (stream) => {
      const bs = byteStream(stream);
      await bs.read(); // some of the request
      const body = new TextEncoder().encode('{"type":"join-accepted","settings":{}}');
      const p = encodeVarint(body.byteLength);
      stream.send(p);
      stream.send(body);
      await stream.close();
    });
    const err = await request(client, server.getMultiaddrs(), PROTOCOLS.join, {
      type: 'join-request',
      invite: 'ff1-x',
      peer: { peerId: client.peerId.toString(), name: 'b', multiaddrs: [], capacity: 1 },
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WireError);
    expect((err as Error).message).toMatch(/^message does not match its schema: /);
  });

  it('keeps its peer id across a restart through the data directory', async () => {
    const root = await mkdtemp(path.join(os.tmpdir(), 'ff-node-'));
    dirs.push(root);
    const key = generateSwarmKey();
    const dir1 = await openDataDir(root);
    const a = await createPeerNode({ privateKey: await dir1.loadOrCreateIdentity(), swarmKey: key, listen: LISTEN });
    nodes.push(a); // stopping twice is harmless
    const id = a.peerId.toString();
    await a.stop();
    const dir2 = await openDataDir(root);
    const b = await createPeerNode({ privateKey: await dir2.loadOrCreateIdentity(), swarmKey: key, listen: LISTEN });
    nodes.push(b);
    expect(b.peerId.toString()).toBe(id);
  });
});
