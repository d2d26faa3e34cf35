// The interface's API (src/shared/api.ts) implemented on a real federation Peer. Plain Node: the
// Electron shell and `fedforward serve` both create one of these and carry it to the renderer.
//
// The Peer publishes what the interface shows: its events (status, round metrics, training steps
// with memory samples), modelInfo(), dataInfo(), pause()/resume(). The rest comes from the pieces
// beside it: the metrics log and the invite table in its data directory, the bench code for the
// training-memory figures (src/main/training_memory.ts), the exporter (src/main/export/merge.ts).
// What cannot work throws a one-line reason.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { peerIdFromString } from '@libp2p/peer-id';
import { Peer, type StepEvent, type RoundMetric as PeerRoundMetric } from '../federation/peer.ts';
import { describeCollapse } from '../../shared/collapse.ts';
import { exportRound, resolveRound, ExportCancelled } from '../export/merge.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { decodeInvite, InviteTable, type InviteRecord } from '../../shared/invite.ts';
import { HyperParams, estimatorOf, methodSpec } from '../../shared/methods.ts';
import { loadDataset } from '../../worker/data/task_data.ts';
import { labelBalance } from '../../worker/data/batches.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';
import { TimelineRecorder } from './timeline.ts';
import { listExports } from './exports.ts';
import type {
  ApiEventName,
  ApiEvents,
  BackpropFigure,
  CreateFederationSettings,
  DataSummary,
  ExportRecord,
  InviteInfo,
  MemberStatus,
  PendingInfo,
  MemoryInfo,
  MemoryPoint,
  Metrics,
  Phase,
  PeerApi,
  ProgressEvent,
  RoundMetric,
  StatusInfo,
  StepPoint,
  TimelineEntry,
} from '../../shared/api.ts';
import type { z } from 'zod';
import { JoinOptions } from '../../shared/api.ts';
import type { ExportArgs, CreateInviteArgs } from '../../shared/api.ts';

export const APP_VERSION = '0.1.0';
const MAX_STEPS_KEPT = 5000;
const MAX_SAMPLES_KEPT = 5000;

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!.slice(0, 400);

export type Emit = <E extends ApiEventName>(event: E, payload: ApiEvents[E]) => void;

export interface PeerApiOptions {
  /** How often the status is checked for changes to push (ms). */
  pollMs?: number;
  /** Measure the backprop figure with the bench code in child processes (default true). */
  bench?: boolean;
  /** bench: measured steps per mode */
  benchSteps?: number;
}

interface ExportJob {
  abort: AbortController;
}

export class PeerApiImpl implements PeerApi {
  readonly peer: Peer;
  private emit: Emit;
  private opts: PeerApiOptions;
  private timer: ReturnType<typeof setInterval> | null = null;
  private lastStatusJson = '';
  private lastRoundSeen = 0;
  private names = new Map<string, string>();
  private codes = new Map<string, string>();
  private steps: StepPoint[] = [];
  private samples: MemoryPoint[] = [];
  private unsubscribe: (() => void)[] = [];
  private statusQueued = false;
  private starting = false;
  private lastError: string | null = null;
  private bench: BackpropFigure | null = null;
  private jobs = new Map<string, ExportJob>();
  private recorder: TimelineRecorder;
  private baselineTried = false;

  constructor(peer: Peer, emit: Emit, opts: PeerApiOptions = {}) {
    this.peer = peer;
    this.emit = emit;
    this.opts = opts;
    this.recorder = new TimelineRecorder((e) => this.emit('timeline', e));
    // Events carry the changes; the poll catches what no event reports (a link going down).
    this.timer = setInterval(() => void this.tick().catch(() => {}), opts.pollMs ?? 500);
    this.timer.unref?.();
    this.unsubscribe.push(
      peer.on('status', () => this.queueTick()),
      peer.on('round', () => this.queueTick()),
      peer.on('collapse', (c) => void this.recorder.add({ kind: 'collapse-warning', round: c.round, reason: describeCollapse(c).replace(/^round \d+: /, '') })),
      peer.on('step', (e) => this.onStep(e)),
      peer.on('timeline', (e) => void this.recorder.add(e)),
    );
  }

  private queueTick(): void {
    if (this.statusQueued) return;
    this.statusQueued = true;
    queueMicrotask(() => {
      this.statusQueued = false;
      void this.tick().catch(() => {});
    });
  }

  /** Stops pushing events (the Peer itself is the caller's to stop). */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    for (const u of this.unsubscribe) u();
    this.unsubscribe = [];
    for (const j of this.jobs.values()) j.abort.abort();
  }

  // ---- status ---------------------------------------------------------------------------------

  async version(): Promise<string> {
    return APP_VERSION;
  }

  async status(): Promise<StatusInfo> {
    await this.refreshNames();
    return this.statusNow();
  }

  private statusNow(): StatusInfo {
    const p = this.peer;
    const s = p.status();
    const settings = p.settings;
    const model = p.modelInfo();
    const running = p.node !== null && s.role !== 'stopped';
    const lastUpdates = this.recorder.lastUpdates();
    const members: MemberStatus[] = s.members.map((id) => {
      const self = id === p.peerId;
      let link: MemberStatus['link'] = 'self';
      if (!self) {
        let connected = false;
        try {
          connected = (p.node?.getConnections(peerIdFromString(id)).length ?? 0) > 0;
        } catch {
          connected = false;
        }
        link = connected ? 'connected' : 'unreachable';
      }
      const name = self ? s.name || this.names.get(id) || 'this peer' : (this.names.get(id) ?? shortId(id));
      return { id, name, self, aggregator: s.leader === id, link, progress: self ? s.training : null, lastUpdateRound: lastUpdates.get(name) ?? null };
    });
    const rounds = settings?.rounds ?? 1;
    let phase: Phase;
    if (settings === null) phase = 'no-federation';
    else if (!running) phase = this.starting ? 'loading' : 'stopped';
    else if (model === null) phase = 'loading';
    else if (s.committedRound >= rounds) phase = 'finished';
    else if (s.training !== null && s.training.round > s.committedRound) phase = 'training';
    else if (s.round > s.committedRound) phase = 'collecting';
    else phase = 'waiting-for-members';
    return {
      version: APP_VERSION,
      self: { id: p.peerId, name: s.name },
      federation: settings
        ? { id: settings.federationId, name: settings.federationName, model: settings.model ?? settings.modelSpec?.model ?? 'unknown', method: settings.method ?? 'spry', rounds, minMembers: settings.minMembers ?? 1 }
        : null,
      running,
      paused: s.paused,
      role: s.role,
      backend: model?.backend ?? null,
      members,
      aggregator: s.leader ? { id: s.leader, name: s.leader === p.peerId ? s.name : (this.names.get(s.leader) ?? shortId(s.leader)), term: s.term } : null,
      round: s.round,
      phase,
      committedRound: s.committedRound,
      lastMetrics: s.lastMetrics ? toRoundMetric(s.lastMetrics as unknown as Record<string, unknown>) : null,
      lastError: this.lastError,
    };
  }

  private async refreshNames(): Promise<void> {
    const fed = await this.peer.dir.readFederation().catch(() => null);
    for (const m of fed?.members ?? []) if (m.name) this.names.set(m.peerId, m.name);
  }

  /** Pushes status when it changed, a round metric when a new one was logged. */
  private async tick(): Promise<void> {
    const s = this.peer.status();
    if (s.members.some((id) => !this.names.has(id))) await this.refreshNames();
    const st = this.statusNow();
    const json = JSON.stringify(st);
    if (json !== this.lastStatusJson) {
      this.lastStatusJson = json;
      this.recorder.observe(st);
      this.emit('status', st);
    }
    if (!this.baselineTried && st.running && st.backend !== null) {
      this.baselineTried = true;
      void this.baseline().catch(() => {});
    }
    if (st.lastMetrics && st.lastMetrics.round !== this.lastRoundSeen) {
      this.lastRoundSeen = st.lastMetrics.round;
      this.emit('round', st.lastMetrics);
    }
  }

  // ---- the peer's training progress ------------------------------------------------------------

  /** A step of local training becomes a step point (finite loss) and a memory sample; the final reply a sample. */
  private onStep(e: StepEvent): void {
    const { round, step, steps, loss, memory } = e;
    if (e.done) {
      this.onSample(round, this.recorder.attemptOf(round), step, memory);
      return;
    }
    const attempt = this.recorder.step(round, step);
    const point: StepPoint = { round, attempt, step, steps, loss, at: Date.now() };
    if (Number.isFinite(loss)) {
      this.steps.push(point);
      if (this.steps.length > MAX_STEPS_KEPT) this.steps.splice(0, this.steps.length - MAX_STEPS_KEPT);
      this.emit('step', point);
    }
    this.onSample(round, attempt, step, memory);
  }

  private onSample(round: number, attempt: number, step: number, m: { rss: number; peakRss: number }): void {
    const point: MemoryPoint = { at: Date.now(), round, attempt, step, rss: m.rss, peakRss: m.peakRss };
    this.samples.push(point);
    if (this.samples.length > MAX_SAMPLES_KEPT) this.samples.splice(0, this.samples.length - MAX_SAMPLES_KEPT);
    this.emit('memory', point);
  }

  // ---- the round timeline ------------------------------------------------------------------------

  async timeline(): Promise<TimelineEntry[]> {
    return this.recorder.entries();
  }

  /**
   * Round 0: the initial adapter (every member starts from the same one) on this peer's test split,
   * once, whenever the model is loaded; a peer that joins late gets its baseline too.
   */
  private async baseline(): Promise<void> {
    if ((await this.peer.dir.readMetrics()).some((r) => r.round === 0)) return;
    const { pool, init, workerClient } = this.peer.ctx;
    if (pool === null || init === null) {
      this.baselineTried = false; // not loaded yet: the next status tries again
      return;
    }
    const r = await pool.run<'evaluate'>({ type: 'evaluate', client: workerClient, globals: init.initial, batchSize: 32 });
    const accuracy = init.labels.length > 0 && r.result.total > 0 ? r.result.correct / r.result.total : null;
    const metric = { round: 0, peer: this.peer.status().name, testLoss: r.result.loss, accuracy, at: Date.now(), baseline: true };
    await this.peer.dir.appendMetric(metric);
    const rm = toRoundMetric(metric);
    if (rm) this.emit('round', rm);
  }

  // ---- create, join, start ----------------------------------------------------------------------

  async createFederation(form: CreateFederationSettings): Promise<StatusInfo> {
    if (this.peer.settings !== null) throw new Error(`this peer already belongs to federation "${this.peer.settings.federationName}"`);
    await checkModel(form.model);
    await checkData(form.data);
    const lora: Record<string, unknown> = { r: form.lora.r, alpha: form.lora.alpha, dropout: form.lora.dropout };
    if (form.lora.targets.length > 0) lora.targetModules = form.lora.targets;
    await this.peer.create({
      name: form.name,
      peerName: form.peerName,
      model: { model: form.model, lora, maxLength: form.maxLength },
      data: dataSpec(form.data, form.peerName, form.domain, form.limit),
      hp: { lr: form.lr, batchSize: form.batchSize, maxLength: form.maxLength, maxLocalSteps: form.maxLocalSteps },
      rounds: form.rounds,
      minMembers: form.minMembers,
      roundDeadlineMs: form.roundDeadlineSeconds * 1000,
    });
    await this.startPeer();
    return this.status();
  }

  async join(code: string, dataFile: string, opts?: z.output<typeof JoinOptions>): Promise<StatusInfo> {
    if (this.peer.settings !== null) throw new Error(`this peer already belongs to federation "${this.peer.settings.federationName}"`);
    await checkData(dataFile);
    const o = opts ?? JoinOptions.parse({});
    this.starting = true;
    try {
      await this.peer.join(code, o.peerName, dataSpec(dataFile, o.peerName, o.domain, o.limit));
      this.lastError = null;
    } catch (e) {
      this.lastError = oneLine(e);
      throw e;
    } finally {
      this.starting = false;
    }
    return this.status();
  }

  async start(): Promise<StatusInfo> {
    if (this.peer.settings === null) throw new Error('create or join a federation first');
    if (this.peer.node === null) await this.startPeer();
    return this.resume();
  }

  private async startPeer(): Promise<void> {
    if (this.starting) throw new Error('the peer is already starting');
    this.starting = true;
    try {
      await this.peer.start();
      this.lastError = null;
    } catch (e) {
      this.lastError = oneLine(e);
      throw e;
    } finally {
      this.starting = false;
    }
  }

  /** Pause holds this peer's local training: rounds go on without its share until it resumes. */
  async pause(): Promise<StatusInfo> {
    if (this.peer.settings === null) throw new Error('create or join a federation first');
    this.peer.pause();
    return this.status();
  }

  async resume(): Promise<StatusInfo> {
    this.peer.resume();
    return this.status();
  }

  // ---- invites ----------------------------------------------------------------------------------

  private get invitesFile(): string {
    return path.join(this.peer.dir.root, 'invites.json');
  }

  private async readInvites(): Promise<InviteRecord[]> {
    try {
      const v = JSON.parse(await readFile(this.invitesFile, 'utf8')) as unknown;
      return Array.isArray(v) ? (v as InviteRecord[]) : [];
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return [];
      throw new Error(`the invite table is unreadable: ${oneLine(e)}`);
    }
  }

  async createInvite(args?: z.output<typeof CreateInviteArgs>): Promise<InviteInfo & { code: string }> {
    if (this.peer.settings === null) throw new Error('create or join a federation first');
    if (this.peer.node === null) throw new Error('start the peer first: an invite carries its current address');
    const a = args ?? { expiresHours: 24, uses: 1, for: [] };
    const code = await this.peer.invite({ expiresMs: Math.round(a.expiresHours * 3600_000), uses: a.uses, ...(a.for.length > 0 ? { for: a.for } : {}) });
    const id = decodeInvite(code).inviteId;
    this.codes.set(id, code);
    const info = (await this.listInvites()).find((i) => i.id === id);
    return { ...(info ?? { id, usesLeft: a.uses, expiresAt: Date.now() + a.expiresHours * 3600_000, revoked: false, state: 'active' as const }), code };
  }

  async listInvites(): Promise<InviteInfo[]> {
    const now = Date.now();
    return (await this.readInvites())
      .map((r) => ({
        id: r.inviteId,
        code: this.codes.get(r.inviteId) ?? null,
        usesLeft: r.usesLeft,
        expiresAt: r.expiresAt,
        revoked: r.revoked,
        state: r.revoked ? ('revoked' as const) : now > r.expiresAt ? ('expired' as const) : r.usesLeft <= 0 ? ('used-up' as const) : ('active' as const),
      }))
      .sort((a, b) => b.expiresAt - a.expiresAt);
  }

  /** Newcomers that asked to join with an invite bound to nobody, for a member to approve. */
  async listPending(): Promise<PendingInfo[]> {
    if (this.peer.settings === null) return [];
    return (await this.peer.pending()).map((p) => ({ peerId: p.peerId, name: p.name, inviteId: p.inviteId, at: p.at, approved: p.approved }));
  }

  async approveJoin(peerId: string): Promise<PendingInfo[]> {
    await this.peer.approve(peerId);
    return this.listPending();
  }

  /** Evict a member: every member hangs up on it, it cannot connect again, and it gets no further rounds. */
  async removeMember(peerId: string): Promise<StatusInfo> {
    await this.peer.remove(peerId);
    return this.status();
  }

  async revokeInvite(id: string): Promise<InviteInfo[]> {
    const table = new InviteTable(await this.readInvites());
    if (!table.revoke(id)) throw new Error('no invite with that id');
    await writeFileAtomic(this.invitesFile, JSON.stringify(table.toJSON(), null, 1) + '\n');
    return this.listInvites();
  }

  // ---- metrics, memory, data --------------------------------------------------------------------

  async metrics(): Promise<Metrics> {
    const records = await this.peer.dir.readMetrics();
    const rounds = records.map(toRoundMetric).filter((m): m is RoundMetric => m !== null);
    return { rounds, steps: [...this.steps] };
  }

  async memory(): Promise<MemoryInfo> {
    this.startBench();
    return { samples: [...this.samples], backprop: this.bench };
  }

  /**
   * Backprop's and forward mode's training memory for this model, batch and sequence length, on the
   * engine this peer trains on, each measured once in a process of its own with the bench code.
   */
  private startBench(): void {
    const settings = this.peer.settings;
    const init = this.peer.ctx.init;
    if (this.bench !== null || settings === null || settings.modelSpec === undefined || init === null || this.opts.bench === false) return;
    const hp = HyperParams.parse(settings.hyperparameters ?? {});
    const spec = settings.modelSpec;
    const fig: BackpropFigure = { state: 'measuring', kind: 'measured', model: spec.model, batch: hp.batchSize, seq: Math.min(hp.maxLength, spec.maxLength) };
    this.bench = fig;
    // the federation's K where its method is a forward-mode one
    const est = estimatorOf(methodSpec(settings.method ?? 'spry'), hp);
    const k = est.kind === 'forward' ? est.k : 1;
    const backend = spec.backend === 'tensorflow' ? 'auto' : spec.backend;
    // loaded on first use: the peer's own thread never needs the bench code otherwise
    void import('../training_memory.ts')
      .then(({ trainingMemory, trainsOnOnnxRuntime }) =>
        trainingMemory({ model: resolveModelDir(spec.model), batch: fig.batch, seq: fig.seq, k, onnxRuntime: trainsOnOnnxRuntime(init.backend), backend, steps: this.opts.benchSteps ?? 2 }),
      )
      .then(({ forward, backprop }) => {
        this.bench = { ...fig, state: 'measured', engine: forward.engine, forward, backprop };
      })
      .catch((e: unknown) => {
        this.bench = { ...fig, state: 'failed', error: oneLine(e) };
      });
  }

  async dataSummary(): Promise<DataSummary> {
    const data = this.peer.dataInfo();
    if (data === null) throw new Error('this peer has no data yet: create or join a federation first');
    const source = data.source;
    const ds = await loadDataset(source);
    let examples = ds.examples;
    const domain = data.split.kind === 'local' ? data.split.domain : undefined;
    if (domain && ds.domains) examples = examples.filter((_, i) => ds.domains![i] === domain);
    if (data.limit > 0) examples = examples.slice(0, data.limit);
    const isFile = /\.(jsonl|ndjson|csv)$/i.test(source);
    const size = isFile ? (await stat(source)).size : null;
    const balance = ds.labels.length > 0 ? labelBalance(examples, ds.labels.length) : null;
    return {
      source: domain ? `${source} (${domain})` : source,
      kind: isFile ? 'file' : 'builtin',
      size,
      examples: examples.length,
      labels: ds.labels,
      balance: balance ? ds.labels.map((label, i) => ({ label, count: balance.counts[i]!, fraction: balance.fractions[i]! })) : [],
      preview: examples.slice(0, 5).map((e) => ({ text: e.text.slice(0, 500), label: e.label >= 0 ? (ds.labels[e.label] ?? String(e.label)) : null })),
    };
  }

  // ---- export -----------------------------------------------------------------------------------

  /**
   * Export a committed round (default the newest): the PEFT adapter, or with `merged` a full
   * Hugging Face checkpoint (the base model loaded in this process). Checks run before the task
   * starts; then `progress` events tell its stages until done, failed or cancelled.
   */
  async exportAdapter(args?: z.output<typeof ExportArgs>): Promise<{ taskId: string }> {
    const a = args ?? { merged: false };
    const settings = this.peer.settings;
    if (settings === null) throw new Error('create or join a federation first');
    const round = await resolveRound(this.peer.dir, a.round);
    const model = this.peer.modelInfo();
    const taskId = randomUUID();
    const job: ExportJob = { abort: new AbortController() };
    this.jobs.set(taskId, job);
    const send = (p: Omit<ProgressEvent, 'taskId' | 'kind'>) => this.emit('progress', { taskId, kind: 'export', ...p });
    void (async () => {
      try {
        send({ stage: `exporting round ${round}${a.merged ? ' (merged)' : ''}`, fraction: 0, state: 'running' });
        let last = 0;
        const r = await exportRound({
          dataDir: this.peer.dir,
          round,
          merged: a.merged,
          signal: job.abort.signal,
          ...(model ? { shape: { family: model.family, lora: model.lora, specs: model.specs, labels: model.labels }, labels: model.labels } : {}),
          onProgress: (fraction, stage) => {
            // at most one event per percent, plus every stage change
            if (fraction < 1 && fraction - last < 0.01 && fraction !== 0) return;
            last = fraction;
            send({ stage, fraction: Math.min(fraction, 0.99), state: 'running' });
          },
        });
        send({ stage: `exported round ${r.round}${r.merged ? ' (merged checkpoint)' : ''}`, fraction: 1, state: 'done', files: r.files, dir: r.dir });
      } catch (e) {
        if (e instanceof ExportCancelled) send({ stage: 'cancelled', fraction: 0, state: 'cancelled' });
        else send({ stage: 'failed', fraction: 0, state: 'failed', error: oneLine(e) });
      } finally {
        this.jobs.delete(taskId);
      }
    })();
    return { taskId };
  }

  async listExports(): Promise<ExportRecord[]> {
    return listExports(this.peer.dir.exportsDir);
  }

  /** Only the desktop app opens folders (its shell answers this method); the browser downloads. */
  async openExportFolder(_id: string): Promise<string> {
    throw new Error('opening a folder works in the desktop app; in the browser, download the files');
  }

  async cancel(taskId: string): Promise<boolean> {
    const job = this.jobs.get(taskId);
    if (!job) return false;
    job.abort.abort();
    return true;
  }
}

function shortId(id: string): string {
  return id.length > 12 ? `…${id.slice(-8)}` : id;
}

function dataSpec(source: string, client: string, domain: string | undefined, limit: number) {
  return { source, split: { kind: 'local' as const, client, ...(domain ? { domain } : {}) }, seed: 0, limit };
}

async function checkModel(model: string): Promise<void> {
  const dir = resolveModelDir(model);
  try {
    await stat(path.join(dir, 'config.json'));
  } catch {
    throw new Error(model === 'embedded' ? 'the embedded model is not built into this copy (models/embedded/config.json is missing)' : `no model at ${model}: expected a folder with config.json, model.safetensors and tokenizer.json`);
  }
}

async function checkData(source: string): Promise<void> {
  if (!/\.(jsonl|ndjson|csv)$/i.test(source)) {
    await loadDataset(source); // a built-in task name, or a one-line reason
    return;
  }
  try {
    const s = await stat(source);
    if (!s.isFile()) throw new Error('not a file');
  } catch {
    throw new Error(`no data file at ${source}`);
  }
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function toRoundMetric(r: Record<string, unknown>): RoundMetric | null {
  const round = num(r.round);
  const testLoss = num(r.testLoss);
  if (round === null || testLoss === null) return null;
  return {
    round,
    testLoss,
    accuracy: num(r.accuracy),
    trainLoss: num(r.trainLoss),
    updates: num(r.updates),
    participants: num(r.participants),
    wallMs: num(r.wallMs),
    at: num(r.at) ?? 0,
  };
}

/** Opens the Peer of `dataDir` and its API; events go to `emit`. */
export async function openPeerApi(dataDir: string, emit: Emit, opts: PeerApiOptions & { listen?: string[]; log?: (l: string) => void } = {}): Promise<PeerApiImpl> {
  const peer = await Peer.open({ dataDir, ...(opts.listen ? { listen: opts.listen } : {}), ...(opts.log ? { log: opts.log } : {}) });
  return new PeerApiImpl(peer, emit, opts);
}
