// A FedForward peer's libp2p node: TCP, Noise, Yamux, identify, ping, inside a private network whose
// pre-shared key (the swarm key) comes from the federation's invite, so an outsider cannot even
// complete a handshake. For members behind a NAT: circuit relay v2 (a node named a relay serves
// reservations, the others reserve a slot on every relay and can be reached through it), DCUtR
// (a relayed connection is upgraded to a direct one by hole punching when it can be) and AutoNAT
// (the node learns whether its addresses are reachable). Extra transports plug in through the options.
import { createLibp2p, type Libp2p, type Libp2pOptions } from 'libp2p';
import { tcp } from '@libp2p/tcp';
import { noise } from '@chainsafe/libp2p-noise';
import { yamux } from '@chainsafe/libp2p-yamux';
import { identify } from '@libp2p/identify';
import { ping } from '@libp2p/ping';
import { preSharedKey } from '@libp2p/pnet';
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2';
import { dcutr } from '@libp2p/dcutr';
import { autoNAT } from '@libp2p/autonat';
import { multiaddr } from '@multiformats/multiaddr';
import { FaultTolerance, type PrivateKey, type ServiceMap } from '@libp2p/interface';
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
  /** Relays (multiaddrs with /p2p/): this node reserves a slot on each, to be reachable through it. */
  relays?: string[];
  /** Serve as a relay for the others (a member with a public address). */
  relayServer?: boolean;
}

/** Create and start a peer node. Bootstrap dials run in the background. */
export async function createPeerNode(options: PeerNodeOptions): Promise<PeerNode> {
  const psk = formatSwarmKey(parseSwarmKey(options.swarmKey));
  const bootstrap = (options.bootstrap ?? []).map((a) => multiaddr(a)); // throws on a bad address, before start
  for (const a of options.relays ?? []) multiaddr(a); // throws on a bad address, before start
  // A member behind a NAT reserves a slot on whichever relay it connects to (relays are members,
  // so they are dialed like any other); one that is not up yet must not stop the node.
  const viaRelay = (options.relays?.length ?? 0) > 0 && options.relayServer !== true;
  const node = await createLibp2p<PeerServices>({
    privateKey: options.privateKey,
    addresses: { listen: [...options.listen, ...(viaRelay ? ['/p2p-circuit'] : [])], ...(options.announce ? { announce: options.announce } : {}) },
    ...(viaRelay ? { transportManager: { faultTolerance: FaultTolerance.NO_FATAL } } : {}),
    transports: [tcp(), circuitRelayTransport({ reservationCompletionTimeout: 20_000 }), ...(options.extraTransports ?? [])],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk }),
    ...(options.connectionManager ? { connectionManager: options.connectionManager } : {}),
    ...(options.connectionGater ? { connectionGater: options.connectionGater } : {}),
    services: {
      identify: identify(),
      ping: ping(),
      dcutr: dcutr(),
      autoNAT: autoNAT(),
      // The relay serves its own federation only (the gater admits members): no data or time limits,
      // since a checkpoint is megabytes and a round takes minutes.
      ...(options.relayServer ? { relay: circuitRelayServer({ reservations: { applyDefaultLimit: false } }) } : {}),
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
