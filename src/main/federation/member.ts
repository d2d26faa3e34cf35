// A member's part of a round (the aggregator is a member too): answer the announce, fetch the global
// adapter it lacks, train its units in its compute worker, submit the update; stage the
// aggregator's checkpoint on a commit-request and promote it once it is known to be committed, or
// fetch the committed rounds it lacks (catch-up); serve committed checkpoints and the global adapter
// to other members; evaluate each committed round on its own test split.
import { peerIdFromString } from '@libp2p/peer-id';
import { request, sha256Hex, withData } from './wire.ts';
import { hashWeights, packLoose, packWeights, parseCheckpoint, unpackWeights } from './checkpoint.ts';
import { oneLine, sleep, type PeerContext, type RoundMetric, type Submission, type TrainingProgress } from './context.ts';
import { PROTOCOLS, type CheckpointFetchResponse, type CommitAck, type CommitRequest, type ErrorReply, type RoundAnnounce, type WeightsFetchResponse } from '../../shared/messages.ts';

type RoundSummary = NonNullable<CommitRequest['summary']>;
import { HyperParams, methodSpec, perIteration } from '../../shared/methods.ts';
import { roundSeed } from '../../shared/spry/seeds.ts';
import { describeCollapse, detectCollapse } from '../../shared/collapse.ts';
import type { InitReply } from '../../shared/worker_protocol.ts';
import { tensorsOf, type Weights } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';

export class Member {
  private readonly ctx: PeerContext;
  /** The latest round it is training in, so an older one stops mattering. */
  private training = 0;
  /** One training at a time, so a stale round can be skipped while an earlier one runs. */
  private trainChain: Promise<void> = Promise.resolve();
  /** Fetching committed rounds it lacks, one catch-up at a time. */
  private catchChain: Promise<void> = Promise.resolve();
  /** The aggregator's figures of the rounds staged here, until they commit. */
  private summaries = new Map<number, RoundSummary>();
  /** the evaluation of the initial adapter, for the model loaded now */
  private baselineRun: { init: InitReply; run: Promise<{ testLoss: number }> } | null = null;

  constructor(ctx: PeerContext) {
    this.ctx = ctx;
  }

  // ---- handlers -------------------------------------------------------------------------------

  onAnnounce(msg: RoundAnnounce, from: string) {
    const ctx = this.ctx;
    const raft = ctx.raft;
    if (raft === null) return { type: 'error' as const, reason: 'not running' };
    if (msg.term !== raft.term || raft.leaderId !== from) return { type: 'error' as const, reason: `not the aggregator of term ${raft.term}` };
    ctx.currentRound = Math.max(ctx.currentRound, msg.round);
    ctx.changed();
    // A peer still loading its model joins in as soon as it is ready (the deadline decides).
    // The announce says which round is committed: promote (or fetch) it, beside the training (which
    // starts from the announced adapter: committed, staged, or fetched).
    if (msg.committedRound !== undefined) {
      void this.learnCommitted(from, msg.committedRound, msg.committedSha256, msg.committedTerm).catch((e: unknown) => ctx.log(`catching up: ${oneLine(e)}`));
    }
    void this.whenReady(msg.deadline)
      .then(() => this.participate(msg, from))
      .catch((e: unknown) => ctx.log(`round ${msg.round}: ${oneLine(e)}`));
    return { type: 'ack' as const };
  }

  onFetch(sha: string, from: string) {
    const { committed, init } = this.ctx;
    if (!this.ctx.isMember(from) || committed === null || init === null) return { type: 'error' as const, reason: 'not a member' };
    if (hashWeights(committed.globals, init.specs) !== sha) return { type: 'error' as const, reason: 'no global adapter with that sha256 here' };
    const { layout, data } = packWeights(committed.globals, init.specs);
    return withData<WeightsFetchResponse | ErrorReply>({ type: 'weights-fetch-response', round: committed.round, sha256: sha, dtype: 'float32', layout }, data);
  }

  /** Any member: a committed checkpoint, by round, for a member that lacks it. */
  async onCheckpointFetch(round: number, from: string) {
    if (!this.ctx.isMember(from)) return { type: 'error' as const, reason: 'not a member' };
    try {
      const { entry, bytes } = await this.ctx.dir.readCheckpoint(round);
      return withData<CheckpointFetchResponse | ErrorReply>({ type: 'checkpoint-fetch-response', round, sha256: entry.sha256, ...(entry.term !== undefined ? { term: entry.term } : {}) }, bytes);
    } catch (e) {
      return { type: 'error' as const, reason: oneLine(e) };
    }
  }

  /** Stage the aggregator's checkpoint of `round`; it is committed here only later. */
  async onCommit(term: number, round: number, sha: string, prevSha: string | undefined, from: string, data: Uint8Array | undefined, summary?: RoundSummary): Promise<CommitAck | ErrorReply> {
    const ctx = this.ctx;
    const raft = ctx.raft;
    const ack = (ok: boolean, reason?: string): CommitAck => ({ type: 'commit-ack', term, round, sha256: sha, ok, ...(reason ? { reason: reason.slice(0, 500) } : {}) });
    if (raft === null || ctx.init === null) return ack(false, 'not running');
    if (term !== raft.term || raft.leaderId !== from) return ack(false, `not the aggregator of term ${raft.term}`);
    if (data === undefined || sha256Hex(data) !== sha) return ack(false, 'checkpoint missing or not matching its sha256');
    try {
      const cp = parseCheckpoint(data, ctx.init.specs);
      if (cp.round !== round) throw new Error('checkpoint is of another round');
      // The aggregator committed round - 1: so must we (promoted, or fetched), the same one.
      if (ctx.committed !== null && round > ctx.committed.round + 1) {
        await this.learnCommitted(from, round - 1, prevSha, undefined).catch((e: unknown) => ctx.log(`catching up before round ${round}: ${oneLine(e)}`));
      }
      if (ctx.committed !== null && round <= ctx.committed.round) {
        const mine = await ctx.dir.readCheckpoint(round).catch(() => null);
        if (mine?.entry.sha256 === sha) return ack(true);
        throw new Error(`round ${round} is behind this peer's committed round ${ctx.committed.round}`);
      }
      if (ctx.committed === null || ctx.committed.round !== round - 1) throw new Error(`round ${round - 1} is not committed here yet`);
      if (prevSha !== undefined && ctx.committedSha !== undefined && prevSha !== ctx.committedSha) {
        throw new Error(`round ${round - 1} committed here differs from the aggregator's`);
      }
      if (raft.term !== term || raft.leaderId !== from) throw new Error(`not the aggregator of term ${raft.term}`);
      await ctx.dir.stageCheckpoint(round, term, data);
      ctx.staged = { round, term, sha, bytes: data };
      if (summary) this.summaries.set(round, summary);
      raft.setStaged(round, term);
      ctx.currentRound = Math.max(ctx.currentRound, round);
      ctx.log(`round ${round} staged (${sha.slice(0, 12)})`);
      return ack(true);
    } catch (e) {
      return ack(false, oneLine(e));
    }
  }

  // ---- committed state ------------------------------------------------------------------------

  /** Fetch the committed rounds up to `target` that we lack from `leader`, oldest first. */
  private async catchUp(leader: string, target: number): Promise<void> {
    const ctx = this.ctx;
    await this.whenReady(Date.now() + 120_000);
    const t0 = Date.now();
    let fetched = 0;
    for (;;) {
      const raft = ctx.raft;
      if (ctx.stopped || raft === null || ctx.node === null || raft.leaderId !== leader) return;
      const have = ctx.committed!.round;
      if (target <= have) break;
      // Every round we lack, oldest first, so our history is the federation's.
      const round = have + 1;
      const res = await request(ctx.node, peerIdFromString(leader), PROTOCOLS.checkpoint, { type: 'checkpoint-fetch-request', round }, { timeoutMs: 60_000 });
      if (res.msg.type !== 'checkpoint-fetch-response') throw new Error(`the aggregator has no round ${round}: ${res.msg.reason}`);
      const data = res.data!;
      if (sha256Hex(data) !== res.msg.sha256) throw new Error(`round ${round}'s checkpoint does not match its sha256`);
      const cp = parseCheckpoint(data, ctx.init!.specs);
      if (cp.round !== round) throw new Error(`asked for round ${round}, got round ${cp.round}`);
      if (ctx.committed!.round >= round) continue; // a commit-request got there first
      await ctx.dir.commitCheckpoint(round, data, res.msg.term);
      ctx.setCommitted(cp, res.msg.sha256, res.msg.term ?? 0);
      fetched++;
    }
    await this.dropStagedUpTo(ctx.committed!.round);
    if (fetched > 0) ctx.changed();
    if (fetched > 0) ctx.log(`caught up: fetched ${fetched} committed round(s) in ${Date.now() - t0} ms, now at round ${ctx.committed!.round}`);
  }

  async dropStagedUpTo(round: number): Promise<void> {
    const ctx = this.ctx;
    if (ctx.staged !== null && ctx.staged.round <= round) ctx.staged = null;
    await ctx.dir.dropStaged(round).catch((e: unknown) => ctx.log(`cannot remove a staged checkpoint: ${oneLine(e)}`));
  }

  /**
   * The aggregator `leader` says round `round` (sha256 `sha`, term `term`) is committed.
   * Promote our staged copy when it is that one, else fetch the committed rounds we lack.
   */
  learnCommitted(leader: string, round: number, sha: string | undefined, term: number | undefined): Promise<void> {
    const ctx = this.ctx;
    if (ctx.committed !== null && round <= ctx.committed.round) return Promise.resolve();
    const run = this.catchChain.then(async () => {
      await this.whenReady(Date.now() + 120_000);
      if (ctx.stopped || ctx.committed!.round >= round) return;
      const st = ctx.staged;
      if (st !== null && sha !== undefined && st.round === round && st.sha === sha && ctx.committed!.round === round - 1) {
        const cp = parseCheckpoint(st.bytes, ctx.init!.specs);
        const t = term ?? st.term;
        // The staged file becomes the committed one; should it be gone, the bytes held here are written.
        const file = ctx.dir.stagedPath(round, st.term, sha);
        await ctx.dir.promoteStaged({ round, term: st.term, sha256: sha, file }, t).catch((e: unknown) => {
          ctx.log(`round ${round}: ${oneLine(e)}; writing it again`);
          return ctx.dir.commitCheckpoint(round, st.bytes, t);
        });
        ctx.setCommitted(cp, sha, t);
        await this.dropStagedUpTo(round);
        ctx.log(`round ${round} committed (${sha.slice(0, 12)})`);
        ctx.changed();
        // the aggregator's figures of the round (train loss, updates) go with this peer's evaluation
        const sm = this.summaries.get(round);
        this.summaries.clear();
        if (sm?.evaluations?.length) ctx.emit('timeline', { kind: 'evaluations', round, items: sm.evaluations });
        const extra = sm ? { updates: sm.updates, participants: sm.participants, wallMs: sm.wallMs, ...(sm.trainLoss !== null ? { trainLoss: sm.trainLoss } : {}) } : {};
        void this.evaluate(round, extra).catch((e: unknown) => ctx.log(`evaluation of round ${round}: ${oneLine(e)}`));
        return;
      }
      await this.catchUp(leader, round);
    });
    this.catchChain = run.catch(() => {});
    return run;
  }

  // ---- a round --------------------------------------------------------------------------------

  async whenReady(deadline: number): Promise<void> {
    while (this.ctx.init === null || this.ctx.committed === null) {
      if (this.ctx.stopped || Date.now() > deadline) throw new Error('not ready before the deadline');
      await sleep(50);
    }
  }

  private async participate(msg: RoundAnnounce, leader: string): Promise<void> {
    const ctx = this.ctx;
    const mine = msg.assignment[ctx.peerId];
    if (mine === undefined || mine.length === 0) return;
    this.training = msg.round;
    const timing = ctx.timing(msg.round, 'member');
    let t = Date.now();
    const globals = await this.globalsFor(msg.globalSha256, msg.round, leader);
    timing.fetchMs = Date.now() - t;
    t = Date.now();
    const update = await this.train(msg, globals, mine, () => this.training === msg.round && ctx.raft?.term === msg.term);
    timing.trainMs = Date.now() - t;
    if (ctx.stopped || ctx.node === null) return;
    const { msg: submission, data } = this.buildSubmission(msg.term, msg.round, mine, update);
    if (ctx.options.beforeSubmit) await ctx.options.beforeSubmit(msg.round, submission, data, leader);
    if (ctx.stopped || ctx.node === null) return;
    t = Date.now();
    const res = await request(ctx.node, peerIdFromString(leader), PROTOCOLS.update, submission, { data, timeoutMs: 60_000 });
    timing.submitMs = Date.now() - t;
    if (res.msg.type === 'error') ctx.log(`round ${msg.round}: the aggregator refused the update: ${res.msg.reason}`);
  }

  /** The global adapter with this hash: ours, or fetched from the aggregator. */
  private async globalsFor(sha: string, round: number, leader: string): Promise<Weights> {
    const ctx = this.ctx;
    const init = ctx.init!;
    const c = ctx.committed!;
    if (hashWeights(c.globals, init.specs) === sha) return c.globals;
    // The round the announce builds on may be staged here, its promotion on its way.
    const st = ctx.staged;
    if (st !== null && st.round === round - 1) {
      try {
        const g = parseCheckpoint(st.bytes, init.specs).globals;
        if (hashWeights(g, init.specs) === sha) return g;
      } catch {
        // fall back to fetching
      }
    }
    ctx.log(`round ${round}: fetching the global adapter ${sha.slice(0, 12)}`);
    const res = await request(ctx.node!, peerIdFromString(leader), PROTOCOLS.weights, { type: 'weights-fetch-request', round, sha256: sha }, { timeoutMs: 60_000 });
    if (res.msg.type !== 'weights-fetch-response') throw new Error(`cannot fetch the global adapter: ${res.msg.reason}`);
    const w = unpackWeights(res.msg.layout, res.data, init.specs);
    if (hashWeights(w, init.specs) !== sha) throw new Error('fetched global adapter does not match its announced sha256');
    return w;
  }

  /** Train this peer's units; `current` is asked once the worker is free, to skip a stale round. */
  async train(msg: RoundAnnounce, globals: Weights, units: string[], current: () => boolean): Promise<ClientUpdate> {
    const ctx = this.ctx;
    const prev = this.trainChain;
    let release!: () => void;
    this.trainChain = new Promise<void>((r) => (release = r));
    try {
      await prev;
      while (ctx.paused && !ctx.stopped) await new Promise<void>((r) => ctx.resumeWaiters.push(r));
      if (ctx.stopped) throw new Error('the peer stopped');
      if (!current()) throw new Error('round abandoned before training started');
      const hp = HyperParams.parse(msg.hyperparameters);
      const round = msg.round;
      const progress: TrainingProgress = { round, step: 0, steps: 0 };
      ctx.trainingNow = progress;
      ctx.changed();
      const reply = await ctx.pool!.run<'train'>(
        {
          type: 'train',
          client: ctx.workerClient,
          roundSeed: roundSeed(msg.seed, msg.round),
          method: 'spry',
          hp,
          units,
          globals,
        },
        (m) => {
          progress.step = m.step;
          progress.steps = m.steps;
          ctx.emit('step', { round, step: m.step, steps: m.steps, loss: m.loss, memory: m.memory, done: false });
        },
      );
      ctx.emit('step', { round, step: progress.steps, steps: progress.steps, loss: reply.result?.loss ?? NaN, memory: reply.memory, done: true });
      return reply.result;
    } finally {
      if (ctx.trainingNow !== null) {
        ctx.trainingNow = null;
        ctx.changed();
      }
      release();
    }
  }

  /** The submission of this peer's update: its weights, or its K jvp scalars (per-iteration). */
  buildSubmission(term: number, round: number, units: string[], update: ClientUpdate): { msg: Submission; data: Uint8Array } {
    const ctx = this.ctx;
    const init = ctx.init!;
    const settings = ctx.fed!.settings;
    const hp = HyperParams.parse(settings.hyperparameters ?? {});
    const ev = ctx.lastMetric;
    const evaluation = ev !== null && Number.isFinite(ev.testLoss) ? { evaluation: { round: ev.round, testLoss: ev.testLoss, accuracy: ev.accuracy } } : {};
    const head = { type: 'update-submission' as const, term, round, units, numExamples: update.numExamples, loss: Number.isFinite(update.loss) ? update.loss : undefined, ...evaluation, dtype: 'float32' as const };
    if (perIteration(methodSpec(settings.method ?? 'spry'), hp)) {
      let jvp = Float32Array.from(update.jvp ?? []);
      if (ctx.options.tamperJvp) jvp = Float32Array.from(ctx.options.tamperJvp(round, jvp));
      return { msg: { ...head, kind: 'jvp' }, data: new Uint8Array(jvp.buffer, jvp.byteOffset, jvp.byteLength) };
    }
    const names = tensorsOf(init.units, units);
    const bySpec = new Map(init.specs.map((s) => [s.name, s]));
    let weights = update.weights ?? new Map();
    if (ctx.options.tamperUpdate) weights = ctx.options.tamperUpdate(round, weights);
    const { layout, data } = packLoose(weights, names.map((n) => bySpec.get(n)!));
    return { msg: { ...head, layout }, data };
  }

  /** The newest committed global adapter, with what an export needs to describe it. */
  committedAdapter(): { round: number; globals: Weights; init: InitReply } {
    const { committed, init } = this.ctx;
    if (committed === null || init === null) throw new Error('this peer is not running');
    return { round: committed.round, globals: committed.globals, init };
  }

  /** Evaluate the newest committed adapter (round 0: the initial one) on this peer's test split. */
  async evaluateCommitted(): Promise<RoundMetric> {
    const ctx = this.ctx;
    const c = ctx.committed;
    if (ctx.pool === null || c === null) throw new Error('this peer is not running');
    const r = await ctx.pool.run<'evaluate'>({ type: 'evaluate', client: ctx.workerClient, globals: c.globals, batchSize: 32 });
    const accuracy = ctx.init!.labels.length > 0 && r.result.total > 0 ? r.result.correct / r.result.total : null;
    const counts = r.result.predicted && r.result.actual ? { predicted: r.result.predicted, actual: r.result.actual } : {};
    return { round: c.round, peer: ctx.local!.name, testLoss: r.result.loss, accuracy, ...counts, at: Date.now() };
  }

  async evaluate(round: number, extra: Partial<RoundMetric> = {}): Promise<void> {
    const ctx = this.ctx;
    if (ctx.pool === null || ctx.committed?.round !== round) return;
    const metric: RoundMetric = { ...(await this.evaluateCommitted()), ...extra };
    ctx.lastMetric = metric;
    await ctx.dir.appendMetric({ ...metric });
    ctx.emit('round', { ...metric });
    ctx.changed();
    ctx.log(`round ${round}: test loss ${metric.testLoss.toFixed(4)}${metric.accuracy === null ? '' : `, accuracy ${(100 * metric.accuracy).toFixed(1)}%`}`);
    const counts = metric.predicted && metric.actual ? { predicted: metric.predicted, actual: metric.actual } : null;
    const collapse = detectCollapse(round, metric.testLoss, (await this.baseline()).testLoss, counts, ctx.init?.labels ?? []);
    if (collapse) {
      ctx.log(`warning: ${describeCollapse(collapse)}`);
      ctx.emit('collapse', collapse);
    }
  }

  /** Round 0's test loss on this peer (the initial adapter every member starts from), once per model load. */
  private baseline(): Promise<{ testLoss: number }> {
    const { init, pool, workerClient } = this.ctx;
    if (init === null || pool === null) return Promise.resolve({ testLoss: Number.NaN });
    if (this.baselineRun?.init !== init) {
      const run = pool.run<'evaluate'>({ type: 'evaluate', client: workerClient, globals: init.initial, batchSize: 32 }).then((r) => ({ testLoss: r.result.loss }));
      this.baselineRun = { init, run };
    }
    return this.baselineRun.run;
  }
}
