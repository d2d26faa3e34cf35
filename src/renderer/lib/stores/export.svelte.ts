// Export of the adapter: one task at a time, its progress pushed by the peer, cancellable; the
// history of finished exports, and opening one's folder (desktop app).
import type { ExportRecord, ProgressEvent } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

export class ExportStore {
  task = $state<ProgressEvent | null>(null);
  error = $state<string | null>(null);
  history = $state<ExportRecord[]>([]);

  readonly running = $derived(this.task?.state === 'running');

  private api: Api;
  private off: () => void;
  private taskId: string | null = null;

  constructor(api: Api) {
    this.api = api;
    this.off = api.on('progress', (p) => {
      if (p.kind !== 'export' || p.taskId !== this.taskId) return;
      this.task = p;
      if (p.state === 'done') void this.refreshHistory();
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

  async refreshHistory(): Promise<void> {
    try {
      this.history = await this.api.call('listExports');
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  /** Opens an export's folder in the system's file manager (desktop app); its refusal lands in `error`. */
  async openFolder(id: string): Promise<void> {
    try {
      const why = await this.api.call('openExportFolder', id);
      this.error = why ? `cannot open the folder: ${why}` : null;
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    }
  }

  async cancel(): Promise<void> {
    if (this.taskId) await this.api.call('cancel', this.taskId).catch(() => false);
  }
}
