// The round timeline's entries: the history the peer kept, then each pushed entry.
import { MAX_TIMELINE_ENTRIES, type TimelineEntry } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

export class TimelineStore {
  entries = $state<TimelineEntry[]>([]);
  error = $state<string | null>(null);

  private api: Api;
  private off: () => void;

  constructor(api: Api) {
    this.api = api;
    this.off = api.on('timeline', (e) => this.add(e));
  }

  dispose(): void {
    this.off();
  }

  async refresh(): Promise<void> {
    try {
      const list = await this.api.call('timeline');
      // entries pushed while the history was on its way are in it or newer
      const newest = list.at(-1)?.at ?? -Infinity;
      this.entries = [...list, ...this.entries.filter((e) => e.at > newest)].slice(-MAX_TIMELINE_ENTRIES);
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  add(e: TimelineEntry): void {
    const next = [...this.entries, e];
    this.entries = next.length > MAX_TIMELINE_ENTRIES ? next.slice(-MAX_TIMELINE_ENTRIES) : next;
  }
}
