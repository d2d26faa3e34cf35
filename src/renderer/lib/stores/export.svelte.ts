// Export of the adapter: one task at a time, its progress pushed by the peer, cancellable.
import type { ProgressEvent } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

export class ExportStore {
  task = $state<ProgressEvent | null>(null);
  error = $state<string | null>(null);

  readonly running = $derived(this.task?.state === 'running');

  private api: Api;
  private off: () => void;
  private taskId: string | null = null;

  constructor(api: Api) {
    this.api = api;
    this.off = api.on('progress', (p) => {
      if (p.kind === 'export' && p.taskId === this.taskId) this.task = p;
    });
  }

  dispose(): void {
    this.off();
  }

  async start(round: number | undefined, merged: boolean): Promise<void> {
    this.error = null;
    try {
      const { taskId } = await this.api.call('exportAdapter', { ...(round ? { round } : {}), merged });
      this.taskId = taskId;
      if (this.task?.taskId !== taskId) this.task = { taskId, kind: 'export', stage: 'starting', fraction: 0, state: 'running' };
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  async cancel(): Promise<void> {
    if (this.taskId) await this.api.call('cancel', this.taskId).catch(() => false);
  }
}
