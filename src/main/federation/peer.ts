// A federation peer, headless (plain Node): it wires the parts (js-libp2p's components pattern)
// around one shared PeerContext: its data directory and identity, its libp2p node, the aggregator
// election (RaftNode over libp2p), its compute worker, and the roles:
//   membership.ts  who may be a member: create, invite, revoke, join, admit
//   member.ts      a member's round: announce, fetch, train, submit, stage, catch up, evaluate
//   aggregator.ts  the elected leader's round: collect, aggregate, commit at a majority
// How a round runs: aggregator.ts; how a newcomer joins: membership.ts.
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import type { z } from 'zod';
import { createPeerNode, type PeerNode } from './node.ts';
import { registerProtocol, trafficOf, type ProtocolTraffic } from './wire.ts';
import { parseCheckpoint } from './checkpoint.ts';
import { electionOf, oneLine, PeerContext, short, type CreateSettings, type LocalConfig, type ModelInfo, type PeerEventName, type PeerEvents, type PeerOptions, type PeerStatus, type RoundMetric, type RoundTiming } from './context.ts';
import { Membership, type InviteOptions, type PendingJoin } from './membership.ts';
import { Member } from './member.ts';
import { Aggregator } from './aggregator.ts';
import { findCorrupt, repairFromMembers } from './integrity.ts';
import { recordStatus } from './status_file.ts';
import { openDataDir, type DataDir } from '../storage/data_dir.ts';
import { ComputePool } from '../compute/pool.ts';
import { emptyServerState } from '../spry/server_optimizer.ts';
import { PROTOCOLS, type FederationSettings } from '../../shared/messages.ts';
import type { DataSpec, InitReply } from '../../shared/worker_protocol.ts';
import type { Weights } from '../../shared/units.ts';

export * from './context.ts';
export { signSettings, verifySettings, checkModel, readPending, requestOfRunningPeer, type InviteOptions, type PendingJoin } from './membership.ts';
export { readRecordedStatus } from './status_file.ts';

export class Peer {
  /** The parts, for tests and tools that need one role's seam. */
  readonly ctx: PeerContext;
  readonly membership: Membership;
  readonly member: Member;
  readonly aggregator: Aggregator;
  private stopRecording: (() => void) | null = null;

  private constructor(ctx: PeerContext) {
    this.ctx = ctx;
    this.membership = new Membership(ctx);
    this.member = new Member(ctx);
    this.aggregator = new Aggregator(ctx, this.member);
  }

  /** Open (creating when needed) the data directory and the identity; starts nothing. */
  static async open(options: PeerOptions): Promise<Peer> {
    const dir = await openDataDir(options.dataDir);
    const key = await dir.loadOrCreateIdentity();
    const ctx = new PeerContext(options, dir, key, peerIdFromPrivateKey(key).toString());
    ctx.fed = await dir.readFederation();
    ctx.local = await ctx.readLocal();
    return new Peer(ctx);
  }

  get options(): PeerOptions {
    return this.ctx.options;
  }
  get dir(): DataDir {
    return this.ctx.dir;
  }
  get privateKey(): PrivateKey {
    return this.ctx.privateKey;
  }
  get peerId(): string {
    return this.ctx.peerId;
  }
  get node(): PeerNode | null {
    return this.ctx.node;
  }
  get settings(): FederationSettings | null {
    return this.ctx.fed?.settings ?? null;
  }

  // ---- events and what the interface reads ---------------------------------------------------

  /** Listen to `event`; returns the function that stops listening. */
  on<E extends PeerEventName>(event: E, fn: (payload: PeerEvents[E]) => void): () => void {
    return this.ctx.on(event, fn);
  }

  off<E extends PeerEventName>(event: E, fn: (payload: PeerEvents[E]) => void): void {
    this.ctx.off(event, fn);
  }

  status(): PeerStatus {
    return this.ctx.status();
  }

  /** The model this peer computes with (null until its worker has loaded it). */
  modelInfo(): ModelInfo | null {
    const i = this.ctx.init;
    if (i === null) return null;
    return { family: i.family, backend: i.backend, lora: { ...i.lora, targetModules: [...i.lora.targetModules] }, specs: i.specs, units: i.units, labels: [...i.labels] };
  }

  /** This peer's own data (null before it created or joined a federation). */
  dataInfo(): LocalConfig['data'] | null {
    return this.ctx.local?.data ?? null;
  }

  /** The bytes this peer's node sent and received so far, per protocol id. */
  traffic(): Map<string, ProtocolTraffic> {
    return this.ctx.traffic();
  }

  /** Where the time of each round went at this peer, oldest first. */
  timings(): RoundTiming[] {
    return this.ctx.timings();
  }

  committedAdapter(): { round: number; globals: Weights; init: InitReply } {
    return this.member.committedAdapter();
  }

  evaluateCommitted(): Promise<RoundMetric> {
    return this.member.evaluateCommitted();
  }

  /**
   * Hold this peer's local training: a round that starts training while paused waits until
   * resume (the aggregator goes on without its share when the deadline passes).
   */
  pause(): void {
    if (this.ctx.paused) return;
    this.ctx.paused = true;
    this.ctx.changed();
  }

  resume(): void {
    const wasPaused = this.ctx.paused;
    this.ctx.paused = false;
    this.wakeTraining();
    if (wasPaused) this.ctx.changed();
  }

  get isPaused(): boolean {
    return this.ctx.paused;
  }

  private wakeTraining(): void {
    const w = this.ctx.resumeWaiters;
    this.ctx.resumeWaiters = [];
    for (const f of w) f();
  }

  // ---- membership -----------------------------------------------------------------------------

  create(c: CreateSettings): Promise<FederationSettings> {
    return this.membership.create(c);
  }

  /** This peer's dialable addresses: the running node's, or those its config names. */
  addresses(): string[] {
    return this.ctx.addresses();
  }

  /** Issue an invite code: bound to `opts.for` (peer ids), or else a newcomer waits for approval. */
  invite(opts: InviteOptions = {}): Promise<string> {
    return this.membership.invite(opts);
  }

  /** Newcomers waiting for a member's approval here (they hold an invite bound to nobody). */
  pending(): Promise<PendingJoin[]> {
    return this.membership.pending();
  }

  approve(peerId: string): Promise<string> {
    return this.membership.approve(peerId);
  }

  /** Evict a member: its connections close, it cannot connect again, and gets no further rounds. */
  remove(peerId: string): Promise<string> {
    return this.membership.remove(peerId);
  }

  revoke(code: string): Promise<void> {
    return this.membership.revoke(code);
  }

  /** Join the federation of `code` with this peer's data, then start. */
  join(code: string, peerName: string, data: z.input<typeof DataSpec>): Promise<void> {
    // With relays, the node starts again with them (it must reserve a slot to be reachable).
    return this.membership.join(code, peerName, data, async (node) => {
      if (!this.ctx.fed?.settings.relays?.length) return this.startWith(node);
      await node.stop();
      await this.start();
    });
  }

  // ---- start and stop ------------------------------------------------------------------------

  /** Start this peer of its federation (after create, or after a restart). */
  async start(): Promise<void> {
    const { ctx } = this;
    const { fed, local } = ctx;
    if (fed === null || local === null) throw new Error('this peer belongs to no federation; create or join one first');
    const node = await createPeerNode({
      privateKey: ctx.privateKey,
      swarmKey: Uint8Array.from(Buffer.from(fed.swarmKey, 'hex')),
      listen: local.listen,
      announce: local.announce,
      ...this.membership.gater(),
      ...(fed.settings.relays?.length ? { relays: fed.settings.relays, relayServer: fed.settings.relays.some((a) => a.endsWith(`/p2p/${ctx.peerId}`)) } : {}),
    });
    await this.startWith(node);
  }

  private async startWith(node: PeerNode): Promise<void> {
    const ctx = this.ctx;
    const fed = ctx.fed!;
    const local = ctx.local!;
    ctx.node = node;
    ctx.stopped = false;
    for (const m of fed.members) ctx.memberInfo.set(m.peerId, m);
    // Our own addresses may have changed (a random port): record them.
    const me = ctx.memberInfo.get(ctx.peerId);
    if (me !== undefined) ctx.memberInfo.set(ctx.peerId, { ...me, multiaddrs: ctx.addresses() });
    for (const m of fed.members) if (m.peerId !== ctx.peerId) await this.membership.remember(node, m.peerId, m.multiaddrs);
    node.addEventListener('peer:identify', (evt) => this.membership.onIdentify(evt.detail.peerId.toString(), evt.detail.listenAddrs.map((a) => a.toString())));
    await this.registerHandlers(node);
    this.membership.attach(node);
    const settings = fed.settings;
    if (settings.modelSpec === undefined) throw new Error('the federation settings carry no model');
    // The election starts before the (slow) model load, so a joiner answers heartbeats at once.
    const corrupt = await findCorrupt(ctx);
    const latest = await ctx.dir.readLatestCheckpoint();
    const committedRound = latest?.entry.round ?? 0;
    ctx.currentRound = committedRound;
    ctx.committedSha = latest?.entry.sha256;
    ctx.committedTerm = latest?.entry.term ?? 0;
    // A staged round is no committed state, but it is Raft's last log entry: it counts in votes.
    ctx.staged = null;
    await ctx.dir.dropStaged(committedRound).catch(() => {});
    for (const e of (await ctx.dir.listStaged().catch(() => [])).reverse()) {
      const bytes = await ctx.dir.readStaged(e).catch(() => null);
      if (bytes !== null) {
        ctx.staged = { round: e.round, term: e.term, sha: e.sha256, bytes };
        break;
      }
    }

    // Say hello to every known member, so they learn our (possibly new) address.
    for (const m of fed.members) if (m.peerId !== ctx.peerId) void node.dial(peerIdFromString(m.peerId), { signal: AbortSignal.timeout(5000) }).catch(() => {});

    ctx.raft = electionOf(ctx, committedRound, {
      lead: (term) => this.aggregator.lead(term),
      learnCommitted: (leader, round, sha, term) => this.member.learnCommitted(leader, round, sha, term),
      infoOf: (id) => this.membership.infoOf(id),
      membersChanged: (before, after) => this.membership.onMembersChange(before, after),
    });
    ctx.raft.start();
    if (corrupt.length > 0) void repairFromMembers(ctx, corrupt).catch((e: unknown) => ctx.log(`repairing checkpoints: ${oneLine(e)}`));

    // The compute: one worker on this peer's own data.
    ctx.pool = new ComputePool(1);
    // The worker knows this peer's data under the peer id, so that the perturbation seeds the worker
    // draws (stepSeed(roundSeed, client, ·)) are the ones the aggregator regenerates for this sender.
    const split = local.data.split;
    const workerData = split.kind === 'local' ? { ...local.data, split: { ...split, client: ctx.peerId } } : local.data;
    ctx.workerClient = split.kind === 'local' ? ctx.peerId : local.name;
    const init = await ctx.pool.init(settings.modelSpec, workerData);
    if (latest !== null) {
      ctx.committed = parseCheckpoint(latest.bytes, init.specs);
      ctx.log(`resuming from committed round ${ctx.committed.round}`);
    } else {
      ctx.committed = { round: 0, globals: init.initial, server: emptyServerState() };
    }
    ctx.init = init;
    this.stopRecording = recordStatus(ctx);
    ctx.log(`peer ${short(ctx.peerId)} (${local.name}) started, ${fed.members.length} member(s), committed round ${ctx.committed.round}`);
    ctx.changed();
  }

  private async registerHandlers(node: PeerNode): Promise<void> {
    const ctx = this.ctx;
    const onError = (e: Error, from: PeerId) => ctx.log(`refused a stream from ${short(from.toString())}: ${oneLine(e)}`);
    const { membership, member, aggregator } = this;
    await registerProtocol(
      node,
      PROTOCOLS.raft,
      (msg, from) => {
        const id = from.toString();
        // Only members take part in the election; anything else is ignored (as if lost).
        if (ctx.raft !== null && ctx.isMember(id)) ctx.raft.receive(id, msg);
        return { type: 'ack' };
      },
      { timeoutMs: 5000, onError },
    );
    await registerProtocol(node, PROTOCOLS.join, (msg, from) => membership.onJoin(msg, from.toString()), { timeoutMs: 20_000, onError });
    await registerProtocol(node, PROTOCOLS.admit, (msg, from) => membership.onAdmit(msg.peer, from.toString()), { onError });
    await registerProtocol(node, PROTOCOLS.remove, (msg, from) => membership.onRemove(msg.peerId, from.toString()), { onError });
    await registerProtocol(node, PROTOCOLS.round, (msg, from) => member.onAnnounce(msg, from.toString()), { onError });
    await registerProtocol(node, PROTOCOLS.weights, (msg, from) => member.onFetch(msg.sha256, from.toString()), { timeoutMs: 120_000, onError });
    await registerProtocol(node, PROTOCOLS.update, (msg, from, data) => aggregator.onUpdate(msg, from.toString(), data), { timeoutMs: 120_000, onError });
    await registerProtocol(node, PROTOCOLS.commit, (msg, from, data) => member.onCommit(msg.term, msg.round, msg.sha256, msg.prevSha256, from.toString(), data, msg.summary), { timeoutMs: 120_000, onError });
    await registerProtocol(node, PROTOCOLS.checkpoint, (msg, from) => member.onCheckpointFetch(msg.round, from.toString()), { timeoutMs: 120_000, onError });
  }

  /** Stop at once: no goodbye to the others (as a crash would, but with the files closed). */
  async stop(): Promise<void> {
    const ctx = this.ctx;
    ctx.stopped = true;
    ctx.raft?.stop();
    ctx.leadership?.stop();
    this.membership.detach();
    this.stopRecording?.();
    this.stopRecording = null;
    const { node, pool } = ctx;
    if (node !== null) ctx.lastTraffic = trafficOf(node);
    ctx.node = null;
    ctx.pool = null;
    await Promise.resolve(node?.stop()).catch(() => {});
    await pool?.close().catch(() => {});
    await ctx.saved();
    this.wakeTraining();
    ctx.changed();
  }
}
