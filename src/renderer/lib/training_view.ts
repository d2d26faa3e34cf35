// What the Training screen says about its figures, as plain functions.
import type { DataSummary, StatusInfo, StepPoint, TimelineEntry } from '../../shared/api.ts';

/** The commonest label of this peer's data: what a model that predicts one class scores. */
export function majorityOf(d: DataSummary | null): { label: string; fraction: number } | null {
  if (d === null || d.balance.length < 2) return null;
  return d.balance.reduce((b, x) => (x.fraction > b.fraction ? x : b));
}

export interface Slot {
  round: number;
  state: 'committed' | 'current' | 'pending';
  attempts: number;
}

/** One slot per round (at most 60): committed, current or pending, and how often it was started. */
export function roundSlots(s: StatusInfo, entries: TimelineEntry[]): Slot[] {
  if (!s.federation) return [];
  const attempts = new Map<number, number>();
  for (const e of entries) if (e.kind === 'round-started') attempts.set(e.round, Math.max(attempts.get(e.round) ?? 0, e.attempt));
  const n = Math.min(s.federation.rounds, 60);
  return Array.from({ length: n }, (_, i) => {
    const round = i + 1;
    const state = round <= s.committedRound ? 'committed' : round === s.round || (round === s.committedRound + 1 && s.running) ? 'current' : 'pending';
    return { round, state, attempts: attempts.get(round) ?? 0 };
  });
}

/** "50 steps in 2 rounds (25 per round), last loss 0.6931; round 2 was retried: only its last attempt is drawn" */
export function stepSummary(steps: StepPoint[], retried: number[]): string {
  if (steps.length === 0) return '';
  const rounds = new Set(steps.map((p) => p.round)).size;
  const per = steps.at(-1)!.steps;
  const retry = retried.length === 0 ? '' : `; round${retried.length > 1 ? 's' : ''} ${retried.join(', ')} ${retried.length > 1 ? 'were' : 'was'} retried: only the last attempt is drawn`;
  return `${steps.length} steps in ${rounds} round${rounds === 1 ? '' : 's'}${per > 0 ? ` (${per} per round)` : ''}, last loss ${steps.at(-1)!.loss.toFixed(4)}${retry}`;
}

export interface MemberCurve {
  member: string;
  points: { round: number; testLoss: number; accuracy: number | null }[];
}

/**
 * The other members' evaluations on their own test splits, as their updates carried them (each
 * update brings its sender's newest evaluated round); one curve per member, by round.
 */
export function memberCurves(entries: TimelineEntry[], self: string): MemberCurve[] {
  const by = new Map<string, Map<number, { round: number; testLoss: number; accuracy: number | null }>>();
  for (const e of entries) {
    if (e.kind !== 'evaluations') continue;
    for (const it of e.items) {
      if (it.member === self) continue;
      let m = by.get(it.member);
      if (!m) by.set(it.member, (m = new Map()));
      m.set(it.round, { round: it.round, testLoss: it.testLoss, accuracy: it.accuracy });
    }
  }
  return [...by].map(([member, m]) => ({ member, points: [...m.values()].sort((a, b) => a.round - b.round) })).sort((a, b) => a.member.localeCompare(b.member));
}
