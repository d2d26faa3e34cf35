// The round timeline of one peer: entries derived from its status (elections, rounds starting and
// committing, its own training phases and retries) merged with what the peer reports itself (an
// aggregator's participants, failed attempts, refused updates). Each entry is checked and cut to
// size (checkTimelineEntry) before it is kept and pushed.
import { MAX_TIMELINE_ENTRIES, checkTimelineEntry, type StatusInfo, type TimelineEntry } from '../../shared/api.ts';

type Draft = { [K in TimelineEntry['kind']]: Omit<Extract<TimelineEntry, { kind: K }>, 'at'> & { at?: number } }[TimelineEntry['kind']];

export class TimelineRecorder {
  private list: TimelineEntry[] = [];
  private emit: (e: TimelineEntry) => void;
  private now: () => number;
  private seen = false;
  private term = -1;
  private round = 0;
  private committed = 0;
  private phase = '';
  private lastStatus: StatusInfo | null = null;
  /** round → how many times it was started (the attempt of its newest start) */
  private attempts = new Map<number, number>();
  /** round → the attempt this peer last trained in, and the step it reached */
  private trained = new Map<number, { attempt: number; step: number }>();

  constructor(emit: (e: TimelineEntry) => void, now: () => number = Date.now) {
    this.emit = emit;
    this.now = now;
  }

  entries(): TimelineEntry[] {
    return [...this.list];
  }

  /** Keeps and pushes an entry; a start's attempt is numbered here. Returns the kept entry or null. */
  add(draft: Draft | Record<string, unknown>): TimelineEntry | null {
    const d = { at: this.now(), ...draft } as Record<string, unknown>;
    if (d.kind === 'round-started' && typeof d.round === 'number') {
      // the aggregator's own report of a start this peer already derived (from the election that
      // began its term) describes the same attempt: it keeps that attempt's number
      const last = this.list.findLast((e) => (e.kind === 'round-started' || e.kind === 'round-failed') && e.round === d.round);
      const same = last?.kind === 'round-started' && last.term === d.term && this.trained.get(d.round)?.attempt !== last.attempt;
      const n = same ? last.attempt : (this.attempts.get(d.round) ?? 0) + 1;
      this.attempts.set(d.round, n);
      d.attempt = n;
    }
    const e = checkTimelineEntry(d);
    if (e === null) return null;
    this.list.push(e);
    if (this.list.length > MAX_TIMELINE_ENTRIES) this.list.splice(0, this.list.length - MAX_TIMELINE_ENTRIES);
    this.emit(e);
    return e;
  }

  /** Compares a status with the previous one and records what changed. */
  observe(st: StatusInfo): void {
    if (st.federation === null || !st.running) return;
    const term = st.aggregator?.term ?? -1;
    const aggregator = st.aggregator?.name ?? null;
    if (st.aggregator && term !== this.term) {
      this.add({ kind: 'election', term, aggregator });
      // a round still open when the aggregator changes starts again under the new one
      if (this.seen && st.round > st.committedRound && this.round === st.round) this.start(st, st.round);
    }
    if (!this.seen) this.committed = st.committedRound;
    if (st.round > this.round && st.round > st.committedRound) this.start(st, st.round);
    for (let r = this.committed + 1; r <= st.committedRound; r++) {
      const m = st.lastMetrics?.round === r ? st.lastMetrics : null;
      this.add({ kind: 'round-committed', round: r, term: Math.max(term, 0), aggregator: aggregator ?? '?', participants: m?.participants ?? null, updates: m?.updates ?? null, members: [] });
    }
    const phase = st.phase === 'training' || st.phase === 'collecting' ? `${st.phase}/${st.round}` : st.phase;
    // 'collecting' before this peer trained in the attempt is only the aggregator getting ready
    const trainedNow = this.trained.get(st.round)?.attempt === this.attempts.get(st.round);
    if (phase !== this.phase && st.round > st.committedRound && (st.phase === 'training' || (st.phase === 'collecting' && trainedNow))) this.add({ kind: 'phase', round: st.round, phase: st.phase });
    this.phase = phase;
    this.term = st.aggregator ? term : this.term;
    this.round = Math.max(this.round, st.round);
    this.committed = Math.max(this.committed, st.committedRound);
    this.seen = true;
    this.lastStatus = st;
  }

  private start(st: StatusInfo, round: number): void {
    const term = st.aggregator?.term ?? 0;
    // the aggregator's own report of this start (with its participants) may have come first
    const last = this.list.findLast((e) => e.kind === 'round-started' && e.round === round);
    if (last?.kind === 'round-started' && last.term === term) return;
    this.add({ kind: 'round-started', round, term, attempt: 0, aggregator: st.aggregator?.name ?? '?', participants: st.members.map((m) => m.name) });
  }

  /** The attempt of a round's newest start (1 when none was seen). */
  attemptOf(round: number): number {
    return this.attempts.get(round) ?? 1;
  }

  /** Round → the newest round each member's update was counted in, from commits that name them. */
  lastUpdates(): Map<string, number> {
    const out = new Map<string, number>();
    for (const e of this.list) if (e.kind === 'round-committed') for (const m of e.members) out.set(m, Math.max(out.get(m) ?? 0, e.round));
    return out;
  }

  /**
   * A step of this peer's local training; returns the attempt it belongs to. Training the same
   * round again within one attempt means the round was started again without this peer hearing
   * why: that is recorded as a new start.
   */
  step(round: number, step: number): number {
    const prev = this.trained.get(round);
    let attempt = this.attempts.get(round) ?? 0;
    if (prev !== undefined && step <= prev.step && prev.attempt >= attempt) {
      const st = this.lastStatus;
      this.add({ kind: 'round-started', round, term: st?.aggregator?.term ?? 0, attempt: 0, aggregator: st?.aggregator?.name ?? '?', participants: [] });
      attempt = this.attempts.get(round)!;
    }
    if (attempt === 0) this.attempts.set(round, (attempt = 1));
    this.trained.set(round, { attempt, step });
    return attempt;
  }
}
