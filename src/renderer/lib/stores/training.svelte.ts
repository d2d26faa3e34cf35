// Convergence: per round (test loss, generalized accuracy, aggregated train loss) and per local step.
import type { RoundMetric, StepPoint } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

const MAX_STEPS = 2000;

export class TrainingStore {
  rounds = $state<RoundMetric[]>([]);
  steps = $state<StepPoint[]>([]);
  error = $state<string | null>(null);

  readonly latest = $derived(this.rounds.at(-1) ?? null);
  /** round 0: the initial adapter, before training */
  readonly baseline = $derived(this.rounds.find((r) => r.round === 0) ?? null);
  /** the steps of each round's newest attempt (a retried round's earlier steps are left out) */
  readonly lastSteps = $derived(lastAttempts(this.steps));
  /** rounds whose steps come from a retry */
  readonly retried = $derived([...new Set(this.steps.filter((s) => s.attempt > 1).map((s) => s.round))].sort((a, b) => a - b));
  readonly best = $derived(this.rounds.reduce<number | null>((b, r) => (r.round > 0 && r.accuracy !== null && (b === null || r.accuracy > b) ? r.accuracy : b), null));

  private api: Api;
  private offs: (() => void)[];

  constructor(api: Api) {
    this.api = api;
    this.offs = [api.on('round', (r) => this.addRound(r)), api.on('step', (s) => this.addStep(s))];
  }

  dispose(): void {
    for (const f of this.offs) f();
  }

  async refresh(): Promise<void> {
    try {
      const m = await this.api.call('metrics');
      this.rounds = dedupeRounds(m.rounds);
      this.steps = m.steps.slice(-MAX_STEPS);
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  addRound(r: RoundMetric): void {
    this.rounds = dedupeRounds([...this.rounds, r]);
  }

  addStep(s: StepPoint): void {
    const next = [...this.steps, s];
    this.steps = next.length > MAX_STEPS ? next.slice(-MAX_STEPS) : next;
  }
}

/** One metric per round (the newest), sorted by round. */
export function dedupeRounds(rounds: RoundMetric[]): RoundMetric[] {
  const by = new Map<number, RoundMetric>();
  for (const r of rounds) {
    const prev = by.get(r.round);
    if (!prev || r.at >= prev.at) by.set(r.round, r);
  }
  return [...by.values()].sort((a, b) => a.round - b.round);
}

/** Per round only the steps of its newest attempt, one point per step (the newest), in order. */
export function lastAttempts<T extends { round: number; attempt: number; step: number }>(steps: T[]): T[] {
  const newest = new Map<number, number>();
  for (const s of steps) newest.set(s.round, Math.max(newest.get(s.round) ?? 0, s.attempt));
  const by = new Map<string, T>();
  for (const s of steps) if (s.attempt === newest.get(s.round)) by.set(`${s.round}/${s.step}`, s);
  return [...by.values()].sort((a, b) => a.round - b.round || a.step - b.step);
}

/** The x of a step on a continuous axis: round − 1 + step/steps. */
export function stepX(s: StepPoint): number {
  return s.round - 1 + (s.steps > 0 ? s.step / s.steps : 0);
}
