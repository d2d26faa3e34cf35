// The one API the interface sees: the methods a renderer calls through the Bridge (Electron IPC or
// the `fedforward serve` WebSocket), their argument schemas (checked on receipt in main), their
// result types, and the events the peer pushes. Both transports carry exactly this.
import { z } from 'zod';

// ---- arguments ------------------------------------------------------------------------------

const name = z.string().trim().min(1, 'give it a name').max(100, 'at most 100 characters');
const pathLike = z.string().trim().min(1, 'required').max(4096, 'at most 4096 characters');

/** The create-a-federation form, with the defaults the Start screen shows. */
export const CreateFederationForm = z.object({
  /** Federation name, shown to everyone who joins. */
  name,
  /** This peer's (organisation's) name in the federation. */
  peerName: name.default('organisation-1'),
  /** A Hugging Face model directory on this machine, or "embedded" (the bundled model). */
  model: pathLike.default('embedded'),
  /** A built-in task (sentiment, brown-genre, brown-lm) or a local .jsonl / .csv file. */
  data: pathLike.default('sentiment'),
  /** Optional natural domain of a built-in task (sentiment: imdb, yelp, amazon). */
  domain: z.string().trim().max(100).optional(),
  /** Cap on this peer's examples (0 = all). */
  limit: z.number().int().min(0).max(10_000_000).default(0),
  lora: z
    .object({
      r: z.number().int('a whole number').min(1, 'at least 1').max(256, 'at most 256').default(4),
      alpha: z.number().positive('must be above 0').max(4096).default(8),
      dropout: z.number().min(0, 'between 0 and 1').lt(1, 'between 0 and 1').default(0),
      /** Module names to adapt; empty = the model family's default. */
      targets: z.array(z.string().trim().min(1).max(100)).max(32).default([]),
    })
    .prefault({}),
  method: z.literal('spry').default('spry'),
  lr: z.number().positive('must be above 0').max(1, 'at most 1').default(1e-3),
  rounds: z.number().int('a whole number').min(1, 'at least 1').max(100_000).default(5),
  minMembers: z.number().int('a whole number').min(1, 'at least 1').max(256).default(2),
  batchSize: z.number().int().min(1).max(1024).default(8),
  maxLength: z.number().int().min(4).max(4096).default(48),
  /** Local steps per round (0 = a full pass over the local data). */
  maxLocalSteps: z.number().int().min(0).max(1_000_000).default(25),
  roundDeadlineSeconds: z.number().int().min(5).max(86_400).default(300),
});
export type CreateFederationForm = z.input<typeof CreateFederationForm>;
export type CreateFederationSettings = z.output<typeof CreateFederationForm>;

export const JoinOptions = z
  .object({
    peerName: name.default('organisation-2'),
    domain: z.string().trim().max(100).optional(),
    limit: z.number().int().min(0).max(10_000_000).default(0),
  })
  .prefault({});
export type JoinOptions = z.input<typeof JoinOptions>;

export const InviteCode = z.string().trim().min(1, 'paste the invite code').max(8192, 'that is too long to be an invite code');

/** A libp2p peer id as `fedforward id` prints it (base58btc). */
export const PeerIdArg = z.string().trim().regex(/^[1-9A-HJ-NP-Za-km-z]{40,64}$/, 'not a peer id (fedforward id prints one)');

export const CreateInviteArgs = z
  .object({
    expiresHours: z.number().positive('must be above 0').max(24 * 365, 'at most a year').default(24),
    uses: z.number().int('a whole number').min(1, 'at least 1').max(1000, 'at most 1000').default(1),
    /** Bind the code to these peers: they join at once, nobody else can; empty: a member approves each newcomer. */
    for: z.array(PeerIdArg).max(64, 'at most 64 peer ids').default([]),
  })
  .prefault({});

export const ExportArgs = z
  .object({
    /** A committed round; default the newest. */
    round: z.number().int().min(1).optional(),
    /** Merge the adapter into a full checkpoint instead of the PEFT adapter alone. */
    merged: z.boolean().default(false),
  })
  .prefault({});

const taskId = z.string().min(1).max(64);
/** An export's folder name under DATA_DIR/exports (no separators, not hidden). */
export const ExportId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/, 'not an export of this peer');
const inviteId = z.string().min(1).max(128);

/** Each method's positional arguments. */
export const API_ARGS = {
  version: z.tuple([]),
  status: z.tuple([]),
  createFederation: z.tuple([CreateFederationForm]),
  join: z.tuple([InviteCode, pathLike, JoinOptions.optional()]),
  createInvite: z.tuple([CreateInviteArgs.optional()]),
  listInvites: z.tuple([]),
  revokeInvite: z.tuple([inviteId]),
  listPending: z.tuple([]),
  approveJoin: z.tuple([PeerIdArg]),
  removeMember: z.tuple([PeerIdArg]),
  start: z.tuple([]),
  pause: z.tuple([]),
  resume: z.tuple([]),
  metrics: z.tuple([]),
  memory: z.tuple([]),
  dataSummary: z.tuple([]),
  exportAdapter: z.tuple([ExportArgs.optional()]),
  cancel: z.tuple([taskId]),
  timeline: z.tuple([]),
  listExports: z.tuple([]),
  openExportFolder: z.tuple([ExportId]),
} as const;

export type ApiMethodName = keyof typeof API_ARGS;
export const API_METHODS = Object.keys(API_ARGS) as ApiMethodName[];

export function isApiMethod(m: unknown): m is ApiMethodName {
  return typeof m === 'string' && Object.hasOwn(API_ARGS, m);
}

/** Validates `args` for `method`; throws a one-line Error naming the field and the problem. */
export function parseArgs<M extends ApiMethodName>(method: M, args: unknown): z.output<(typeof API_ARGS)[M]> {
  if (!isApiMethod(method)) throw new Error(`unknown method "${String(method).slice(0, 64)}"`);
  const r = API_ARGS[method].safeParse(args);
  if (!r.success) throw new Error(`${method}: ${describeIssue(r.error.issues[0])}`);
  return r.data as z.output<(typeof API_ARGS)[M]>;
}

/** "lora.r: at least 1" (positional arguments lose their index: the method names them). */
export function describeIssue(issue: z.core.$ZodIssue | undefined): string {
  if (!issue) return 'invalid arguments';
  if (issue.path.length === 0 && (issue.code === 'too_small' || issue.code === 'too_big') && issue.origin === 'array') {
    return `expects ${issue.code === 'too_small' ? 'at least' : 'at most'} ${String(issue.code === 'too_small' ? issue.minimum : issue.maximum)} argument(s)`;
  }
  const p = issue.path.filter((k) => typeof k !== 'number' || issue.path.length === 1);
  const where = p.length > 0 ? `${p.join('.')}: ` : '';
  return `${where}${issue.message}`.split('\n')[0]!.slice(0, 300);
}

/** Per field (dotted path without the argument index) the first problem, for forms. */
export function fieldErrors(schema: z.ZodType, value: unknown): Record<string, string> {
  const r = schema.safeParse(value);
  if (r.success) return {};
  const out: Record<string, string> = {};
  for (const i of r.error.issues) {
    const key = i.path.join('.') || '_';
    out[key] ??= i.message;
  }
  return out;
}

// ---- results --------------------------------------------------------------------------------

export type Role = 'leader' | 'follower' | 'candidate' | 'stopped';
/** Where the federation's current round stands, as this peer sees it. */
export type Phase = 'no-federation' | 'stopped' | 'loading' | 'waiting-for-members' | 'training' | 'collecting' | 'finished';

export interface MemberStatus {
  id: string;
  name: string;
  self: boolean;
  aggregator: boolean;
  /** 'self' for this peer; connected or unreachable for the others. */
  link: 'self' | 'connected' | 'unreachable';
  /** Local training progress; only this peer's own is known (peers do not report theirs). */
  progress: { round: number; step: number; steps: number } | null;
  /** The newest round this member's update was counted in, as the timeline saw it (null: none seen). */
  lastUpdateRound: number | null;
}

export interface RoundMetric {
  /** 0: the initial adapter, before any training (the baseline) */
  round: number;
  /** test loss on this peer's held-out data with the round's global adapter */
  testLoss: number;
  /** generalized accuracy: the same adapter on this peer's held-out data (null for LM tasks) */
  accuracy: number | null;
  /** the aggregator's mean training loss over the round's updates (aggregator only) */
  trainLoss: number | null;
  updates: number | null;
  participants: number | null;
  wallMs: number | null;
  at: number;
}

export interface StatusInfo {
  version: string;
  self: { id: string; name: string };
  federation: { id: string; name: string; model: string; method: string; rounds: number; minMembers: number } | null;
  running: boolean;
  paused: boolean;
  role: Role;
  backend: string | null;
  members: MemberStatus[];
  aggregator: { id: string; name: string; term: number } | null;
  round: number;
  phase: Phase;
  committedRound: number;
  lastMetrics: RoundMetric | null;
  /** a one-line problem the peer ran into last (a failed start, a refused update), if any */
  lastError: string | null;
}

/** A newcomer who holds an invite bound to nobody, waiting until a member approves it here. */
export interface PendingInfo {
  peerId: string;
  name: string;
  inviteId: string;
  at: number;
  approved: boolean;
}

export interface InviteInfo {
  id: string;
  /** the code, when it was issued in this session (codes are not stored) */
  code: string | null;
  usesLeft: number;
  expiresAt: number;
  revoked: boolean;
  state: 'active' | 'expired' | 'used-up' | 'revoked';
}

export interface StepPoint {
  round: number;
  /** 1 for a round's first training, 2 once this peer trains the same round again (a retry) */
  attempt: number;
  step: number;
  steps: number;
  loss: number;
  at: number;
}

export interface Metrics {
  rounds: RoundMetric[];
  steps: StepPoint[];
}

/**
 * This peer's process memory as the operating system counts it, sampled at each local training
 * step: the whole process (network side, compute workers, ONNX Runtime's training buffers).
 */
export interface MemoryPoint {
  at: number;
  round: number;
  attempt: number;
  step: number;
  /** resident set size now (bytes) */
  rss: number;
  /** the highest resident set size since the process started (bytes) */
  peakRss: number;
}

/** One estimator's training memory, measured by the bench code in a process of its own. */
export interface TrainingMemoryFigure {
  /** the child process's peak RSS (bytes) */
  peakRssBytes: number;
  /** that peak above its RSS once the model was loaded (bytes; null where it cannot be measured) */
  workingRssBytes: number | null;
  medianStepMs: number;
}

export interface BackpropFigure {
  state: 'not-started' | 'measuring' | 'measured' | 'failed';
  /** measured: `fedforward bench` code on this model, batch and sequence length */
  kind: 'measured';
  model: string;
  batch: number;
  seq: number;
  /** the engine both ran on, as the bench names it */
  engine?: string;
  backprop?: TrainingMemoryFigure;
  forward?: TrainingMemoryFigure;
  error?: string;
}

export interface MemoryInfo {
  samples: MemoryPoint[];
  backprop: BackpropFigure | null;
}

export interface DataSummary {
  source: string;
  kind: 'file' | 'builtin';
  /** bytes on disk (files only) */
  size: number | null;
  examples: number;
  labels: string[];
  balance: { label: string; count: number; fraction: number }[];
  preview: { text: string; label: string | null }[];
}

export interface ExportTask {
  taskId: string;
}

export interface ProgressEvent {
  taskId: string;
  kind: 'export';
  stage: string;
  /** 0..1 */
  fraction: number;
  state: 'running' | 'done' | 'failed' | 'cancelled';
  files?: string[];
  dir?: string;
  error?: string;
}

/** A finished export in DATA_DIR/exports, newest first in the history. */
export interface ExportRecord {
  id: string;
  round: number;
  merged: boolean;
  dir: string;
  files: { name: string; bytes: number }[];
  at: number;
}

/** Result type of each method. */
export interface ApiResults {
  version: string;
  status: StatusInfo;
  createFederation: StatusInfo;
  join: StatusInfo;
  createInvite: InviteInfo & { code: string };
  listInvites: InviteInfo[];
  revokeInvite: InviteInfo[];
  listPending: PendingInfo[];
  approveJoin: PendingInfo[];
  removeMember: StatusInfo;
  start: StatusInfo;
  pause: StatusInfo;
  resume: StatusInfo;
  metrics: Metrics;
  memory: MemoryInfo;
  dataSummary: DataSummary;
  exportAdapter: ExportTask;
  cancel: boolean;
  timeline: TimelineEntry[];
  listExports: ExportRecord[];
  /** '' when the folder opened, else the desktop's reason */
  openExportFolder: string;
}

/** The API as the renderer calls it (input types) and main implements it. */
export type ApiArgs = { [M in ApiMethodName]: z.input<(typeof API_ARGS)[M]> };
export type PeerApi = { [M in ApiMethodName]: (...args: z.output<(typeof API_ARGS)[M]>) => Promise<ApiResults[M]> };

// ---- the round timeline -----------------------------------------------------------------------

const count = z.number().int().min(0).max(1_000_000_000);
const at = z.number().int().min(0).max(8.64e15);
const label = z.string().max(120);
const reason = z.string().max(300);

/**
 * What happened to the federation's rounds, as this peer saw it: elections, each round's phases,
 * retries (a round started again), refused updates, commits and collapse warnings. The peer's API
 * checks every entry against this schema (strings cut to size) before it is pushed or kept.
 */
export const TimelineEntry = z.discriminatedUnion('kind', [
  /** A new aggregator (or none yet) in a new term. */
  z.object({ kind: z.literal('election'), at, term: count, aggregator: label.nullable() }),
  /** A round was announced: its term, aggregator, participants; attempt > 1 is a retry. */
  z.object({ kind: z.literal('round-started'), at, round: count, term: count, attempt: count, aggregator: label, participants: z.array(label).max(256) }),
  /** This peer's view of where the round stands. */
  z.object({ kind: z.literal('phase'), at, round: count, phase: z.enum(['training', 'trained', 'collecting', 'aggregating', 'committing']) }),
  /** A round attempt that did not commit (it is tried again). */
  z.object({ kind: z.literal('round-failed'), at, round: count, term: count, reason }),
  /** An update the aggregator did not count. */
  z.object({ kind: z.literal('update-refused'), at, round: count, member: label, reason }),
  /** A round committed: what the aggregator counted, when known on this peer. */
  z.object({
    kind: z.literal('round-committed'),
    at,
    round: count,
    term: count,
    aggregator: label,
    participants: count.nullable(),
    updates: count.nullable(),
    members: z.array(label).max(256),
  }),
  /** Each member's newest evaluation on its own test split, as their updates to `round` carried them. */
  z.object({
    kind: z.literal('evaluations'),
    at,
    round: count,
    items: z.array(z.object({ member: label, round: count, testLoss: z.number().finite(), accuracy: z.number().min(0).max(1).nullable() })).max(256),
  }),
  /** The round's adapter collapsed (src/shared/collapse.ts): it predicts one class, or does worse than round 0. */
  z.object({ kind: z.literal('collapse-warning'), at, round: count, reason }),
]);
export type TimelineEntry = z.infer<typeof TimelineEntry>;
export type TimelineKind = TimelineEntry['kind'];

/** Entries a peer keeps and sends at most. */
export const MAX_TIMELINE_ENTRIES = 2000;

/** The entry checked and cut to size (long strings shortened), or null when it is not one. */
export function checkTimelineEntry(e: unknown): TimelineEntry | null {
  const cut = (v: unknown, n: number) => (typeof v === 'string' && v.length > n ? `${v.slice(0, n - 1)}…` : v);
  if (typeof e !== 'object' || e === null) return null;
  const o = { ...(e as Record<string, unknown>) };
  for (const k of ['aggregator', 'member'] as const) o[k] = cut(o[k], 120);
  o.reason = cut(o.reason, 300);
  for (const k of ['participants', 'members'] as const) if (Array.isArray(o[k])) o[k] = (o[k] as unknown[]).slice(0, 256).map((v) => cut(v, 120));
  if (o.reason === undefined) delete o.reason;
  for (const k of ['aggregator', 'member', 'participants', 'members'] as const) if (o[k] === undefined) delete o[k];
  const r = TimelineEntry.safeParse(o);
  return r.success ? r.data : null;
}

// ---- events ---------------------------------------------------------------------------------

export interface ApiEvents {
  status: StatusInfo;
  round: RoundMetric;
  step: StepPoint;
  memory: MemoryPoint;
  progress: ProgressEvent;
  timeline: TimelineEntry;
}
export type ApiEventName = keyof ApiEvents;
export const API_EVENTS: ApiEventName[] = ['status', 'round', 'step', 'memory', 'progress', 'timeline'];

// ---- the WebSocket framing of `fedforward serve` --------------------------------------------

/** Largest WebSocket message either side accepts. */
export const MAX_WS_MESSAGE_BYTES = 256 * 1024;

export const WsRequest = z.object({
  id: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  method: z.string().min(1).max(64),
  args: z.array(z.unknown()).max(16),
});
export type WsRequest = z.infer<typeof WsRequest>;

export type WsReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: string }
  | { event: ApiEventName; payload: unknown };
