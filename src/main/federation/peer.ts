// A federation peer, headless (plain Node): its data directory, its libp2p node, the aggregator
// election (RaftNode over libp2p), joining by invite, and the rounds.
//
// Rounds are driven by the elected leader, which is the aggregator and a member like the others:
//   announce (round, seed, assignment, hp, sha256 of the global adapter) to every connected member
//   → members lacking that adapter fetch it (weights protocol) → each trains its units in its one
//   compute worker and submits an update (checked: sender assigned this round, unit list, tensor
//   names and shapes, finite values, size limits, deadline) → the aggregator aggregates the updates
//   that arrived before the deadline (Spry's Strategy, as in the simulation) → serialises the new
//   globals plus the server optimizer's m/v as a checkpoint → commit-request to every member, which
//   stages it (stored, not committed) and acks → committed once a majority (leader included) staged
//   it: the aggregator stores it as committed, and the members promote their staged copy when they
//   learn that (heartbeats and the next announce carry the committed round and its sha256; a member
//   that staged another one fetches the committed one) → next round.
// So a member cut off with a stranded aggregator never exposes a round the majority did not commit.
// A new leader resumes from its newest committed checkpoint, after committing again (in its term) a
// round it holds staged (which may have been committed by its predecessor; see raft.ts).
//
// Joining: the newcomer dials the inviter (any member) → join-terms (the signed settings) → the
// newcomer checks its copy of the base model against the fingerprint → join-request with it → the
// inviter checks the invite and the fingerprint, and has the aggregator (itself, or over the admit
// protocol) add the newcomer to the membership → join-accepted; only then is the invite used up.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import os from 'node:os';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import { z } from 'zod';
import { createPeerNode, generateSwarmKey, type PeerNode } from './node.ts';
import { registerProtocol, request, sha256Hex, trafficOf, withData, type ProtocolTraffic } from './wire.ts';
import { RaftNode, type RaftStatus } from './raft.ts';
import { hashWeights, packWeights, parseCheckpoint, serializeCheckpoint, unpackWeights, type Checkpoint } from './checkpoint.ts';
import { openDataDir, type DataDir, type FederationFile } from '../storage/data_dir.ts';
import { ComputePool } from '../compute/pool.ts';
import { Strategy, type RoundPlan } from '../spry/strategy.ts';
import { emptyServerState, type ServerOptState } from '../spry/server_optimizer.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import {
  PROTOCOLS,
  type AdmitAccepted,
  type CheckpointFetchResponse,
  type CommitAck,
  type ErrorReply,
  type FederationSettings,
  type JoinRequest,
  type PeerInfo,
  type RoundAnnounce,
  type UpdateSubmission,
  type WeightsFetchResponse,
} from '../../shared/messages.ts';
import { createInvite, decodeInvite, InviteError, InviteTable, verifyInviteSignature } from '../../shared/invite.ts';
import { HyperParams, methodSpec, perIteration } from '../../shared/methods.ts';
import { roundSeed } from '../../shared/spry/seeds.ts';
import { DataSpec, ModelSpec, type InitReply, type MemorySample } from '../../shared/worker_protocol.ts';
import { type TensorSpec, type Weights, tensorsOf } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';
import { modelFingerprint } from '../../worker/io/hf_dir.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';

/** This peer's own, local configuration (never shared): its name, its data, its addresses. */
export const localConfigSchema = z.object({
  version: z.literal(1),
  name: z.string().min(1).max(200),
  data: DataSpec,
  listen: z.array(z.string().startsWith('/')).min(1).max(16),
  announce: z.array(z.string().startsWith('/')).max(16).optional(),
});
export type LocalConfig = z.infer<typeof localConfigSchema>;

export interface PeerOptions {
  dataDir: string;
  /** Listen addresses for a new federation or a join (default: 127.0.0.1, any port). */
  listen?: string[];
  announce?: string[];
  /** Raft base election timeout (default 1000 ms; timeouts fall in [T, 2.5 T]). */
  electionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Relative capacity: a higher one makes this peer a likelier aggregator. */
  capacity?: number;
  /** Progress lines (one per event); default: silent. */
  log?: (line: string) => void;
  /** Test hook: change this peer's update before it is sent. */
  tamperUpdate?: (round: number, weights: Weights) => Weights;
  /** Test hook: change this peer's jvp scalars (per-iteration mode) before they are sent. */
  tamperJvp?: (round: number, jvp: Float32Array) => Float32Array;
  /** Test hook: called (and awaited) just before this member submits its update to `leader`. */
  beforeSubmit?: (round: number, msg: Submission, data: Uint8Array, leader: string) => Promise<void>;
  /** Test hook: called (and awaited) before the aggregator sends round `round`'s commit-requests. */
  beforeCommitRequest?: (round: number) => Promise<void>;
  /** Raft pre-vote (default true). */
  preVote?: boolean;
  /**
   * Test hook: peers (by id) this node refuses to dial or accept, through libp2p's connection
   * gater; the set is read live, so a test can partition and heal a running federation.
   */
  blockedPeers?: ReadonlySet<string>;
}

/** An update submission as this peer builds it (the wire adds dataBytes and dataSha256). */
export type Submission = Omit<UpdateSubmission, 'dataBytes' | 'dataSha256'>;

/** Where the time of one round went, at one peer (ms). */
export interface RoundTiming {
  round: number;
  role: 'aggregator' | 'member';
  /** Aggregator: sending the announce to every member. */
  announceMs?: number;
  /** Member: fetching the global adapter it lacked (0 when it had it). */
  fetchMs?: number;
  /** Local training in the worker (the aggregator's own share included). */
  trainMs?: number;
  /** Member: sending the update and getting the ack. */
  submitMs?: number;
  /** Aggregator: from the announce until the last update arrived (training of all members). */
  collectMs?: number;
  /** Aggregator: Strategy.aggregate plus serialising the checkpoint. */
  aggregateMs?: number;
  /** Aggregator: storing the checkpoint at a majority. */
  commitMs?: number;
  /** Aggregator: the whole round. */
  totalMs?: number;
}

export interface CreateSettings {
  /** Federation name, shown to joiners. */
  name: string;
  /** This peer's name (its client id in the data). */
  peerName: string;
  model: z.input<typeof ModelSpec>;
  /** This peer's own data. */
  data: z.input<typeof DataSpec>;
  method?: 'spry';
  hp?: Partial<z.input<typeof HyperParams>>;
  rounds: number;
  minMembers: number;
  seed?: number;
  roundDeadlineMs?: number;
}

export interface RoundMetric {
  round: number;
  peer: string;
  testLoss: number;
  accuracy: number | null;
  trainLoss?: number;
  updates?: number;
  participants?: number;
  wallMs?: number;
  at: number;
}

/** This peer's local training, while it runs. */
export interface TrainingProgress {
  round: number;
  step: number;
  steps: number;
}

export interface PeerStatus {
  peerId: string;
  name: string;
  federation: string | null;
  members: string[];
  leader: string | null;
  term: number;
  role: RaftStatus['role'] | 'stopped';
  /** The round in progress (leader: the one it runs; member: the last announced). */
  round: number;
  committedRound: number;
  lastMetrics: RoundMetric | null;
  /** This peer's local training in progress (null when its worker is not training). */
  training: TrainingProgress | null;
  /** Local training is held (see pause()). */
  paused: boolean;
}

/** One step of this peer's local training (done: the worker's final reply, with its memory). */
export interface StepEvent {
  round: number;
  step: number;
  steps: number;
  loss: number;
  memory: MemorySample;
  done: boolean;
}

/** What a started peer computes with: known once its worker loaded the model. */
export interface ModelInfo {
  family: InitReply['family'];
  backend: string;
  lora: InitReply['lora'];
  specs: TensorSpec[];
  units: InitReply['units'];
  labels: string[];
}

/** The events a Peer emits (listeners run synchronously; what they throw is ignored). */
export interface PeerEvents {
  /** Something in status() may have changed: role, leader, members, round, training, pause. */
  status: PeerStatus;
  /** A committed round was evaluated on this peer's test split. */
  round: RoundMetric;
  /** Local training progress, with the worker's memory sample. */
  step: StepEvent;
}
export type PeerEventName = keyof PeerEvents;

/** How long an expected member may stay disconnected before a round stops waiting for it. */
const MEMBER_GONE_MS = 1500;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 400);

/** Canonical JSON (sorted keys) of the settings minus the signature: what the creator signs. */
function signedSettingsBytes(s: FederationSettings): Uint8Array {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).filter((k) => k !== 'signature').sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]));
    }
    return v;
  };
  return new TextEncoder().encode('fedforward-settings-v1\n' + JSON.stringify(canon(s)));
}

/** The settings with the creator's signature (over every other field) filled in. */
export async function signSettings(s: FederationSettings, key: PrivateKey): Promise<FederationSettings> {
  const creator = peerIdFromPrivateKey(key).toString();
  const unsigned = { ...s, creator };
  delete unsigned.signature;
  return { ...unsigned, signature: Buffer.from(await key.sign(signedSettingsBytes(unsigned))).toString('hex') };
}

/** This machine's copy of the federation's base model must be the very files the creator used;
 *  returns its fingerprint (none when the settings name none). `known`: the fingerprint this join
 *  already computed, so that a large model is hashed once. */
export async function checkModel(s: FederationSettings, known?: string): Promise<string | undefined> {
  if (s.modelFingerprint === undefined || s.modelSpec === undefined) return undefined;
  const dir = resolveModelDir(s.modelSpec.model);
  const mine = known ?? (await modelFingerprint(dir));
  if (mine !== s.modelFingerprint)
    throw new Error(`join refused: the model at ${dir} is not the federation's (fingerprint ${mine.slice(0, 12)}…, expected ${s.modelFingerprint.slice(0, 12)}…)`);
  return mine;
}

/** What a joiner checks of the settings an inviter sent: the federation, the creator's signature, the model. */
async function acceptTerms(s: FederationSettings, federationId: string, known?: string): Promise<string | undefined> {
  if (s.federationId !== federationId) throw new Error('join refused: the inviter answered for another federation');
  await verifySettings(s);
  return checkModel(s, known);
}

export async function verifySettings(s: FederationSettings): Promise<void> {
  if (s.creator === undefined || s.signature === undefined) throw new Error('federation settings are not signed');
  const key = peerIdFromString(s.creator).publicKey;
  if (key === undefined) throw new Error('federation creator id carries no public key');
  const ok = await key.verify(signedSettingsBytes(s), Uint8Array.from(Buffer.from(s.signature, 'hex')));
  if (!ok) throw new Error('federation settings signature is invalid');
}

/** A newcomer could not be made a member (no aggregator, or it could not be reached): worth retrying. */
class AdmitError extends Error {
  override name = 'AdmitError';
}

interface Membership {
  members: PeerInfo[];
  membershipVersion: number;
}

interface Staged {
  round: number;
  term: number;
  sha: string;
  bytes: Uint8Array;
}

interface Collecting {
  term: number;
  round: number;
  plan: RoundPlan;
  deadline: number;
  updates: Map<string, ClientUpdate>;
  expected: Set<string>;
  /** Members whose update was refused: the round does not wait for them. */
  refused: Set<string>;
}

export class Peer {
  readonly options: PeerOptions;
  readonly dir: DataDir;
  readonly privateKey: PrivateKey;
  readonly peerId: string;
  private log: (line: string) => void;

  private fed: FederationFile | null = null;
  private local: LocalConfig | null = null;
  node: PeerNode | null = null;
  private raft: RaftNode | null = null;
  private pool: ComputePool | null = null;
  private init: InitReply | null = null;
  private memberInfo = new Map<string, PeerInfo>();
  private committed: Checkpoint | null = null;
  /** sha256 of the committed checkpoint file, and the term it was committed in. */
  private committedSha: string | undefined;
  private committedTerm = 0;
  /** Member side: the checkpoint it stored on a commit-request, not yet known to be committed. */
  private staged: Staged | null = null;
  private peakMemory = { tensorBytes: 0, rss: 0 };
  private collecting: Collecting | null = null;
  private currentRound = 0;
  private lastMetric: RoundMetric | null = null;
  private stopped = false;
  private saveChain: Promise<void> = Promise.resolve();
  private inviteChain: Promise<unknown> = Promise.resolve();
  private leading: number | null = null;
  /** Member side: the latest round it is training in, so an older one stops mattering. */
  private training = 0;
  /** One training at a time, so a stale round can be skipped while an earlier one runs. */
  private trainChain: Promise<void> = Promise.resolve();
  /** The client id of this peer's data in its worker, and in the perturbation seeds: its peer id. */
  private workerClient = '';
  private roundTimings = new Map<number, RoundTiming>();
  private lastTraffic = new Map<string, ProtocolTraffic>();
  /** Member side: fetching committed rounds it lacks, one catch-up at a time. */
  private catchChain: Promise<void> = Promise.resolve();
  private listeners: { [E in PeerEventName]: Set<(payload: PeerEvents[E]) => void> } = { status: new Set(), round: new Set(), step: new Set() };
  private trainingNow: TrainingProgress | null = null;
  private paused = false;
  private resumeWaiters: (() => void)[] = [];

  private constructor(options: PeerOptions, dir: DataDir, key: PrivateKey) {
    this.options = options;
    this.dir = dir;
    this.privateKey = key;
    this.peerId = peerIdFromPrivateKey(key).toString();
    this.log = options.log ?? (() => {});
  }

  /** Open (creating when needed) the data directory and the identity; starts nothing. */
  static async open(options: PeerOptions): Promise<Peer> {
    const dir = await openDataDir(options.dataDir);
    const key = await dir.loadOrCreateIdentity();
    const peer = new Peer(options, dir, key);
    peer.fed = await dir.readFederation();
    peer.local = await peer.readLocal();
    return peer;
  }

  get settings(): FederationSettings | null {
    return this.fed?.settings ?? null;
  }

  // ---- events and what the interface reads ---------------------------------------------------

  /** Listen to `event`; returns the function that stops listening. */
  on<E extends PeerEventName>(event: E, fn: (payload: PeerEvents[E]) => void): () => void {
    this.listeners[event].add(fn);
    return () => this.off(event, fn);
  }

  off<E extends PeerEventName>(event: E, fn: (payload: PeerEvents[E]) => void): void {
    this.listeners[event].delete(fn);
  }

  private emit<E extends PeerEventName>(event: E, payload: PeerEvents[E]): void {
    for (const fn of [...this.listeners[event]]) {
      try {
        fn(payload);
      } catch {
        // a listener's failure never reaches the federation's work
      }
    }
  }

  /** Tell listeners that status() may have changed. */
  private changed(): void {
    if (this.listeners.status.size > 0) this.emit('status', this.status());
  }

  /** The model this peer computes with (null until its worker has loaded it). */
  modelInfo(): ModelInfo | null {
    const i = this.init;
    if (i === null) return null;
    return { family: i.family, backend: i.backend, lora: { ...i.lora, targetModules: [...i.lora.targetModules] }, specs: i.specs, units: i.units, labels: [...i.labels] };
  }

  /** This peer's own data (null before it created or joined a federation). */
  dataInfo(): LocalConfig['data'] | null {
    return this.local?.data ?? null;
  }

  /**
   * Hold this peer's local training: a round that starts training while paused waits until
   * resume (the aggregator goes on without its share when the deadline passes).
   */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.changed();
  }

  resume(): void {
    const wasPaused = this.paused;
    this.paused = false;
    const w = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const f of w) f();
    if (wasPaused) this.changed();
  }

  get isPaused(): boolean {
    return this.paused;
  }

  private get localFile(): string {
    return path.join(this.dir.root, 'peer.json');
  }
  private get invitesFile(): string {
    return path.join(this.dir.root, 'invites.json');
  }

  private async readLocal(): Promise<LocalConfig | null> {
    let text: string;
    try {
      text = await readFile(this.localFile, 'utf8');
    } catch {
      return null;
    }
    const parsed = localConfigSchema.safeParse(JSON.parse(text));
    if (!parsed.success) throw new Error(`${this.localFile} is invalid`);
    return parsed.data;
  }

  private async writeLocal(c: LocalConfig): Promise<void> {
    this.local = localConfigSchema.parse(c);
    await writeFileAtomic(this.localFile, JSON.stringify(this.local, null, 2) + '\n');
  }

  private async readInvites(): Promise<InviteTable> {
    try {
      const records = JSON.parse(await readFile(this.invitesFile, 'utf8')) as unknown;
      if (!Array.isArray(records)) throw new Error('not a list');
      return new InviteTable(records);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return new InviteTable();
      throw new Error(`${this.invitesFile} is invalid: ${oneLine(e)}`);
    }
  }

  private async saveFederation(): Promise<void> {
    const run = this.saveChain.then(async () => {
      if (this.fed === null) return;
      this.fed = await this.dir.writeFederation(this.fed);
    });
    this.saveChain = run.catch((e: unknown) => this.log(`cannot save federation.json: ${oneLine(e)}`));
    return run;
  }

  // ---- create, invite, join -------------------------------------------------------------------

  /** Create a new federation with this peer as its only member (does not start the peer). */
  async create(c: CreateSettings): Promise<FederationSettings> {
    if (this.fed !== null) throw new Error(`this data directory already belongs to federation "${this.fed.settings.federationName}"`);
    if ((c.method ?? 'spry') !== 'spry') throw new Error('only the spry method runs in a federation');
    const hp = HyperParams.parse(c.hp ?? {});
    if (!Number.isInteger(c.rounds) || c.rounds < 1) throw new Error('rounds must be a positive integer');
    if (!Number.isInteger(c.minMembers) || c.minMembers < 1) throw new Error('min members must be a positive integer');
    const model = ModelSpec.parse(c.model);
    const data = DataSpec.parse(c.data);
    const unsigned: FederationSettings = {
      federationId: randomBytes(16).toString('hex'),
      federationName: c.name,
      createdAt: Date.now(),
      model: model.model,
      method: 'spry',
      hyperparameters: Object.fromEntries(Object.entries(hp).filter(([, v]) => v !== undefined)) as Record<string, number | string | boolean>,
      roundDeadlineMs: c.roundDeadlineMs ?? 60_000,
      modelSpec: model,
      modelFingerprint: await modelFingerprint(resolveModelDir(model.model)),
      rounds: c.rounds,
      minMembers: c.minMembers,
      seed: c.seed ?? 0,
      creator: this.peerId,
    };
    const settings = await signSettings(unsigned, this.privateKey);
    const listen = this.options.listen ?? ['/ip4/127.0.0.1/tcp/0'];
    await this.writeLocal({ version: 1, name: c.peerName, data, listen, announce: this.options.announce });
    const self: PeerInfo = { peerId: this.peerId, name: c.peerName, multiaddrs: [], capacity: this.options.capacity ?? 1 };
    this.fed = await this.dir.writeFederation({
      version: 1,
      settings,
      swarmKey: Buffer.from(generateSwarmKey()).toString('hex'),
      bootstrap: [],
      members: [self],
      membershipVersion: 1,
    });
    return settings;
  }

  /** This peer's dialable addresses: the running node's, or those its config names. */
  addresses(): string[] {
    if (this.node !== null) {
      return this.node.getMultiaddrs().map((m) => m.toString()).filter((a) => !a.includes('/ip4/0.0.0.0/'));
    }
    const local = this.local;
    if (local === null) throw new Error('this peer has no configuration; create or join a federation first');
    const base = local.announce ?? local.listen;
    const out: string[] = [];
    for (const a of base) {
      if (a.includes('/ip4/0.0.0.0/')) {
        for (const list of Object.values(os.networkInterfaces())) {
          for (const i of list ?? []) if (i.family === 'IPv4') out.push(a.replace('/ip4/0.0.0.0/', `/ip4/${i.address}/`));
        }
      } else out.push(a);
    }
    if (out.some((a) => /\/tcp\/0(\/|$)/.test(a))) throw new Error('the peer listens on a random port: start it first, or give it a fixed --listen port');
    return out.map((a) => (a.includes('/p2p/') ? a : `${a}/p2p/${this.peerId}`)).slice(0, 16);
  }

  /** Issue an invite code; its uses are tracked in invites.json. */
  async invite(opts: { expiresMs?: number; uses?: number } = {}): Promise<string> {
    const fed = this.fed;
    if (fed === null) throw new Error('this peer belongs to no federation; create or join one first');
    const expiresAt = Date.now() + (opts.expiresMs ?? 24 * 3600 * 1000);
    const { code, invite } = await createInvite({
      privateKey: this.privateKey,
      federationId: fed.settings.federationId,
      federationName: fed.settings.federationName,
      swarmKey: Uint8Array.from(Buffer.from(fed.swarmKey, 'hex')),
      bootstrap: this.addresses(),
      expiresAt,
    });
    const run = this.inviteChain.then(async () => {
      const table = await this.readInvites();
      table.add(invite.inviteId, opts.uses ?? 1, expiresAt);
      await writeFileAtomic(this.invitesFile, JSON.stringify(table.toJSON(), null, 1) + '\n');
    });
    this.inviteChain = run.catch(() => {});
    await run;
    return code;
  }

  /** Revoke an invite issued here (by its code); the inviter refuses it from now on. */
  async revoke(code: string): Promise<void> {
    const fed = this.fed;
    if (fed === null) throw new Error('this peer belongs to no federation; create or join one first');
    const invite = decodeInvite(code, 0, { federationId: fed.settings.federationId });
    const run = this.inviteChain.then(async () => {
      const table = await this.readInvites();
      if (!table.revoke(invite.inviteId)) throw new Error('this invite was not issued by this peer');
      await writeFileAtomic(this.invitesFile, JSON.stringify(table.toJSON(), null, 1) + '\n');
    });
    this.inviteChain = run.catch(() => {});
    await run;
  }

  /** Join the federation of `code` with this peer's data, then start. */
  async join(code: string, peerName: string, data: z.input<typeof DataSpec>): Promise<void> {
    if (this.fed !== null) throw new Error(`this data directory already belongs to federation "${this.fed.settings.federationName}"`);
    const invite = decodeInvite(code);
    await verifyInviteSignature(invite);
    const dataSpec = DataSpec.parse(data);
    const listen = this.options.listen ?? ['/ip4/127.0.0.1/tcp/0'];
    const node = await createPeerNode({ privateKey: this.privateKey, swarmKey: invite.swarmKey, listen, announce: this.options.announce, ...this.gater() });
    try {
      const self: PeerInfo = {
        peerId: this.peerId,
        name: peerName,
        multiaddrs: node.getMultiaddrs().map((m) => m.toString()).slice(0, 16),
        capacity: this.options.capacity ?? 1,
      };
      const ask = async (fingerprint?: string) => {
        for (let attempt = 0; ; attempt++) {
          const { msg } = await request(node, invite.bootstrap.map((a) => multiaddr(a)), PROTOCOLS.join, { type: 'join-request', invite: code, peer: self, modelFingerprint: fingerprint }, { timeoutMs: 20_000 });
          // The inviter may be between elections: it says so, and we ask again.
          if (msg.type !== 'join-refused' || !msg.reason.includes('try again') || attempt >= 20) return msg;
          await sleep(500);
        }
      };
      // First the terms: a joiner whose base model differs stops here, before it is a member and
      // without using up the invite.
      let reply = await ask();
      let mine: string | undefined;
      if (reply.type === 'join-terms') reply = await ask((mine = await acceptTerms(reply.settings, invite.federationId)));
      if (reply.type !== 'join-accepted') throw new Error(`join refused: ${reply.type === 'join-terms' ? 'the inviter did not take this model fingerprint' : reply.reason}`);
      await acceptTerms(reply.settings, invite.federationId, mine);
      await this.writeLocal({ version: 1, name: peerName, data: dataSpec, listen, announce: this.options.announce });
      this.fed = await this.dir.writeFederation({
        version: 1,
        settings: reply.settings,
        swarmKey: Buffer.from(invite.swarmKey).toString('hex'),
        bootstrap: invite.bootstrap,
        members: reply.members,
        membershipVersion: reply.membershipVersion,
      });
      await this.startWith(node);
    } catch (e) {
      if (this.node === null) await Promise.resolve(node.stop()).catch(() => {});
      throw e;
    }
  }

  // ---- start and stop ------------------------------------------------------------------------

  private gater(): { connectionGater?: NonNullable<Parameters<typeof createPeerNode>[0]['connectionGater']> } {
    const blocked = this.options.blockedPeers;
    if (blocked === undefined) return {};
    const deny = (id: PeerId) => blocked.has(id.toString());
    return {
      connectionGater: {
        denyDialPeer: deny,
        denyInboundEncryptedConnection: deny,
        denyOutboundEncryptedConnection: deny,
      },
    };
  }

  /** The bytes this peer's node sent and received so far, per protocol id. */
  traffic(): Map<string, ProtocolTraffic> {
    return this.node === null ? new Map(this.lastTraffic) : trafficOf(this.node);
  }

  /** Where the time of each round went at this peer, oldest first. */
  timings(): RoundTiming[] {
    return [...this.roundTimings.values()].sort((a, b) => a.round - b.round);
  }

  private timing(round: number, role: RoundTiming['role']): RoundTiming {
    let t = this.roundTimings.get(round);
    if (t === undefined || t.role !== role) this.roundTimings.set(round, (t = { round, role }));
    return t;
  }

  /** Start this peer of its federation (after create, or after a restart). */
  async start(): Promise<void> {
    const fed = this.fed;
    if (fed === null || this.local === null) throw new Error('this peer belongs to no federation; create or join one first');
    const node = await createPeerNode({
      privateKey: this.privateKey,
      swarmKey: Uint8Array.from(Buffer.from(fed.swarmKey, 'hex')),
      listen: this.local.listen,
      announce: this.local.announce,
      ...this.gater(),
    });
    await this.startWith(node);
  }

  private async startWith(node: PeerNode): Promise<void> {
    const fed = this.fed!;
    const local = this.local!;
    this.node = node;
    this.stopped = false;
    for (const m of fed.members) this.memberInfo.set(m.peerId, m);
    // Our own addresses may have changed (a random port): record them.
    const me = this.memberInfo.get(this.peerId);
    if (me !== undefined) this.memberInfo.set(this.peerId, { ...me, multiaddrs: this.addresses() });
    for (const m of fed.members) {
      if (m.peerId === this.peerId) continue;
      const addrs = m.multiaddrs.flatMap((a) => {
        try {
          return [multiaddr(a)];
        } catch {
          return [];
        }
      });
      if (addrs.length > 0) await node.peerStore.merge(peerIdFromString(m.peerId), { multiaddrs: addrs }).catch(() => {});
    }
    // A member's identify tells its current listen addresses: record them, so that every member
    // can reach every other one (also one that joined later, or came back on a new port).
    node.addEventListener('peer:identify', (evt) => this.onIdentify(evt.detail.peerId.toString(), evt.detail.listenAddrs.map((a) => a.toString())));
    await this.registerHandlers(node);
    const settings = fed.settings;
    if (settings.modelSpec === undefined) throw new Error('the federation settings carry no model');
    // The election starts before the (slow) model load, so a joiner answers heartbeats at once.
    const latest = await this.dir.readLatestCheckpoint();
    const committedRound = latest?.entry.round ?? 0;
    this.currentRound = committedRound;
    this.committedSha = latest?.entry.sha256;
    this.committedTerm = latest?.entry.term ?? 0;
    // A staged round is no committed state, but it is Raft's last log entry: it counts in votes.
    this.staged = null;
    await this.dir.dropStaged(committedRound).catch(() => {});
    for (const e of (await this.dir.listStaged().catch(() => [])).reverse()) {
      const bytes = await this.dir.readStaged(e).catch(() => null);
      if (bytes !== null) {
        this.staged = { round: e.round, term: e.term, sha: e.sha256, bytes };
        break;
      }
    }

    // Say hello to every known member, so they learn our (possibly new) address.
    for (const m of fed.members) if (m.peerId !== this.peerId) void node.dial(peerIdFromString(m.peerId), { signal: AbortSignal.timeout(5000) }).catch(() => {});

    const raft = new RaftNode({
      id: this.peerId,
      members: fed.members.map((m) => m.peerId),
      membershipVersion: fed.membershipVersion,
      capacity: this.options.capacity ?? 1,
      electionTimeoutMs: this.options.electionTimeoutMs ?? 1000,
      ...(this.options.heartbeatIntervalMs ? { heartbeatIntervalMs: this.options.heartbeatIntervalMs } : {}),
      committedRound,
      committedTerm: this.committedTerm,
      ...(this.committedSha !== undefined ? { committedSha256: this.committedSha } : {}),
      ...(this.staged !== null ? { stagedRound: this.staged.round, stagedTerm: this.staged.term } : {}),
      preVote: this.options.preVote ?? true,
      initial: fed.raft,
      clock: {
        now: () => Date.now(),
        setTimer: (ms, fn) => {
          const t = setTimeout(fn, ms);
          return () => clearTimeout(t);
        },
      },
      transport: {
        send: (to, msg) => {
          if (this.stopped || this.node === null) return;
          let id: PeerId;
          try {
            id = peerIdFromString(to);
          } catch {
            return;
          }
          request(this.node, id, PROTOCOLS.raft, msg, { timeoutMs: 2000 }).catch(() => {});
        },
      },
      random: Math.random,
      persist: async (state) => {
        if (this.fed === null) return;
        this.fed = { ...this.fed, raft: state };
        await this.saveFederation();
      },
      onChange: (s) => {
        this.log(`${s.role} in term ${s.term}${s.leaderId ? `, leader ${short(s.leaderId)}` : ''}`);
        queueMicrotask(() => this.changed());
        if (s.role === 'leader' && this.leading !== s.term) {
          this.leading = s.term;
          void this.leadLoop(s.term);
        }
      },
      onLeaderCommittedRound: (round, leader, sha, term) => {
        this.learnCommitted(leader, round, sha, term).catch((e: unknown) => this.log(`catching up: ${oneLine(e)}`));
      },
      onMembersChange: (members, version) => {
        if (this.fed === null) return;
        const infos = members.map((id) => this.infoOf(id));
        this.fed = { ...this.fed, members: infos, membershipVersion: version };
        void this.saveFederation().catch(() => {});
        queueMicrotask(() => this.changed());
      },
      onError: (e) => this.log(`election: ${oneLine(e)}`),
    });
    this.raft = raft;
    raft.start();

    // The compute: one worker on this peer's own data.
    this.pool = new ComputePool(1);
    // The worker knows this peer's data under the peer id, so that the perturbation seeds the worker
    // draws (stepSeed(roundSeed, client, ·)) are the ones the aggregator regenerates for this sender.
    const split = local.data.split;
    const workerData = split.kind === 'local' ? { ...local.data, split: { ...split, client: this.peerId } } : local.data;
    this.workerClient = split.kind === 'local' ? this.peerId : local.name;
    const init = await this.pool.init(settings.modelSpec, workerData);
    if (latest !== null) {
      this.committed = parseCheckpoint(latest.bytes, init.specs);
      this.log(`resuming from committed round ${this.committed.round}`);
    } else {
      this.committed = { round: 0, globals: init.initial, server: emptyServerState() };
    }
    this.init = init;
    this.log(`peer ${short(this.peerId)} (${local.name}) started, ${fed.members.length} member(s), committed round ${this.committed.round}`);
    this.changed();
  }

  private onIdentify(id: string, listen: string[]): void {
    if (id === this.peerId || this.fed === null) return;
    const addrs = listen.filter((a) => !a.includes('/ip4/0.0.0.0/') && !a.includes('/ip6/::/')).slice(0, 16);
    if (addrs.length === 0) return;
    const prev = this.memberInfo.get(id);
    if (prev !== undefined && prev.multiaddrs.join('\n') === addrs.join('\n')) return;
    const info: PeerInfo = { ...(prev ?? { peerId: id, name: short(id), capacity: 0 }), multiaddrs: addrs };
    this.memberInfo.set(id, info);
    if (!this.fed.members.some((m) => m.peerId === id)) return;
    this.fed = { ...this.fed, members: this.fed.members.map((m) => (m.peerId === id ? { ...m, multiaddrs: addrs } : m)) };
    void this.saveFederation().catch(() => {});
  }

  /** Stop at once: no goodbye to the others (as a crash would, but with the files closed). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.raft?.stop();
    const node = this.node;
    const pool = this.pool;
    if (node !== null) this.lastTraffic = trafficOf(node);
    this.node = null;
    this.pool = null;
    await Promise.resolve(node?.stop()).catch(() => {});
    await pool?.close().catch(() => {});
    await this.saveChain.catch(() => {});
    const w = this.resumeWaiters;
    this.resumeWaiters = [];
    for (const f of w) f();
    this.changed();
  }

  status(): PeerStatus {
    const r = this.raft?.status();
    return {
      peerId: this.peerId,
      name: this.local?.name ?? '',
      federation: this.fed?.settings.federationName ?? null,
      members: r ? [...r.members] : (this.fed?.members.map((m) => m.peerId) ?? []),
      leader: r?.leaderId ?? null,
      term: r?.term ?? this.fed?.raft.term ?? 0,
      role: r && !this.stopped ? r.role : 'stopped',
      round: this.currentRound,
      committedRound: this.committed?.round ?? this.raft?.committedRound ?? 0,
      lastMetrics: this.lastMetric,
      training: this.trainingNow === null ? null : { ...this.trainingNow },
      paused: this.paused,
    };
  }

  // ---- handlers -------------------------------------------------------------------------------

  private isMember(id: string): boolean {
    return this.raft?.members.includes(id) ?? false;
  }

  private async registerHandlers(node: PeerNode): Promise<void> {
    const onError = (e: Error, from: PeerId) => this.log(`refused a stream from ${short(from.toString())}: ${oneLine(e)}`);
    await registerProtocol(
      node,
      PROTOCOLS.raft,
      (msg, from) => {
        const id = from.toString();
        // Only members take part in the election; anything else is ignored (as if lost).
        if (this.raft !== null && this.isMember(id)) this.raft.receive(id, msg);
        return { type: 'ack' };
      },
      { timeoutMs: 5000, onError },
    );
    await registerProtocol(node, PROTOCOLS.join, (msg, from) => this.onJoin(msg, from.toString()), { timeoutMs: 20_000, onError });
    await registerProtocol(node, PROTOCOLS.admit, (msg, from) => this.onAdmit(msg.peer, from.toString()), { onError });
    await registerProtocol(node, PROTOCOLS.round, (msg, from) => this.onAnnounce(msg, from.toString()), { onError });
    await registerProtocol(node, PROTOCOLS.weights, (msg, from) => this.onFetch(msg.sha256, from.toString()), { timeoutMs: 120_000, onError });
    await registerProtocol(node, PROTOCOLS.update, (msg, from, data) => this.onUpdate(msg, from.toString(), data), { timeoutMs: 120_000, onError });
    await registerProtocol(node, PROTOCOLS.commit, (msg, from, data) => this.onCommit(msg.term, msg.round, msg.sha256, msg.prevSha256, from.toString(), data), { timeoutMs: 120_000, onError });
    await registerProtocol(node, PROTOCOLS.checkpoint, (msg, from) => this.onCheckpointFetch(msg.round, from.toString()), { timeoutMs: 120_000, onError });
  }

  private async onJoin({ invite: code, peer: info, modelFingerprint: theirs }: JoinRequest, from: string) {
    const refuse = (reason: string) => {
      this.log(`join refused for ${short(from)}: ${reason}`);
      return { type: 'join-refused' as const, reason: reason.slice(0, 500) };
    };
    const fed = this.fed;
    const raft = this.raft;
    if (fed === null || raft === null) return refuse('this peer is not running a federation');
    if (info.peerId !== from) return refuse('the peer info names another peer');
    let membership: Membership;
    try {
      const invite = decodeInvite(code, Date.now(), { federationId: fed.settings.federationId });
      await verifyInviteSignature(invite, [this.peerId]);
      if (this.isMember(from)) membership = this.membership();
      else {
        (await this.readInvites()).check(invite.inviteId);
        const want = fed.settings.modelFingerprint;
        if (want !== undefined && theirs === undefined) return { type: 'join-terms' as const, settings: fed.settings };
        if (want !== undefined && theirs !== want)
          return refuse(`the joiner's base model is not the federation's (fingerprint ${theirs!.slice(0, 12)}…, expected ${want.slice(0, 12)}…)`);
        // The invite is used up only once the newcomer is a member: a failed admission leaves it as it was.
        const run = this.inviteChain.then(async () => {
          const table = await this.readInvites();
          table.consume(invite.inviteId);
          const admitted = await this.admit(info);
          await writeFileAtomic(this.invitesFile, JSON.stringify(table.toJSON(), null, 1) + '\n');
          return admitted;
        });
        this.inviteChain = run.catch(() => {});
        membership = await run;
        this.log(`${info.name} (${short(from)}) joined`);
      }
    } catch (e) {
      if (e instanceof InviteError || e instanceof AdmitError) return refuse(e.message);
      throw e;
    }
    return {
      type: 'join-accepted' as const,
      settings: fed.settings,
      ...membership,
      leader: raft.leaderId,
      committedRound: this.committed?.round ?? 0,
    };
  }

  /** Make `info` a member: here when this peer is the aggregator, else through the aggregator. */
  private async admit(info: PeerInfo): Promise<Membership> {
    const raft = this.raft!;
    if (raft.isLeader) return this.addMember(info);
    const leader = raft.leaderId;
    if (leader === null || this.node === null) throw new AdmitError('the federation is electing its aggregator; try again in a few seconds');
    let reply;
    try {
      reply = (await request(this.node, peerIdFromString(leader), PROTOCOLS.admit, { type: 'admit-request', peer: info }, { timeoutMs: 10_000 })).msg;
    } catch (e) {
      throw new AdmitError(`the aggregator cannot be reached (${oneLine(e).slice(0, 200)}); try again`);
    }
    if (reply.type !== 'admit-accepted') throw new AdmitError(`the aggregator did not admit the newcomer (${reply.reason.slice(0, 200)}); try again`);
    for (const m of reply.members) if (!this.memberInfo.has(m.peerId)) this.memberInfo.set(m.peerId, m);
    return { members: reply.members, membershipVersion: reply.membershipVersion };
  }

  /** Aggregator: add `info` to the membership, which Raft's heartbeats carry to every member. */
  private addMember(info: PeerInfo): Membership {
    if (!this.isMember(info.peerId)) {
      this.memberInfo.set(info.peerId, { ...info, multiaddrs: info.multiaddrs.slice(0, 16) });
      if (!this.raft!.setMembers([...this.raft!.members, info.peerId])) throw new AdmitError('the aggregator lost its role; try again');
    }
    return this.membership();
  }

  /** Aggregator: a member that accepted an invite asks to add the newcomer it vouches for. */
  private onAdmit(info: PeerInfo, from: string): AdmitAccepted | ErrorReply {
    if (this.raft === null || !this.isMember(from)) return { type: 'error', reason: 'only a member can admit a newcomer' };
    try {
      const membership = this.addMember(info);
      this.log(`${info.name} (${short(info.peerId)}) joined, invited by ${short(from)}`);
      return { type: 'admit-accepted', ...membership };
    } catch (e) {
      return { type: 'error', reason: oneLine(e).slice(0, 500) };
    }
  }

  private membership(): Membership {
    const st = this.raft!.status();
    return { members: st.members.map((id) => this.infoOf(id)), membershipVersion: st.membershipVersion };
  }

  /** What this peer knows of a member (a name and addresses come with its join, or later). */
  private infoOf(id: string): PeerInfo {
    return this.memberInfo.get(id) ?? { peerId: id, name: short(id), multiaddrs: [], capacity: 0 };
  }

  private onAnnounce(msg: RoundAnnounce, from: string) {
    const raft = this.raft;
    if (raft === null) return { type: 'error' as const, reason: 'not running' };
    if (msg.term !== raft.term || raft.leaderId !== from) return { type: 'error' as const, reason: `not the aggregator of term ${raft.term}` };
    this.currentRound = Math.max(this.currentRound, msg.round);
    this.changed();
    // A peer still loading its model joins in as soon as it is ready (the deadline decides).
    // The announce says which round is committed: promote (or fetch) it, beside the training (which
    // starts from the announced adapter: committed, staged, or fetched).
    if (msg.committedRound !== undefined) {
      void this.learnCommitted(from, msg.committedRound, msg.committedSha256, msg.committedTerm).catch((e: unknown) => this.log(`catching up: ${oneLine(e)}`));
    }
    void this.whenReady(msg.deadline)
      .then(() => this.participate(msg, from)).catch((e: unknown) => this.log(`round ${msg.round}: ${oneLine(e)}`));
    return { type: 'ack' as const };
  }

  private onFetch(sha: string, from: string) {
    if (!this.isMember(from) || this.committed === null || this.init === null) return { type: 'error' as const, reason: 'not a member' };
    if (hashWeights(this.committed.globals, this.init.specs) !== sha) return { type: 'error' as const, reason: 'no global adapter with that sha256 here' };
    const { layout, data } = packWeights(this.committed.globals, this.init.specs);
    return withData<WeightsFetchResponse | ErrorReply>({ type: 'weights-fetch-response', round: this.committed.round, sha256: sha, dtype: 'float32', layout }, data);
  }

  private onUpdate(msg: UpdateSubmission, from: string, data: Uint8Array | undefined) {
    try {
      this.acceptUpdate(from, msg, data);
      return { type: 'ack' as const };
    } catch (e) {
      const reason = oneLine(e);
      const c = this.collecting;
      if (c !== null && c.term === msg.term && c.round === msg.round) c.refused.add(from);
      this.log(`rejected the update of ${short(from)}: ${reason}`);
      return { type: 'error' as const, reason };
    }
  }

  /** Check an update against the round in progress and keep it; throws a one-line reason. */
  private acceptUpdate(from: string, msg: Omit<UpdateSubmission, 'dataBytes' | 'dataSha256'>, data: Uint8Array | undefined): void {
    const c = this.collecting;
    const init = this.init;
    if (c === null || init === null || this.raft?.term !== c.term || !this.raft.isLeader) throw new Error('no round in progress here');
    if (msg.term !== c.term || msg.round !== c.round) throw new Error(`update for term ${msg.term} round ${msg.round}, collecting term ${c.term} round ${c.round}`);
    const assigned = c.plan.assignment.get(from);
    if (assigned === undefined || assigned.length === 0) throw new Error('sender was not assigned units this round');
    if (assigned.join('\n') !== msg.units.join('\n')) throw new Error('units differ from the assignment');
    if (c.updates.has(from)) throw new Error('a second update for this round');
    if (Date.now() > c.deadline) throw new Error('update arrived after the deadline');
    if (msg.numExamples < 1 || msg.numExamples > 1e9) throw new Error('bad example count');
    const hp = HyperParams.parse(this.fed!.settings.hyperparameters ?? {});
    if (perIteration(methodSpec(this.fed!.settings.method ?? 'spry'), hp)) {
      // Per-iteration Spry: K float32 jvp scalars; the aggregator regenerates the perturbations.
      if (msg.kind !== 'jvp' || msg.layout !== undefined) throw new Error('expected jvp scalars (per-iteration Spry), got weights');
      const k = hp.k ?? 1;
      const got = (data?.byteLength ?? 0) / 4;
      if (data === undefined || got !== k) throw new Error(`expected ${k} jvp scalar(s), got ${got}`);
      const jvp = Array.from(new Float32Array(new Uint8Array(data).buffer));
      if (!jvp.every(Number.isFinite)) throw new Error('a jvp scalar has a non-finite value');
      c.updates.set(from, { client: from, units: [...assigned], numExamples: msg.numExamples, loss: msg.loss ?? NaN, jvp });
      return;
    }
    if (msg.kind === 'jvp') throw new Error('expected weights (per-epoch Spry), got jvp scalars');
    const names = tensorsOf(init.units, assigned);
    const bySpec = new Map(init.specs.map((s) => [s.name, s]));
    const expected: TensorSpec[] = names.map((n) => bySpec.get(n)!);
    const weights = unpackWeights(msg.layout, data, expected);
    c.updates.set(from, { client: from, units: [...assigned], numExamples: msg.numExamples, loss: msg.loss ?? NaN, weights });
  }

  /** The submission of this peer's update: its weights, or its K jvp scalars (per-iteration). */
  private buildSubmission(term: number, round: number, units: string[], update: ClientUpdate): { msg: Submission; data: Uint8Array } {
    const init = this.init!;
    const settings = this.fed!.settings;
    const hp = HyperParams.parse(settings.hyperparameters ?? {});
    const head = { type: 'update-submission' as const, term, round, units, numExamples: update.numExamples, loss: Number.isFinite(update.loss) ? update.loss : undefined, dtype: 'float32' as const };
    if (perIteration(methodSpec(settings.method ?? 'spry'), hp)) {
      let jvp = Float32Array.from(update.jvp ?? []);
      if (this.options.tamperJvp) jvp = Float32Array.from(this.options.tamperJvp(round, jvp));
      return { msg: { ...head, kind: 'jvp' }, data: new Uint8Array(jvp.buffer, jvp.byteOffset, jvp.byteLength) };
    }
    const names = tensorsOf(init.units, units);
    const bySpec = new Map(init.specs.map((s) => [s.name, s]));
    let weights = update.weights ?? new Map();
    if (this.options.tamperUpdate) weights = this.options.tamperUpdate(round, weights);
    const { layout, data } = packLoose(weights, names.map((n) => bySpec.get(n)!));
    return { msg: { ...head, layout }, data };
  }

  /** Any member: a committed checkpoint, by round, for a member that lacks it. */
  private async onCheckpointFetch(round: number, from: string) {
    if (!this.isMember(from)) return { type: 'error' as const, reason: 'not a member' };
    try {
      const { entry, bytes } = await this.dir.readCheckpoint(round);
      return withData<CheckpointFetchResponse | ErrorReply>({ type: 'checkpoint-fetch-response', round, sha256: entry.sha256, ...(entry.term !== undefined ? { term: entry.term } : {}) }, bytes);
    } catch (e) {
      return { type: 'error' as const, reason: oneLine(e) };
    }
  }

  /** Member: fetch the committed rounds up to `target` that we lack from `leader`, oldest first. */
  private catchUpTo(leader: string, target: number): Promise<void> {
    const run = this.catchChain.then(() => this.catchUp(leader, target));
    this.catchChain = run.catch(() => {});
    return run;
  }

  private async catchUp(leader: string, target: number): Promise<void> {
    await this.whenReady(Date.now() + 120_000);
    const t0 = Date.now();
    let fetched = 0;
    for (;;) {
      const raft = this.raft;
      if (this.stopped || raft === null || this.node === null || raft.leaderId !== leader) return;
      const have = this.committed!.round;
      if (target <= have) break;
      // Every round we lack, oldest first, so our history is the federation's.
      const round = have + 1;
      const res = await request(this.node, peerIdFromString(leader), PROTOCOLS.checkpoint, { type: 'checkpoint-fetch-request', round }, { timeoutMs: 60_000 });
      if (res.msg.type !== 'checkpoint-fetch-response') throw new Error(`the aggregator has no round ${round}: ${res.msg.reason}`);
      const data = res.data!;
      if (sha256Hex(data) !== res.msg.sha256) throw new Error(`round ${round}'s checkpoint does not match its sha256`);
      const cp = parseCheckpoint(data, this.init!.specs);
      if (cp.round !== round) throw new Error(`asked for round ${round}, got round ${cp.round}`);
      if (this.committed!.round >= round) continue; // a commit-request got there first
      await this.dir.commitCheckpoint(round, data, res.msg.term);
      this.setCommitted(cp, res.msg.sha256, res.msg.term ?? 0);
      fetched++;
    }
    await this.dropStagedUpTo(this.committed!.round);
    if (fetched > 0) this.changed();
    if (fetched > 0) this.log(`caught up: fetched ${fetched} committed round(s) in ${Date.now() - t0} ms, now at round ${this.committed!.round}`);
  }

  /** This peer's committed state moved to `cp` (already in the data directory). */
  private setCommitted(cp: Checkpoint, sha: string, term: number): void {
    this.committed = cp;
    this.committedSha = sha;
    this.committedTerm = term;
    this.raft?.setCommittedRound(cp.round, sha, term);
    this.currentRound = Math.max(this.currentRound, cp.round);
  }

  private async dropStagedUpTo(round: number): Promise<void> {
    if (this.staged !== null && this.staged.round <= round) this.staged = null;
    await this.dir.dropStaged(round).catch((e: unknown) => this.log(`cannot remove a staged checkpoint: ${oneLine(e)}`));
  }

  /**
   * Member: the aggregator `leader` says round `round` (sha256 `sha`, term `term`) is committed.
   * Promote our staged copy when it is that one, else fetch the committed rounds we lack.
   */
  private learnCommitted(leader: string, round: number, sha: string | undefined, term: number | undefined): Promise<void> {
    if (this.committed !== null && round <= this.committed.round) return Promise.resolve();
    const run = this.catchChain.then(async () => {
      await this.whenReady(Date.now() + 120_000);
      if (this.stopped || this.committed!.round >= round) return;
      const st = this.staged;
      if (st !== null && sha !== undefined && st.round === round && st.sha === sha && this.committed!.round === round - 1) {
        const cp = parseCheckpoint(st.bytes, this.init!.specs);
        const t = term ?? st.term;
        // The staged file becomes the committed one; should it be gone, the bytes held here are written.
        const file = this.dir.stagedPath(round, st.term, sha);
        await this.dir.promoteStaged({ round, term: st.term, sha256: sha, file }, t).catch((e: unknown) => {
          this.log(`round ${round}: ${oneLine(e)}; writing it again`);
          return this.dir.commitCheckpoint(round, st.bytes, t);
        });
        this.setCommitted(cp, sha, t);
        await this.dropStagedUpTo(round);
        this.log(`round ${round} committed (${sha.slice(0, 12)})`);
        this.changed();
        void this.evaluate(round).catch((e: unknown) => this.log(`evaluation of round ${round}: ${oneLine(e)}`));
        return;
      }
      await this.catchUp(leader, round);
    });
    this.catchChain = run.catch(() => {});
    return run;
  }

  /** Member: stage the aggregator's checkpoint of `round`; it is committed here only later. */
  private async onCommit(term: number, round: number, sha: string, prevSha: string | undefined, from: string, data: Uint8Array | undefined): Promise<CommitAck | ErrorReply> {
    const raft = this.raft;
    const ack = (ok: boolean, reason?: string): CommitAck => ({ type: 'commit-ack', term, round, sha256: sha, ok, ...(reason ? { reason: reason.slice(0, 500) } : {}) });
    if (raft === null || this.init === null) return ack(false, 'not running');
    if (term !== raft.term || raft.leaderId !== from) return ack(false, `not the aggregator of term ${raft.term}`);
    if (data === undefined || sha256Hex(data) !== sha) return ack(false, 'checkpoint missing or not matching its sha256');
    try {
      const cp = parseCheckpoint(data, this.init.specs);
      if (cp.round !== round) throw new Error('checkpoint is of another round');
      // The aggregator committed round - 1: so must we (promoted, or fetched), the same one.
      if (this.committed !== null && round > this.committed.round + 1) {
        await this.learnCommitted(from, round - 1, prevSha, undefined).catch((e: unknown) => this.log(`catching up before round ${round}: ${oneLine(e)}`));
      }
      if (this.committed !== null && round <= this.committed.round) {
        const mine = await this.dir.readCheckpoint(round).catch(() => null);
        if (mine?.entry.sha256 === sha) return ack(true);
        throw new Error(`round ${round} is behind this peer's committed round ${this.committed.round}`);
      }
      if (this.committed === null || this.committed.round !== round - 1) throw new Error(`round ${round - 1} is not committed here yet`);
      if (prevSha !== undefined && this.committedSha !== undefined && prevSha !== this.committedSha) {
        throw new Error(`round ${round - 1} committed here differs from the aggregator's`);
      }
      if (raft.term !== term || raft.leaderId !== from) throw new Error(`not the aggregator of term ${raft.term}`);
      await this.dir.stageCheckpoint(round, term, data);
      this.staged = { round, term, sha, bytes: data };
      raft.setStaged(round, term);
      this.currentRound = Math.max(this.currentRound, round);
      this.log(`round ${round} staged (${sha.slice(0, 12)})`);
      return ack(true);
    } catch (e) {
      return ack(false, oneLine(e));
    }
  }

  // ---- member side of a round ----------------------------------------------------------------

  private async whenReady(deadline: number): Promise<void> {
    while (this.init === null || this.committed === null) {
      if (this.stopped || Date.now() > deadline) throw new Error('not ready before the deadline');
      await sleep(50);
    }
  }

  private async participate(msg: RoundAnnounce, leader: string): Promise<void> {
    const mine = msg.assignment[this.peerId];
    if (mine === undefined || mine.length === 0) return;
    this.training = msg.round;
    const timing = this.timing(msg.round, 'member');
    let t = Date.now();
    const globals = await this.globalsFor(msg.globalSha256, msg.round, leader);
    timing.fetchMs = Date.now() - t;
    t = Date.now();
    const update = await this.train(msg, globals, mine, () => this.training === msg.round && this.raft?.term === msg.term);
    timing.trainMs = Date.now() - t;
    if (this.stopped || this.node === null) return;
    const { msg: submission, data } = this.buildSubmission(msg.term, msg.round, mine, update);
    if (this.options.beforeSubmit) await this.options.beforeSubmit(msg.round, submission, data, leader);
    if (this.stopped || this.node === null) return;
    t = Date.now();
    const res = await request(this.node, peerIdFromString(leader), PROTOCOLS.update, submission, { data, timeoutMs: 60_000 });
    timing.submitMs = Date.now() - t;
    if (res.msg.type === 'error') this.log(`round ${msg.round}: the aggregator refused the update: ${res.msg.reason}`);
  }

  /** The global adapter with this hash: ours, or fetched from the aggregator. */
  private async globalsFor(sha: string, round: number, leader: string): Promise<Weights> {
    const init = this.init!;
    const c = this.committed!;
    if (hashWeights(c.globals, init.specs) === sha) return c.globals;
    // The round the announce builds on may be staged here, its promotion on its way.
    const st = this.staged;
    if (st !== null && st.round === round - 1) {
      try {
        const g = parseCheckpoint(st.bytes, init.specs).globals;
        if (hashWeights(g, init.specs) === sha) return g;
      } catch {
        // fall back to fetching
      }
    }
    this.log(`round ${round}: fetching the global adapter ${sha.slice(0, 12)}`);
    const res = await request(this.node!, peerIdFromString(leader), PROTOCOLS.weights, { type: 'weights-fetch-request', round, sha256: sha }, { timeoutMs: 60_000 });
    if (res.msg.type !== 'weights-fetch-response') throw new Error(`cannot fetch the global adapter: ${res.msg.reason}`);
    const w = unpackWeights(res.msg.layout, res.data, init.specs);
    if (hashWeights(w, init.specs) !== sha) throw new Error('fetched global adapter does not match its announced sha256');
    return w;
  }

  /** Train this peer's units; `current` is asked once the worker is free, to skip a stale round. */
  private async train(msg: RoundAnnounce, globals: Weights, units: string[], current: () => boolean): Promise<ClientUpdate> {
    const prev = this.trainChain;
    let release!: () => void;
    this.trainChain = new Promise<void>((r) => (release = r));
    try {
      await prev;
      while (this.paused && !this.stopped) await new Promise<void>((r) => this.resumeWaiters.push(r));
      if (this.stopped) throw new Error('the peer stopped');
      if (!current()) throw new Error('round abandoned before training started');
      const hp = HyperParams.parse(msg.hyperparameters);
      const round = msg.round;
      const progress: TrainingProgress = { round, step: 0, steps: 0 };
      this.trainingNow = progress;
      this.changed();
      const reply = await this.pool!.run<'train'>(
        {
          type: 'train',
          client: this.workerClient,
          roundSeed: roundSeed(msg.seed, msg.round),
          method: 'spry',
          hp,
          units,
          globals,
        },
        (m) => {
          progress.step = m.step;
          progress.steps = m.steps;
          this.emit('step', { round, step: m.step, steps: m.steps, loss: m.loss, memory: m.memory, done: false });
        },
      );
      this.peakMemory = {
        tensorBytes: Math.max(this.peakMemory.tensorBytes, reply.memory.peakTensorBytes),
        rss: Math.max(this.peakMemory.rss, reply.memory.rss),
      };
      this.emit('step', { round, step: progress.steps, steps: progress.steps, loss: reply.result?.loss ?? NaN, memory: reply.memory, done: true });
      return reply.result;
    } finally {
      if (this.trainingNow !== null) {
        this.trainingNow = null;
        this.changed();
      }
      release();
    }
  }

  /** The highest tensor memory and RSS this peer's compute worker reached while training. */
  memoryPeak(): { tensorBytes: number; rss: number } {
    return { ...this.peakMemory };
  }

  /** The newest committed global adapter, with what an export needs to describe it. */
  committedAdapter(): { round: number; globals: Weights; init: InitReply } {
    if (this.committed === null || this.init === null) throw new Error('this peer is not running');
    return { round: this.committed.round, globals: this.committed.globals, init: this.init };
  }

  /** Evaluate the newest committed adapter (round 0: the initial one) on this peer's test split. */
  async evaluateCommitted(): Promise<RoundMetric> {
    const c = this.committed;
    if (this.pool === null || c === null) throw new Error('this peer is not running');
    const r = await this.pool.run<'evaluate'>({ type: 'evaluate', client: this.workerClient, globals: c.globals, batchSize: 32 });
    const accuracy = this.init!.labels.length > 0 && r.result.total > 0 ? r.result.correct / r.result.total : null;
    return { round: c.round, peer: this.local!.name, testLoss: r.result.loss, accuracy, at: Date.now() };
  }

  private async evaluate(round: number, extra: Partial<RoundMetric> = {}): Promise<void> {
    if (this.pool === null || this.committed?.round !== round) return;
    const metric: RoundMetric = { ...(await this.evaluateCommitted()), ...extra };
    this.lastMetric = metric;
    await this.dir.appendMetric({ ...metric });
    this.emit('round', { ...metric });
    this.changed();
    this.log(`round ${round}: test loss ${metric.testLoss.toFixed(4)}${metric.accuracy === null ? '' : `, accuracy ${(100 * metric.accuracy).toFixed(1)}%`}`);
  }

  // ---- aggregator side ------------------------------------------------------------------------

  private leaderOf(term: number): boolean {
    return !this.stopped && this.raft !== null && this.raft.isLeader && this.raft.term === term;
  }

  private async leadLoop(term: number): Promise<void> {
    const settings = this.fed!.settings;
    const rounds = settings.rounds ?? 1;
    const minMembers = settings.minMembers ?? 1;
    while (this.leaderOf(term)) {
      if (this.init === null || this.committed === null) {
        await sleep(100);
        continue;
      }
      // A round we hold staged may have been committed by the previous aggregator: commit it again,
      // in this term, before anything else (Raft's leader completeness).
      const st = this.staged;
      if (st !== null && st.round <= this.committed.round) await this.dropStagedUpTo(this.committed.round);
      else if (st !== null && st.round === this.committed.round + 1) {
        try {
          const cp = parseCheckpoint(st.bytes, this.init.specs);
          this.log(`round ${st.round}: committing again the checkpoint staged in term ${st.term}`);
          await this.commitRound(term, cp, st.bytes, st.sha);
          await this.dropStagedUpTo(cp.round);
          this.log(`round ${st.round} committed by a majority (again, ${st.sha.slice(0, 12)})`);
          void this.evaluate(cp.round).catch((e: unknown) => this.log(`evaluation of round ${cp.round}: ${oneLine(e)}`));
        } catch (e) {
          this.log(`round ${st.round}: ${oneLine(e)}`);
          await sleep(500);
        }
        continue;
      }
      const next = this.committed!.round + 1;
      if (next > rounds) {
        await sleep(250);
        continue;
      }
      // Ready: answered a heartbeat of this term (so it knows who leads and serves our protocols)
      // and still connected.
      const answered = this.raft!.followerCommittedRounds();
      const connected = this.raft!.members.filter(
        (m) => m === this.peerId || (answered.has(m) && (this.node?.getConnections(peerIdFromString(m)).length ?? 0) > 0),
      );
      // The first round waits for minMembers; later ones need a majority, so that they can commit.
      const needed = this.committed.round === 0 ? minMembers : Math.floor(this.raft!.members.length / 2) + 1;
      if (connected.length < needed) {
        await sleep(200);
        continue;
      }
      try {
        await this.runRound(term, next, [...connected].sort());
      } catch (e) {
        this.log(`round ${next} failed: ${oneLine(e)}`);
        await sleep(500);
      }
    }
    if (this.leading === term) this.leading = null;
    this.collecting = null;
  }

  private async runRound(term: number, round: number, participants: string[]): Promise<void> {
    const t0 = Date.now();
    const settings = this.fed!.settings;
    const init = this.init!;
    const base = this.committed!;
    const hp = HyperParams.parse(settings.hyperparameters ?? {});
    // A fresh strategy over a copy of the committed server state: a failed round leaves no trace.
    const server: ServerOptState = { m: copyWeights(base.server.m), v: copyWeights(base.server.v) };
    const strategy = new Strategy(methodSpec(settings.method ?? 'spry'), hp, init.specs, init.units, settings.seed ?? 0, server);
    const plan = strategy.configure(round, participants);
    const deadlineMs = settings.roundDeadlineMs ?? 60_000;
    const deadline = Date.now() + deadlineMs;
    const announce: RoundAnnounce = {
      type: 'round-announce',
      term,
      round,
      assignment: Object.fromEntries(plan.assignment),
      seed: settings.seed ?? 0,
      hyperparameters: settings.hyperparameters ?? {},
      globalSha256: hashWeights(base.globals, init.specs),
      deadline,
      committedRound: base.round,
      ...(this.committedSha !== undefined ? { committedSha256: this.committedSha } : {}),
      committedTerm: this.committedTerm,
    };
    const c: Collecting = { term, round, plan, deadline, updates: new Map(), expected: new Set(), refused: new Set() };
    this.collecting = c;
    this.currentRound = round;
    this.changed();
    const timing = this.timing(round, 'aggregator');
    this.log(`round ${round}: announcing to ${participants.length} member(s)`);
    await Promise.all(
      participants.map(async (p) => {
        if ((plan.assignment.get(p) ?? []).length === 0) return;
        if (p === this.peerId) {
          c.expected.add(p);
          return;
        }
        try {
          const res = await request(this.node!, peerIdFromString(p), PROTOCOLS.round, announce, { timeoutMs: 10_000 });
          if (res.msg.type === 'ack') c.expected.add(p);
          else this.log(`round ${round}: ${short(p)} refused the announce: ${res.msg.reason}`);
        } catch (e) {
          this.log(`round ${round}: cannot reach ${short(p)}: ${oneLine(e)}`);
        }
      }),
    );
    timing.announceMs = Date.now() - t0;
    const tCollect = Date.now();
    // The aggregator trains its own share too, through the same checks as everyone else's.
    if (c.expected.has(this.peerId)) {
      void (async () => {
        const mine = plan.assignment.get(this.peerId)!;
        const t = Date.now();
        const update = await this.train(announce, base.globals, mine, () => this.collecting === c);
        timing.trainMs = Date.now() - t;
        const { msg, data } = this.buildSubmission(term, round, mine, update);
        this.acceptUpdate(this.peerId, msg, data);
      })().catch((e: unknown) => {
        c.refused.add(this.peerId);
        this.log(`round ${round}: own update: ${oneLine(e)}`);
      });
    }
    // Wait for every expected update; a member whose connection stays down for a while (crashed,
    // cut off) is not waited for: its contribution is lost to this round, nothing more.
    const goneSince = new Map<string, number>();
    const waitingFor = (p: string) => {
      if (c.updates.has(p) || c.refused.has(p)) return false;
      if (p === this.peerId) return true;
      if ((this.node?.getConnections(peerIdFromString(p)).length ?? 0) > 0) {
        goneSince.delete(p);
        return true;
      }
      const since = goneSince.get(p) ?? Date.now();
      goneSince.set(p, since);
      if (Date.now() - since < MEMBER_GONE_MS) return true;
      c.refused.add(p);
      this.log(`round ${round}: ${short(p)} is gone; not waiting for its update`);
      return false;
    };
    while (this.leaderOf(term) && Date.now() < deadline && [...c.expected].filter(waitingFor).length > 0) await sleep(50);
    if (!this.leaderOf(term)) throw new Error('lost the aggregator role');
    this.collecting = null;
    timing.collectMs = Date.now() - tCollect;
    const updates = [...c.updates.values()];
    if (updates.length === 0) throw new Error('no update arrived before the deadline');
    const tAgg = Date.now();
    const globals = strategy.aggregate(plan, base.globals, updates);
    const cp: Checkpoint = { round, globals, server: strategy.server };
    const bytes = serializeCheckpoint(cp, settings.federationId);
    const sha = sha256Hex(bytes);
    timing.aggregateMs = Date.now() - tAgg;
    const tCommit = Date.now();
    await this.commitRound(term, cp, bytes, sha);
    timing.commitMs = Date.now() - tCommit;
    timing.totalMs = Date.now() - t0;
    const examples = updates.reduce((s, u) => s + u.numExamples, 0);
    const trainLoss = updates.reduce((s, u) => s + (Number.isFinite(u.loss) ? u.loss * u.numExamples : 0), 0) / examples;
    this.log(`round ${round} committed by a majority (${updates.length}/${participants.length} updates, ${sha.slice(0, 12)})`);
    void this.evaluate(round, { trainLoss, updates: updates.length, participants: participants.length, wallMs: Date.now() - t0 }).catch((e: unknown) =>
      this.log(`evaluation of round ${round}: ${oneLine(e)}`),
    );
  }

  /**
   * Stage the checkpoint at the others until a majority (this peer included) holds it, then commit
   * it here; the members promote their staged copies when heartbeats or the next announce tell them.
   * Storing here last means an aggregator cut off in a minority never keeps a round that the
   * federation did not commit; staging at the members means they do not either.
   */
  private async commitRound(term: number, cp: Checkpoint, bytes: Uint8Array, sha: string): Promise<void> {
    const stored = new Set<string>([this.peerId]);
    const majority = () => Math.floor(this.raft!.members.length / 2) + 1;
    if (this.options.beforeCommitRequest) await this.options.beforeCommitRequest(cp.round);
    const prevSha256 = cp.round > 1 ? this.committedSha : undefined;
    for (let attempt = 0; ; attempt++) {
      if (!this.leaderOf(term)) throw new Error('lost the aggregator role before the commit');
      const others = this.raft!.members.filter((m) => !stored.has(m));
      await Promise.all(
        others.map(async (p) => {
          try {
            const res = await request(this.node!, peerIdFromString(p), PROTOCOLS.commit, { type: 'commit-request', term, round: cp.round, sha256: sha, ...(prevSha256 !== undefined ? { prevSha256 } : {}) }, { data: bytes, timeoutMs: 30_000 });
            if (res.msg.type === 'commit-ack' && res.msg.ok) stored.add(p);
            else this.log(`round ${cp.round}: ${short(p)} did not store: ${res.msg.type === 'error' ? res.msg.reason : (res.msg.reason ?? '')}`);
          } catch (e) {
            if (attempt === 0) this.log(`round ${cp.round}: cannot commit at ${short(p)}: ${oneLine(e)}`);
          }
        }),
      );
      if (stored.size >= majority()) break;
      await sleep(1000);
    }
    if (!this.leaderOf(term)) throw new Error('lost the aggregator role before the commit');
    // A majority staged it: it is committed. Store it here; a storage failure is retried with these
    // same bytes (never another checkpoint for this round in this term).
    for (;;) {
      try {
        await this.dir.commitCheckpoint(cp.round, bytes, term);
        break;
      } catch (e) {
        if (!this.leaderOf(term)) throw e;
        this.log(`round ${cp.round}: cannot store the committed checkpoint: ${oneLine(e)}`);
        await sleep(1000);
      }
    }
    this.setCommitted(cp, sha, term);
    this.changed();
  }
}

function copyWeights(w: Weights): Weights {
  return new Map([...w].map(([k, v]) => [k, new Float32Array(v)]));
}

/** packWeights that tolerates missing tensors (sent as they are; the receiver refuses them). */
function packLoose(weights: Weights, specs: TensorSpec[]): { layout: { name: string; shape: number[]; offset: number }[]; data: Uint8Array } {
  const present = specs.filter((s) => weights.has(s.name));
  const out: Float32Array[] = [];
  const layout: { name: string; shape: number[]; offset: number }[] = [];
  let at = 0;
  for (const s of present) {
    const w = weights.get(s.name)!;
    out.push(w);
    // the actual length decides the shape on the wire, so a wrong-sized tensor shows as such
    layout.push({ name: s.name, shape: w.length === s.shape.reduce((a, b) => a * b, 1) ? [...s.shape] : [w.length], offset: at * 4 });
    at += w.length;
  }
  const all = new Float32Array(at);
  let p = 0;
  for (const w of out) {
    all.set(w, p);
    p += w.length;
  }
  return { layout, data: new Uint8Array(all.buffer) };
}

export function short(id: string): string {
  return id.length > 12 ? `…${id.slice(-8)}` : id;
}

export async function openPeer(options: PeerOptions): Promise<Peer> {
  return Peer.open(options);
}
