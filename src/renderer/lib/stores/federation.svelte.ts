// The federation as this peer sees it: status (pushed), invites; and the calls that change them.
import type { InviteInfo, PendingInfo, StatusInfo } from '../../../shared/api.ts';
import type { Api } from '../bridge.ts';

const oneLine = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0]!;

export class FederationStore {
  status = $state<StatusInfo | null>(null);
  invites = $state<InviteInfo[]>([]);
  /** newcomers waiting for a member's approval here */
  pending = $state<PendingInfo[]>([]);
  /** the code of the invite created last, to copy */
  lastCode = $state<string | null>(null);
  error = $state<string | null>(null);
  busy = $state(false);

  readonly inFederation = $derived(this.status?.federation != null);
  readonly aggregatorName = $derived(this.status?.aggregator?.name ?? null);

  private api: Api;
  private off: () => void;

  constructor(api: Api) {
    this.api = api;
    this.off = api.on('status', (s) => (this.status = s));
  }

  dispose(): void {
    this.off();
  }

  async refresh(): Promise<void> {
    try {
      this.status = await this.api.call('status');
      if (this.status.federation) [this.invites, this.pending] = await Promise.all([this.api.call('listInvites'), this.api.call('listPending')]);
      this.error = null;
    } catch (e) {
      this.error = oneLine(e);
    }
  }

  /** Runs an action; its error lands in `error` (and is returned) instead of being thrown. */
  private async act<T>(f: () => Promise<T>): Promise<string | null> {
    this.busy = true;
    try {
      await f();
      this.error = null;
      return null;
    } catch (e) {
      this.error = oneLine(e);
      return this.error;
    } finally {
      this.busy = false;
    }
  }

  createInvite(expiresHours: number, uses: number, forIds: string[] = []): Promise<string | null> {
    return this.act(async () => {
      const inv = await this.api.call('createInvite', { expiresHours, uses, ...(forIds.length > 0 ? { for: forIds } : {}) });
      this.lastCode = inv.code;
      this.invites = await this.api.call('listInvites');
    });
  }

  revoke(id: string): Promise<string | null> {
    return this.act(async () => {
      this.invites = await this.api.call('revokeInvite', id);
    });
  }

  approve(peerId: string): Promise<string | null> {
    return this.act(async () => {
      this.pending = await this.api.call('approveJoin', peerId);
    });
  }

  remove(peerId: string): Promise<string | null> {
    return this.act(async () => void (this.status = await this.api.call('removeMember', peerId)));
  }

  start(): Promise<string | null> {
    return this.act(async () => void (this.status = await this.api.call('start')));
  }
  pause(): Promise<string | null> {
    return this.act(async () => void (this.status = await this.api.call('pause')));
  }
  resume(): Promise<string | null> {
    return this.act(async () => void (this.status = await this.api.call('resume')));
  }
}
