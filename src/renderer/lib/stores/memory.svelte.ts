// The worker's memory over time, its peak per step, and the backprop figure beside it.
import type { BackpropFigure, MemoryPoint } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';
import { lastAttempts } from './training.svelte.ts';
import { rssGrowthText } from '../memory_view.ts';

const MAX_SAMPLES = 2000;

export class MemoryStore {
  samples = $state<MemoryPoint[]>([]);
  peakPerStep = $state<{ round: number; attempt: number; step: number; peakTensorBytes: number }[]>([]);
  /** the peak of each step of each round's newest attempt: the steps Training counts */
  readonly steps = $derived(lastAttempts(this.peakPerStep));
  backprop = $state<BackpropFigure | null>(null);
  error = $state<string | null>(null);

  readonly peakTensor = $derived(this.samples.reduce((m, s) => Math.max(m, s.peakTensorBytes), 0));
  readonly peakRss = $derived(this.samples.reduce((m, s) => Math.max(m, s.rss), 0));
  readonly latest = $derived(this.samples.at(-1) ?? null);
  readonly rssGrowth = $derived(rssGrowthText(this.samples));
  /** backprop's step working memory over forward mode's, both measured by the bench */
  readonly ratio = $derived(ratioOf(this.backprop));

  private api: Api;
  private off: () => void;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(api: Api) {
    this.api = api;
    this.off = api.on('memory', (p) => this.add(p));
  }

  dispose(): void {
    this.off();
    if (this.timer) clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    try {
      const m = await this.api.call('memory');
      this.samples = m.samples.slice(-MAX_SAMPLES);
      this.peakPerStep = m.peakPerStep;
      this.backprop = m.backprop;
      this.error = null;
      // while the bench measures, ask again now and then
      if (m.backprop?.state === 'measuring' && this.timer === null) {
        this.timer = setInterval(() => {
          if (this.backprop?.state !== 'measuring' && this.timer) {
            clearInterval(this.timer);
            this.timer = null;
            return;
          }
          void this.refresh();
        }, 3000);
      }
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  add(p: MemoryPoint): void {
    const next = [...this.samples, p];
    this.samples = next.length > MAX_SAMPLES ? next.slice(-MAX_SAMPLES) : next;
    const i = this.peakPerStep.findIndex((q) => q.round === p.round && q.attempt === p.attempt && q.step === p.step);
    const point = { round: p.round, attempt: p.attempt, step: p.step, peakTensorBytes: p.peakTensorBytes };
    if (i < 0) this.peakPerStep = [...this.peakPerStep, point];
    else if (this.peakPerStep[i]!.peakTensorBytes < p.peakTensorBytes) {
      const copy = [...this.peakPerStep];
      copy[i] = point;
      this.peakPerStep = copy;
    }
  }
}

export function ratioOf(b: BackpropFigure | null): number | null {
  const f = b?.forward?.stepTensorBytes;
  const bp = b?.backprop?.stepTensorBytes;
  return f && bp && f > 0 ? bp / f : null;
}
