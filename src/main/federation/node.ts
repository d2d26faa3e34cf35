// A FedForward peer's libp2p node: TCP, Noise, Yamux, identify, ping, inside a private network whose
// pre-shared key (the swarm key) comes from the federation's invite, so an outsider cannot even
// complete a handshake. Extra transports (circuit relay, WebSockets) and services plug in through
// the options without changing this file's callers.
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { multiaddr } from '@multiformats/multiaddr';
import type { PrivateKey, ServiceMap } from '@libp2p/interface';
import type { Identify } from '@libp2p/identify';
import type { Ping } from '@libp2p/ping';

export const SWARM_KEY_BYTES = 32;
const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';

/** The swarm-key file format @libp2p/pnet reads, from 32 raw key bytes. */
export function formatSwarmKey(raw: Uint8Array): Uint8Array {
  if (raw.byteLength !== SWARM_KEY_BYTES) throw new Error(`a swarm key is ${SWARM_KEY_BYTES} bytes, got ${raw.byteLength}`);
  return new TextEncoder().encode(SWARM_KEY_HEADER + Buffer.from(raw).toString('hex'));
}

/** The 32 raw bytes of a swarm key given either raw or in the swarm-key file format. */
export function parseSwarmKey(key: Uint8Array): Uint8Array {
  if (key.byteLength === SWARM_KEY_BYTES) return key;
  const text = new TextDecoder().decode(key).trim();
  const m = /^\/key\/swarm\/psk\/1\.0\.0\/\s*\n\/base16\/\s*\n([0-9a-fA-F]{64})$/.exec(text);
  if (m === null) throw new Error('not a swarm key (expected 32 bytes or /key/swarm/psk/1.0.0/ base16 format)');
  return Uint8Array.from(Buffer.from(m[1]!, 'hex'));
}

export function generateSwarmKey(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(SWARM_KEY_BYTES));
}

export interface PeerServices extends ServiceMap {
  identify: Identify;
  ping: Ping;
}

export type PeerNode = Libp2p<PeerServices>;

export interface PeerNodeOptions {
  privateKey: PrivateKey;
  /** The federation's swarm key: 32 raw bytes or the swarm-key file format. */
  swarmKey: Uint8Array;
  /** Listen addresses, e.g. ['/ip4/127.0.0.1/tcp/0']. */
  listen: string[];
  /** Addresses to announce instead of the listen addresses (public address behind a NAT). */
  announce?: string[];
  /** Multiaddrs of peers to dial after start (with /p2p/<peer id>); failures are only logged. */
  bootstrap?: string[];
  /** More transports, e.g. circuitRelayTransport() or webSockets(); TCP is always present. */
  extraTransports?: NonNullable<Libp2pOptions['transports']>;
  /** Connection limits and timeouts, passed to libp2p. */
  connectionManager?: Libp2pOptions['connectionManager'];
  /** Which peers to refuse (libp2p's connection gater); tests use it to partition a federation. */
  connectionGater?: Libp2pOptions['connectionGater'];
}

/** Create and start a peer node. Bootstrap dials run in the background. */
export async function createPeerNode(options: PeerNodeOptions): Promise<PeerNode> {
  const psk = formatSwarmKey(parseSwarmKey(options.swarmKey));
  const bootstrap = (options.bootstrap ?? []).map((a) => multiaddr(a)); // throws on a bad address, before start
  const node = await createLibp2p<PeerServices>({
    privateKey: options.privateKey,
    addresses: { listen: options.listen, ...(options.announce ? { announce: options.announce } : {}) },
    transports: [tcp(), ...(options.extraTransports ?? [])],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk }),
    ...(options.connectionManager ? { connectionManager: options.connectionManager } : {}),
    ...(options.connectionGater ? { connectionGater: options.connectionGater } : {}),
    services: {
      identify: identify(),
      ping: ping(),
    },
  });
  const log = node.logger.forComponent('fedforward:node');
  for (const ma of bootstrap) {
    node.dial(ma, { signal: AbortSignal.timeout(10_000) }).catch((err: unknown) => {
      log.error('bootstrap dial to %a failed: %s', ma, err instanceof Error ? err.message : String(err));
    });
  }
  return node;
}
