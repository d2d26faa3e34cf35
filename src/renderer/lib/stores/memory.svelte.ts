// This peer's process memory over time, at each step, and the training memory of backprop and
// forward mode beside it.
import type { BackpropFigure, MemoryPoint } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';
import { lastAttempts } from './training.svelte.ts';
import { rssGrowthText } from '../memory_view.ts';

const MAX_SAMPLES = 2000;

export class MemoryStore {
  samples = $state<MemoryPoint[]>([]);
  /** the last sample of each step of each round's newest attempt (the steps Training counts): RSS at the step's end */
  readonly steps = $derived(lastAttempts(this.samples));
  backprop = $state<BackpropFigure | null>(null);
  error = $state<string | null>(null);

  /** the process's peak RSS since it started, as last reported */
  readonly peakRss = $derived(this.samples.reduce((m, s) => Math.max(m, s.peakRss), 0));
  readonly latest = $derived(this.samples.at(-1) ?? null);
  readonly rssGrowth = $derived(rssGrowthText(this.samples));
  /** backprop's training working memory over forward mode's, both measured by the bench */
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
  }
}

export function ratioOf(b: BackpropFigure | null): number | null {
  const f = b?.forward?.workingRssBytes;
  const bp = b?.backprop?.workingRssBytes;
  return f && bp && f > 0 ? bp / f : null;
}
