// The aggregator's round. Rounds are driven by the elected leader, which is the aggregator and a
// member like the others (it trains its own share through member.ts):
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
import { peerIdFromString } from '@libp2p/peer-id';
import { request, sha256Hex } from './wire.ts';
import { copyWeights, hashWeights, parseCheckpoint, serializeCheckpoint, unpackWeights, type Checkpoint } from './checkpoint.ts';
import { oneLine, short, sleep, type PeerContext } from './context.ts';
import type { Member } from './member.ts';
import { Leadership } from './leadership.ts';
import { Strategy, type RoundPlan } from '../spry/strategy.ts';
import type { ServerOptState } from '../spry/server_optimizer.ts';
import { PROTOCOLS, type CommitRequest, type RoundAnnounce, type UpdateSubmission } from '../../shared/messages.ts';
import { HyperParams, methodSpec, perIteration } from '../../shared/methods.ts';
import { tensorsOf, type TensorSpec } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';

/** How long an expected member may stay disconnected before a round stops waiting for it. */
const MEMBER_GONE_MS = 1500;

interface Collecting {
  term: number;
  round: number;
  plan: RoundPlan;
  deadline: number;
  updates: Map<string, ClientUpdate>;
  expected: Set<string>;
  /** Members whose update was refused: the round does not wait for them. */
  refused: Set<string>;
  /** The evaluation each counted update carried (its sender's newest committed round), for the app. */
  evaluations: Map<string, { round: number; testLoss: number; accuracy: number | null }>;
}

export class Aggregator {
  private readonly ctx: PeerContext;
  private readonly member: Member;
  private collecting: Collecting | null = null;
  private leading: number | null = null;

  constructor(ctx: PeerContext, member: Member) {
    this.ctx = ctx;
    this.member = member;
  }

  /** The election made this peer the leader of `term`: run rounds while it stays so. */
  lead(term: number): void {
    if (this.leading === term) return;
    this.leading = term;
    void this.leadLoop(term);
  }

  private leaderOf(term: number): boolean {
    const { raft } = this.ctx;
    return !this.ctx.stopped && raft !== null && raft.isLeader && raft.term === term;
  }

  private async leadLoop(term: number): Promise<void> {
    const ctx = this.ctx;
    const settings = ctx.fed!.settings;
    const rounds = settings.rounds ?? 1;
    const minMembers = settings.minMembers ?? 1;
    while (this.leaderOf(term)) {
      if (ctx.init === null || ctx.committed === null) {
        await sleep(100);
        continue;
      }
      // A round we hold staged may have been committed by the previous aggregator: commit it again,
      // in this term, before anything else (Raft's leader completeness).
      const st = ctx.staged;
      if (st !== null && st.round <= ctx.committed.round) await this.member.dropStagedUpTo(ctx.committed.round);
      else if (st !== null && st.round === ctx.committed.round + 1) {
        try {
          const cp = parseCheckpoint(st.bytes, ctx.init.specs);
          ctx.log(`round ${st.round}: committing again the checkpoint staged in term ${st.term}`);
          await this.commitRound(term, cp, st.bytes, st.sha);
          await this.member.dropStagedUpTo(cp.round);
          ctx.log(`round ${st.round} committed by a majority (again, ${st.sha.slice(0, 12)})`);
          void this.member.evaluate(cp.round).catch((e: unknown) => ctx.log(`evaluation of round ${cp.round}: ${oneLine(e)}`));
        } catch (e) {
          ctx.log(`round ${st.round}: ${oneLine(e)}`);
          await sleep(500);
        }
        continue;
      }
      const next = ctx.committed.round + 1;
      if (next > rounds) {
        await sleep(250);
        continue;
      }
      // Ready: answered a heartbeat of this term (so it knows who leads and serves our protocols)
      // and still connected.
      const answered = ctx.raft!.followerCommittedRounds();
      const connected = ctx.raft!.members.filter(
        (m) => m === ctx.peerId || (answered.has(m) && (ctx.node?.getConnections(peerIdFromString(m)).length ?? 0) > 0),
      );
      // The first round waits for minMembers; later ones need a majority, so that they can commit.
      const needed = ctx.committed.round === 0 ? minMembers : Math.floor(ctx.raft!.members.length / 2) + 1;
      if (connected.length < needed) {
        await sleep(200);
        continue;
      }
      // How long the event loop stalled during the round: what heartbeats and votes waited behind.
      const lag = Leadership.lagProbe();
      try {
        await this.runRound(term, next, [...connected].sort());
      } catch (e) {
        ctx.log(`round ${next} failed: ${oneLine(e)}`);
        ctx.emit('timeline', { kind: 'round-failed', round: next, term, reason: oneLine(e) });
        await sleep(500);
      } finally {
        const ms = Math.round(lag());
        ctx.timing(next, 'aggregator').maxLagMs = ms;
        ctx.log(`round ${next}: the event loop lagged at most ${ms} ms`);
      }
    }
    if (this.leading === term) this.leading = null;
    this.collecting = null;
  }

  private async runRound(term: number, round: number, participants: string[]): Promise<void> {
    const ctx = this.ctx;
    const t0 = Date.now();
    const settings = ctx.fed!.settings;
    const init = ctx.init!;
    const base = ctx.committed!;
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
      ...(ctx.committedSha !== undefined ? { committedSha256: ctx.committedSha } : {}),
      committedTerm: ctx.committedTerm,
    };
    const c: Collecting = { term, round, plan, deadline, updates: new Map(), expected: new Set(), refused: new Set(), evaluations: new Map() };
    this.collecting = c;
    ctx.currentRound = round;
    ctx.emit('timeline', { kind: 'round-started', round, term, attempt: 1, aggregator: ctx.nameOf(ctx.peerId), participants: participants.map((p) => ctx.nameOf(p)) });
    ctx.changed();
    const timing = ctx.timing(round, 'aggregator');
    ctx.log(`round ${round}: announcing to ${participants.length} member(s)`);
    await Promise.all(
      participants.map(async (p) => {
        if ((plan.assignment.get(p) ?? []).length === 0) return;
        if (p === ctx.peerId) {
          c.expected.add(p);
          return;
        }
        try {
          const res = await request(ctx.node!, peerIdFromString(p), PROTOCOLS.round, announce, { timeoutMs: 10_000 });
          if (res.msg.type === 'ack') c.expected.add(p);
          else ctx.log(`round ${round}: ${short(p)} refused the announce: ${res.msg.reason}`);
        } catch (e) {
          ctx.log(`round ${round}: cannot reach ${short(p)}: ${oneLine(e)}`);
        }
      }),
    );
    timing.announceMs = Date.now() - t0;
    const tCollect = Date.now();
    // The aggregator trains its own share too, through the same checks as everyone else's.
    if (c.expected.has(ctx.peerId)) {
      void (async () => {
        const mine = plan.assignment.get(ctx.peerId)!;
        const t = Date.now();
        const update = await this.member.train(announce, base.globals, mine, () => this.collecting === c);
        timing.trainMs = Date.now() - t;
        const { msg, data } = this.member.buildSubmission(term, round, mine, update);
        this.acceptUpdate(ctx.peerId, msg, data);
      })().catch((e: unknown) => {
        c.refused.add(ctx.peerId);
        ctx.log(`round ${round}: own update: ${oneLine(e)}`);
        ctx.emit('timeline', { kind: 'update-refused', round, member: ctx.nameOf(ctx.peerId), reason: oneLine(e) });
      });
    }
    // Wait for every expected update; a member whose connection stays down for a while (crashed,
    // cut off) is not waited for: its contribution is lost to this round, nothing more.
    const goneSince = new Map<string, number>();
    const waitingFor = (p: string) => {
      if (c.updates.has(p) || c.refused.has(p)) return false;
      if (p === ctx.peerId) return true;
      if ((ctx.node?.getConnections(peerIdFromString(p)).length ?? 0) > 0) {
        goneSince.delete(p);
        return true;
      }
      const since = goneSince.get(p) ?? Date.now();
      goneSince.set(p, since);
      if (Date.now() - since < MEMBER_GONE_MS) return true;
      c.refused.add(p);
      ctx.log(`round ${round}: ${short(p)} is gone; not waiting for its update`);
      ctx.emit('timeline', { kind: 'update-refused', round, member: ctx.nameOf(p), reason: 'its connection was lost; the round went on without its update' });
      return false;
    };
    while (this.leaderOf(term) && Date.now() < deadline && [...c.expected].filter(waitingFor).length > 0) await sleep(50);
    if (!this.leaderOf(term)) throw new Error('lost the aggregator role');
    this.collecting = null;
    timing.collectMs = Date.now() - tCollect;
    const updates = [...c.updates.values()];
    if (updates.length === 0) throw new Error('no update arrived before the deadline');
    const tAgg = Date.now();
    ctx.emit('timeline', { kind: 'phase', round, phase: 'aggregating' });
    const globals = strategy.aggregate(plan, base.globals, updates);
    const cp: Checkpoint = { round, globals, server: strategy.server };
    const bytes = serializeCheckpoint(cp, settings.federationId);
    const sha = sha256Hex(bytes);
    timing.aggregateMs = Date.now() - tAgg;
    const examples = updates.reduce((s, u) => s + u.numExamples, 0);
    const trainLoss = updates.reduce((s, u) => s + (Number.isFinite(u.loss) ? u.loss * u.numExamples : 0), 0) / examples;
    const evaluations = [...c.evaluations].slice(0, 24).map(([p, e]) => ({ member: ctx.nameOf(p).slice(0, 64), ...e }));
    const summary = { trainLoss: Number.isFinite(trainLoss) ? trainLoss : null, updates: updates.length, participants: participants.length, wallMs: Date.now() - t0, ...(evaluations.length ? { evaluations } : {}) };
    const tCommit = Date.now();
    ctx.emit('timeline', { kind: 'phase', round, phase: 'committing' });
    await this.commitRound(term, cp, bytes, sha, summary);
    timing.commitMs = Date.now() - tCommit;
    timing.totalMs = Date.now() - t0;
    ctx.log(`round ${round} committed by a majority (${updates.length}/${participants.length} updates, ${sha.slice(0, 12)})`);
    ctx.emit('timeline', { kind: 'round-committed', round, term, aggregator: ctx.nameOf(ctx.peerId), participants: participants.length, updates: updates.length, members: [...c.updates.keys()].map((p) => ctx.nameOf(p)) });
    if (evaluations.length) ctx.emit('timeline', { kind: 'evaluations', round, items: evaluations });
    void this.member
      .evaluate(round, { trainLoss, updates: updates.length, participants: participants.length, wallMs: Date.now() - t0 })
      .catch((e: unknown) => ctx.log(`evaluation of round ${round}: ${oneLine(e)}`));
  }

  /**
   * Stage the checkpoint at the others until a majority (this peer included) holds it, then commit
   * it here; the members promote their staged copies when heartbeats or the next announce tell them.
   * Storing here last means an aggregator cut off in a minority never keeps a round that the
   * federation did not commit; staging at the members means they do not either.
   */
  private async commitRound(term: number, cp: Checkpoint, bytes: Uint8Array, sha: string, summary?: CommitRequest['summary']): Promise<void> {
    const ctx = this.ctx;
    const stored = new Set<string>([ctx.peerId]);
    const majority = () => Math.floor(ctx.raft!.members.length / 2) + 1;
    if (ctx.options.beforeCommitRequest) await ctx.options.beforeCommitRequest(cp.round);
    const prevSha256 = cp.round > 1 ? ctx.committedSha : undefined;
    for (let attempt = 0; ; attempt++) {
      if (!this.leaderOf(term)) throw new Error('lost the aggregator role before the commit');
      const others = ctx.raft!.members.filter((m) => !stored.has(m));
      await Promise.all(
        others.map(async (p) => {
          try {
            const res = await request(ctx.node!, peerIdFromString(p), PROTOCOLS.commit, { type: 'commit-request', term, round: cp.round, sha256: sha, ...(prevSha256 !== undefined ? { prevSha256 } : {}), ...(summary ? { summary } : {}) }, { data: bytes, timeoutMs: 30_000 });
            if (res.msg.type === 'commit-ack' && res.msg.ok) stored.add(p);
            else ctx.log(`round ${cp.round}: ${short(p)} did not store: ${res.msg.type === 'error' ? res.msg.reason : (res.msg.reason ?? '')}`);
          } catch (e) {
            if (attempt === 0) ctx.log(`round ${cp.round}: cannot commit at ${short(p)}: ${oneLine(e)}`);
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
        await ctx.dir.commitCheckpoint(cp.round, bytes, term);
        break;
      } catch (e) {
        if (!this.leaderOf(term)) throw e;
        ctx.log(`round ${cp.round}: cannot store the committed checkpoint: ${oneLine(e)}`);
        await sleep(1000);
      }
    }
    ctx.setCommitted(cp, sha, term);
    ctx.changed();
  }

  onUpdate(msg: UpdateSubmission, from: string, data: Uint8Array | undefined) {
    try {
      this.acceptUpdate(from, msg, data);
      return { type: 'ack' as const };
    } catch (e) {
      const reason = oneLine(e);
      const c = this.collecting;
      if (c !== null && c.term === msg.term && c.round === msg.round) c.refused.add(from);
      this.ctx.log(`rejected the update of ${short(from)}: ${reason}`);
      this.ctx.emit('timeline', { kind: 'update-refused', round: msg.round, member: this.ctx.nameOf(from), reason });
      return { type: 'error' as const, reason };
    }
  }

  /** Check an update against the round in progress and keep it; throws a one-line reason. */
  private acceptUpdate(from: string, msg: Omit<UpdateSubmission, 'dataBytes' | 'dataSha256'>, data: Uint8Array | undefined): void {
    const ctx = this.ctx;
    const c = this.collecting;
    const init = ctx.init;
    if (c === null || init === null || ctx.raft?.term !== c.term || !ctx.raft.isLeader) throw new Error('no round in progress here');
    if (msg.term !== c.term || msg.round !== c.round) throw new Error(`update for term ${msg.term} round ${msg.round}, collecting term ${c.term} round ${c.round}`);
    const assigned = c.plan.assignment.get(from);
    if (assigned === undefined || assigned.length === 0) throw new Error('sender was not assigned units this round');
    if (assigned.join('\n') !== msg.units.join('\n')) throw new Error('units differ from the assignment');
    if (c.updates.has(from)) throw new Error('a second update for this round');
    if (Date.now() > c.deadline) throw new Error('update arrived after the deadline');
    if (msg.numExamples < 1 || msg.numExamples > 1e9) throw new Error('bad example count');
    const hp = HyperParams.parse(ctx.fed!.settings.hyperparameters ?? {});
    if (perIteration(methodSpec(ctx.fed!.settings.method ?? 'spry'), hp)) {
      // Per-iteration Spry: K float32 jvp scalars; the aggregator regenerates the perturbations.
      if (msg.kind !== 'jvp' || msg.layout !== undefined) throw new Error('expected jvp scalars (per-iteration Spry), got weights');
      const k = hp.k ?? 1;
      const got = (data?.byteLength ?? 0) / 4;
      if (data === undefined || got !== k) throw new Error(`expected ${k} jvp scalar(s), got ${got}`);
      const jvp = Array.from(new Float32Array(new Uint8Array(data).buffer));
      if (!jvp.every(Number.isFinite)) throw new Error('a jvp scalar has a non-finite value');
      c.updates.set(from, { client: from, units: [...assigned], numExamples: msg.numExamples, loss: msg.loss ?? NaN, jvp });
      if (msg.evaluation) c.evaluations.set(from, msg.evaluation);
      return;
    }
    if (msg.kind === 'jvp') throw new Error('expected weights (per-epoch Spry), got jvp scalars');
    const names = tensorsOf(init.units, assigned);
    const bySpec = new Map(init.specs.map((s) => [s.name, s]));
    const expected: TensorSpec[] = names.map((n) => bySpec.get(n)!);
    const weights = unpackWeights(msg.layout, data, expected);
    c.updates.set(from, { client: from, units: [...assigned], numExamples: msg.numExamples, loss: msg.loss ?? NaN, weights });
    if (msg.evaluation) c.evaluations.set(from, msg.evaluation);
  }
}
