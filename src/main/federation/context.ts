// What the roles of a peer share (js-libp2p's components pattern): the Peer builds one context and
// hands it to the aggregator, the member and the membership, none of which imports another's file
// except the aggregator, which trains through the member. It holds the node, the election, the data
// directory, the compute pool, the committed state, the events, the timings, and the wire types.
import type { Collapse } from '../../shared/collapse.ts';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import { peerIdFromString } from '@libp2p/peer-id';
import { z } from 'zod';
import type { PeerNode } from './node.ts';
import { request, trafficOf, type ProtocolTraffic } from './wire.ts';
import { RaftNode, type RaftStatus } from './raft.ts';
import { Leadership } from './leadership.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { DataDir, FederationFile } from '../storage/data_dir.ts';
import type { ComputePool } from '../compute/pool.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { PROTOCOLS, type PeerInfo, type UpdateSubmission } from '../../shared/messages.ts';
import { DataSpec, ModelSpec, type InitReply, type MemorySample } from '../../shared/worker_protocol.ts';
import type { HyperParams } from '../../shared/methods.ts';
import type { TensorSpec, Weights } from '../../shared/units.ts';

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
  /** Raft base election timeout, the least it adapts to (default 1000 ms; timeouts fall in [T, 2.5 T]). */
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
  /**
   * Test hook: peers (by id) this node neither dials nor accepts directly, only through a relay,
   * as two members behind NATs would be.
   */
  noDirect?: ReadonlySet<string>;
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
  /** Aggregator: the event loop's worst delay during the round (what heartbeats waited behind). */
  maxLagMs?: number;
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
  /** Members with a public address that relay for those behind a NAT (multiaddrs with /p2p/). */
  relays?: string[];
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
  /** Per class: test examples predicted as it, and of it (classification only; for collapse checks). */
  predicted?: number[];
  actual?: number[];
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
  /** A committed round's adapter predicts one class, or does worse than round 0 (src/shared/collapse.ts). */
  collapse: Collapse;
  /** What happened to a round on the aggregator (started, failed, refused an update, committed), for the interface's timeline. */
  timeline: TimelineReport;
}
export type PeerEventName = keyof PeerEvents;

/** One entry of the round timeline; the interface checks it against TimelineEntry (src/shared/api.ts). */
export type TimelineReport = { kind: 'round-started' | 'round-failed' | 'update-refused' | 'phase' | 'round-committed' | 'evaluations' } & Record<string, unknown>;

/** A member's copy of the aggregator's checkpoint: stored, not known to be committed yet. */
export interface Staged {
  round: number;
  term: number;
  sha: string;
  bytes: Uint8Array;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 400);

export function short(id: string): string {
  return id.length > 12 ? `…${id.slice(-8)}` : id;
}

export class PeerContext {
  readonly options: PeerOptions;
  readonly dir: DataDir;
  readonly privateKey: PrivateKey;
  readonly peerId: string;
  readonly log: (line: string) => void;

  fed: FederationFile | null = null;
  local: LocalConfig | null = null;
  node: PeerNode | null = null;
  raft: RaftNode | null = null;
  /** Adapts the election timeout to round trips and event-loop lag (see leadership.ts). */
  leadership: Leadership | null = null;
  pool: ComputePool | null = null;
  init: InitReply | null = null;
  memberInfo = new Map<string, PeerInfo>();
  committed: Checkpoint | null = null;
  /** sha256 of the committed checkpoint file, and the term it was committed in. */
  committedSha: string | undefined;
  committedTerm = 0;
  /** Member side: the checkpoint it stored on a commit-request, not yet known to be committed. */
  staged: Staged | null = null;
  currentRound = 0;
  lastMetric: RoundMetric | null = null;
  stopped = false;
  /** The client id of this peer's data in its worker, and in the perturbation seeds: its peer id. */
  workerClient = '';
  trainingNow: TrainingProgress | null = null;
  paused = false;
  resumeWaiters: (() => void)[] = [];
  private saveChain: Promise<void> = Promise.resolve();
  private roundTimings = new Map<number, RoundTiming>();
  lastTraffic = new Map<string, ProtocolTraffic>();
  private listeners: { [E in PeerEventName]: Set<(payload: PeerEvents[E]) => void> } = { status: new Set(), round: new Set(), step: new Set(), timeline: new Set(), collapse: new Set() };

  constructor(options: PeerOptions, dir: DataDir, key: PrivateKey, peerId: string) {
    this.options = options;
    this.dir = dir;
    this.privateKey = key;
    this.peerId = peerId;
    this.log = options.log ?? (() => {});
  }

  // ---- events ---------------------------------------------------------------------------------

  /** A member's name in the federation file (its short id when it has none). */
  nameOf(id: string): string {
    return this.fed?.members.find((m) => m.peerId === id)?.name || short(id);
  }

  on<E extends PeerEventName>(event: E, fn: (payload: PeerEvents[E]) => void): () => void {
    this.listeners[event].add(fn);
    return () => this.off(event, fn);
  }

  off<E extends PeerEventName>(event: E, fn: (payload: PeerEvents[E]) => void): void {
    this.listeners[event].delete(fn);
  }

  emit<E extends PeerEventName>(event: E, payload: PeerEvents[E]): void {
    for (const fn of [...this.listeners[event]]) {
      try {
        fn(payload);
      } catch {
        // a listener's failure never reaches the federation's work
      }
    }
  }

  /** Tell listeners that status() may have changed. */
  changed(): void {
    if (this.listeners.status.size > 0) this.emit('status', this.status());
  }

  // ---- timings and traffic --------------------------------------------------------------------

  timings(): RoundTiming[] {
    return [...this.roundTimings.values()].sort((a, b) => a.round - b.round);
  }

  timing(round: number, role: RoundTiming['role']): RoundTiming {
    let t = this.roundTimings.get(round);
    if (t === undefined || t.role !== role) this.roundTimings.set(round, (t = { round, role }));
    return t;
  }

  traffic(): Map<string, ProtocolTraffic> {
    return this.node === null ? new Map(this.lastTraffic) : trafficOf(this.node);
  }

  // ---- membership and committed state ---------------------------------------------------------

  isMember(id: string): boolean {
    return this.raft?.members.includes(id) ?? false;
  }

  /** This peer's committed state moved to `cp` (already in the data directory). */
  setCommitted(cp: Checkpoint, sha: string, term: number): void {
    this.committed = cp;
    this.committedSha = sha;
    this.committedTerm = term;
    this.raft?.setCommittedRound(cp.round, sha, term);
    this.currentRound = Math.max(this.currentRound, cp.round);
  }

  // ---- local files ----------------------------------------------------------------------------

  get localFile(): string {
    return path.join(this.dir.root, 'peer.json');
  }

  async readLocal(): Promise<LocalConfig | null> {
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

  async writeLocal(c: LocalConfig): Promise<void> {
    this.local = localConfigSchema.parse(c);
    await writeFileAtomic(this.localFile, JSON.stringify(this.local, null, 2) + '\n');
  }

  /** Write federation.json, one write at a time (the newest state wins). */
  saveFederation(): Promise<void> {
    const run = this.saveChain.then(async () => {
      if (this.fed === null) return;
      this.fed = await this.dir.writeFederation(this.fed);
    });
    this.saveChain = run.catch((e: unknown) => this.log(`cannot save federation.json: ${oneLine(e)}`));
    return run;
  }

  /** Resolves once every queued federation.json write is done. */
  saved(): Promise<void> {
    return this.saveChain.catch(() => {});
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
}

/** What the election calls back into the roles. */
export interface ElectionHooks {
  /** This peer became the leader of `term`. */
  lead(term: number): void;
  /** The leader says `round` (sha256, term) is committed. */
  learnCommitted(leader: string, round: number, sha: string | undefined, term: number | undefined): Promise<void>;
  infoOf(id: string): PeerInfo;
  /** The membership went from `before` to `after`. */
  membersChanged(before: readonly string[], after: readonly string[]): void;
}

/** The aggregator election over libp2p, persisted in federation.json. */
export function electionOf(ctx: PeerContext, committedRound: number, hooks: ElectionHooks): RaftNode {
  const fed = ctx.fed!;
  const o = ctx.options;
  const base = o.electionTimeoutMs ?? 1000;
  const leadership = new Leadership(base, o.heartbeatIntervalMs ?? base / 5, ctx.log);
  ctx.leadership = leadership;
  const raft = new RaftNode({
    id: ctx.peerId,
    members: fed.members.map((m) => m.peerId),
    membershipVersion: fed.membershipVersion,
    capacity: o.capacity ?? 1,
    electionTimeoutMs: base,
    ...(o.heartbeatIntervalMs ? { heartbeatIntervalMs: o.heartbeatIntervalMs } : {}),
    committedRound,
    committedTerm: ctx.committedTerm,
    ...(ctx.committedSha !== undefined ? { committedSha256: ctx.committedSha } : {}),
    ...(ctx.staged !== null ? { stagedRound: ctx.staged.round, stagedTerm: ctx.staged.term } : {}),
    preVote: o.preVote ?? true,
    initial: fed.raft,
    clock: leadership.clock(),
    transport: {
      send: (to, msg) => {
        if (ctx.stopped || ctx.node === null) return;
        let id: PeerId;
        try {
          id = peerIdFromString(to);
        } catch {
          return;
        }
        const t0 = Date.now();
        request(ctx.node, id, PROTOCOLS.raft, msg, { timeoutMs: Math.max(2000, raft.electionTimeoutMs) }).then(
          () => leadership.observeRtt(Date.now() - t0),
          () => {},
        );
      },
    },
    random: Math.random,
    persist: async (state) => {
      if (ctx.fed === null) return;
      ctx.fed = { ...ctx.fed, raft: state };
      await ctx.saveFederation();
    },
    onChange: (s) => {
      ctx.log(`${s.role} in term ${s.term}${s.leaderId ? `, leader ${short(s.leaderId)}` : ''}`);
      queueMicrotask(() => ctx.changed());
      if (s.role === 'leader') hooks.lead(s.term);
    },
    onLeaderCommittedRound: (round, leader, sha, term) => {
      hooks.learnCommitted(leader, round, sha, term).catch((e: unknown) => ctx.log(`catching up: ${oneLine(e)}`));
    },
    onMembersChange: (members, version) => {
      if (ctx.fed === null) return;
      const before = ctx.fed.members.map((m) => m.peerId);
      ctx.fed = { ...ctx.fed, members: members.map((id) => hooks.infoOf(id)), membershipVersion: version };
      hooks.membersChanged(before, members);
      void ctx.saveFederation().catch(() => {});
      queueMicrotask(() => ctx.changed());
    },
    onError: (e) => ctx.log(`election: ${oneLine(e)}`),
  });
  leadership.start(raft);
  return raft;
}
