// This peer's own data: what it is, how its labels balance, a few rows.
import type { DataSummary } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

export class DataStore {
  summary = $state<DataSummary | null>(null);
  error = $state<string | null>(null);
  loading = $state(false);

  private api: Api;
  constructor(api: Api) {
    this.api = api;
  }

  async load(): Promise<void> {
    this.loading = true;
    try {
      this.summary = await this.api.call('dataSummary');
      this.error = null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.loading = false;
    }
  }
}
