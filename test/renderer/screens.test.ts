// @vitest-environment happy-dom
// Screens with logic, mounted in a DOM against a fake API: the Start form's errors beside the
// fields, the Federation screen's members, aggregator and invite form, the Export screen's rounds.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import Start from '../../src/renderer/screens/Start.svelte';
import Federation from '../../src/renderer/screens/Federation.svelte';
import Export from '../../src/renderer/screens/Export.svelte';
import { FederationStore } from '../../src/renderer/lib/stores/federation.svelte.ts';
import { ExportStore } from '../../src/renderer/lib/stores/export.svelte.ts';
import type { Api } from '../../src/renderer/lib/bridge.ts';
import type { StatusInfo } from '../../src/shared/api.ts';

const mounted: ReturnType<typeof mount>[] = [];
afterEach(() => {
  for (const m of mounted.splice(0)) unmount(m);
  document.body.innerHTML = '';
});

function fakeApi(results: Record<string, (...a: unknown[]) => unknown>) {
  const calls: [string, unknown[]][] = [];
  const api = {
    call: async (m: string, ...args: unknown[]) => {
      calls.push([m, args]);
      const f = results[m];
      if (!f) throw new Error(`${m}: not in this fake`);
      return f(...args);
    },
    on: () => () => {},
  } as unknown as Api;
  return { api, calls };
}

const status: StatusInfo = {
  version: '0.1.0',
  self: { id: 'peer-a', name: 'imdb' },
  federation: { id: 'f', name: 'Reviews', model: 'embedded', method: 'spry', rounds: 3, minMembers: 2 },
  running: true,
  paused: false,
  role: 'leader',
  backend: 'wasm',
  members: [
    { id: 'peer-a', name: 'imdb', self: true, aggregator: true, link: 'self', progress: { round: 2, step: 3, steps: 6 }, lastUpdateRound: null },
    { id: 'peer-b', name: 'yelp', self: false, aggregator: false, link: 'unreachable', progress: null, lastUpdateRound: 1 },
  ],
  aggregator: { id: 'peer-a', name: 'imdb', term: 4 },
  round: 2,
  phase: 'training',
  committedRound: 1,
  lastMetrics: null,
  lastError: null,
};

const tick = async () => {
  for (let i = 0; i < 3; i++) await Promise.resolve();
  flushSync();
};
const input = (id: string, value: string) => {
  const el = document.getElementById(id) as HTMLInputElement;
  el.value = value;
  el.dispatchEvent(new Event('input', { bubbles: true }));
};
const submit = (form: Element) => form.dispatchEvent(new Event('submit', { bubbles: true, cancelable: true }));

describe('Start', () => {
  it('puts errors in words beside the fields and calls nothing until they are fixed', async () => {
    const { api, calls } = fakeApi({ createFederation: () => ({ ...status }) });
    const federation = new FederationStore(api);
    let done = 0;
    mounted.push(mount(Start, { target: document.body, props: { api, federation, onDone: () => done++ } }));
    const form = document.querySelector('form[aria-labelledby="create-h"]')!;
    input('f-rounds', 'many');
    submit(form);
    flushSync();
    expect(document.getElementById('f-name-error')?.textContent).toBe('give it a name');
    expect(document.getElementById('f-rounds-error')?.textContent).toBe('enter a number');
    expect(document.getElementById('f-name')?.getAttribute('aria-invalid')).toBe('true');
    expect(document.getElementById('f-name')?.getAttribute('aria-describedby')).toBe('f-name-help f-name-error');
    expect(calls).toEqual([]);

    input('f-name', 'Reviews');
    input('f-rounds', '3');
    submit(form);
    await tick();
    expect(calls).toHaveLength(1);
    expect(calls[0]![1][0]).toMatchObject({ name: 'Reviews', rounds: 3, model: 'embedded' });
    expect(done).toBe(1);
  });

  it('shows a refused join as one line next to the join form', async () => {
    const { api } = fakeApi({
      join: () => {
        throw new Error('join refused: invite has been used up');
      },
    });
    mounted.push(mount(Start, { target: document.body, props: { api, federation: new FederationStore(api), onDone: () => {} } }));
    input('j-code', 'ff1-abc-def');
    input('j-peer', 'yelp');
    input('j-data', '/data/yelp.jsonl');
    submit(document.querySelector('form[aria-labelledby="join-h"]')!);
    await tick();
    expect(document.querySelector('form[aria-labelledby="join-h"] [role="alert"]')?.textContent).toBe('join refused: invite has been used up');
  });
});

describe('Federation', () => {
  it('lists members with link and progress, and the aggregator with its term', () => {
    const { api } = fakeApi({});
    const federation = new FederationStore(api);
    federation.status = status;
    mounted.push(mount(Federation, { target: document.body, props: { federation } }));
    expect(document.querySelector('[data-testid="aggregator"]')?.textContent).toContain('imdb, since term 4');
    const rows = [...document.querySelectorAll('[data-testid="members"] tbody tr')].map((r) => r.textContent);
    expect(rows[0]).toContain('imdb (this peer)');
    expect(rows[0]).toContain('round 2, step 3/6');
    expect(rows[1]).toContain('unreachable');
    expect(rows[1]).toContain('not reported');
    expect(document.querySelector('progress')?.getAttribute('aria-label')).toBe('imdb: local training');
  });

  it('checks the invite form before asking the peer', async () => {
    const { api, calls } = fakeApi({
      createInvite: () => ({ id: 'i', code: 'ff1-new', usesLeft: 1, expiresAt: Date.now() + 3600_000, revoked: false, state: 'active' }),
      listInvites: () => [{ id: 'i', code: 'ff1-new', usesLeft: 1, expiresAt: Date.now() + 3600_000, revoked: false, state: 'active' }],
    });
    const federation = new FederationStore(api);
    federation.status = status;
    mounted.push(mount(Federation, { target: document.body, props: { federation } }));
    input('inv-uses', '0');
    submit(document.querySelector('form')!);
    flushSync();
    expect(document.getElementById('inv-uses-error')?.textContent).toBe('at least 1');
    expect(calls).toEqual([]);
    input('inv-uses', '1');
    submit(document.querySelector('form')!);
    await vi.waitFor(() => {
      flushSync();
      expect(document.querySelector('[data-testid="invites"]')?.textContent).toContain('in 60 min');
    });
    expect((document.querySelector('[data-testid="invite-code"]') as HTMLTextAreaElement).value).toBe('ff1-new');
    expect(document.querySelector('button[aria-label^="Revoke invite"]')).not.toBeNull();
  });
});

describe('Export', () => {
  it('offers every committed round, newest first', () => {
    const { api } = fakeApi({});
    const federation = new FederationStore(api);
    federation.status = { ...status, committedRound: 3 };
    mounted.push(mount(Export, { target: document.body, props: { federation, exports: new ExportStore(api) } }));
    const options = [...document.querySelectorAll('#exp-round option')].map((o) => o.textContent);
    expect(options).toEqual(['newest committed (3)', 'round 3', 'round 2', 'round 1']);
  });
});
