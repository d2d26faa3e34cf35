// The round timeline as the Rounds screen shows it: per round its attempts (term, aggregator,
// participants, phases), what went wrong (failed attempts, refused updates, collapse warnings) and,
// once committed, its duration and counts; elections beside the rounds they interrupted.
import type { RoundMetric, TimelineEntry } from '../../shared/api.ts';

type Of<K extends TimelineEntry['kind']> = Extract<TimelineEntry, { kind: K }>;

export interface Attempt {
  attempt: number;
  term: number;
  aggregator: string;
  participants: string[];
  startedAt: number;
  phases: { phase: Of<'phase'>['phase']; at: number }[];
  /** why this attempt did not commit (a later attempt, a new term or the aggregator's reason) */
  failed: string | null;
}

export interface RoundRow {
  round: number;
  state: 'committed' | 'running' | 'retrying';
  attempts: Attempt[];
  refused: { member: string; reason: string; at: number }[];
  warnings: string[];
  committed: { at: number; term: number; aggregator: string; participants: number | null; updates: number | null; members: string[] } | null;
  /** from the first start to the commit (or to now while it runs), ms */
  durationMs: number | null;
  metric: RoundMetric | null;
}

export interface TimelineView {
  rounds: RoundRow[];
  elections: Of<'election'>[];
}

export function buildTimeline(entries: TimelineEntry[], metrics: RoundMetric[], now: number): TimelineView {
  const rows = new Map<number, RoundRow>();
  const row = (round: number): RoundRow => {
    let r = rows.get(round);
    if (!r) rows.set(round, (r = { round, state: 'running', attempts: [], refused: [], warnings: [], committed: null, durationMs: null, metric: null }));
    return r;
  };
  const elections: Of<'election'>[] = [];
  for (const e of [...entries].sort((a, b) => a.at - b.at)) {
    switch (e.kind) {
      case 'election': {
        elections.push(e);
        break;
      }
      case 'round-started': {
        const r = row(e.round);
        const same = r.attempts.find((a) => a.attempt === e.attempt);
        if (same) {
          // the aggregator's own report of an attempt already seen: it knows the participants
          if (e.participants.length > 0) same.participants = e.participants;
          same.aggregator = e.aggregator;
          break;
        }
        const prev = r.attempts.at(-1);
        if (prev && prev.failed === null) prev.failed = prev.term !== e.term ? `a new aggregator was elected (term ${e.term})` : 'started again';
        r.attempts.push({ attempt: e.attempt, term: e.term, aggregator: e.aggregator, participants: e.participants, startedAt: e.at, phases: [], failed: null });
        break;
      }
      case 'phase': {
        const a = row(e.round).attempts.at(-1);
        if (a) a.phases.push({ phase: e.phase, at: e.at });
        break;
      }
      case 'round-failed': {
        const a = row(e.round).attempts.at(-1);
        if (a) a.failed = e.reason;
        break;
      }
      case 'update-refused': {
        row(e.round).refused.push({ member: e.member, reason: e.reason, at: e.at });
        break;
      }
      case 'round-committed': {
        const r = row(e.round);
        const prev = r.committed;
        // the aggregator's own report knows who was counted: keep the fuller one
        r.committed = {
          at: prev?.at ?? e.at,
          term: e.term,
          aggregator: e.aggregator,
          participants: e.participants ?? prev?.participants ?? null,
          updates: e.updates ?? prev?.updates ?? null,
          members: e.members.length > 0 ? e.members : (prev?.members ?? []),
        };
        break;
      }
      case 'collapse-warning': {
        row(e.round).warnings.push(e.reason);
        break;
      }
    }
  }
  for (const m of metrics) if (m.round > 0) row(m.round).metric = m;
  for (const r of rows.values()) {
    const first = r.attempts[0]?.startedAt ?? null;
    if (r.committed === null && r.metric !== null) r.committed = { at: r.metric.at, term: r.attempts.at(-1)?.term ?? 0, aggregator: r.attempts.at(-1)?.aggregator ?? '?', participants: r.metric.participants, updates: r.metric.updates, members: [] };
    if (r.committed) {
      r.committed.participants ??= r.metric?.participants ?? null;
      r.committed.updates ??= r.metric?.updates ?? null;
    }
    r.state = r.committed ? 'committed' : r.attempts.length > 1 ? 'retrying' : 'running';
    if (r.committed && r.metric?.wallMs != null && r.attempts.length <= 1) r.durationMs = r.metric.wallMs;
    else if (first !== null) r.durationMs = (r.committed?.at ?? now) - first;
  }
  return { rounds: [...rows.values()].sort((a, b) => a.round - b.round), elections };
}

/** "1 min 5 s", "12.3 s" */
export function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

export const PHASE_WORDS: Record<Of<'phase'>['phase'], string> = {
  training: 'training',
  trained: 'update sent',
  collecting: 'waiting for the updates',
  aggregating: 'aggregating',
  committing: 'committing',
};
