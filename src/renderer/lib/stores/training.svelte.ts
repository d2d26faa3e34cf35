// Convergence: per round (test loss, generalized accuracy, aggregated train loss) and per local step.
import type { RoundMetric, StepPoint } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

const MAX_STEPS = 2000;

export class TrainingStore {
  rounds = $state<RoundMetric[]>([]);
  steps = $state<StepPoint[]>([]);
  error = $state<string | null>(null);

  readonly latest = $derived(this.rounds.at(-1) ?? null);
  readonly best = $derived(this.rounds.reduce<number | null>((b, r) => (r.accuracy !== null && (b === null || r.accuracy > b) ? r.accuracy : b), null));

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

/** The x of a step on a continuous axis: round − 1 + step/steps. */
export function stepX(s: StepPoint): number {
  return s.round - 1 + (s.steps > 0 ? s.step / s.steps : 0);
}
