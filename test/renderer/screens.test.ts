// @vitest-environment happy-dom
// Screens with logic, mounted in a DOM against a fake API: the Start form's errors beside the
// fields, the Federation screen's members, aggregator and invite form, the Export screen's rounds.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { flushSync, mount, unmount } from 'svelte';
import Start from '../../src/renderer/screens/Start.svelte';
import Federation from '../../src/renderer/screens/Federation.svelte';
import Export from '../../src/renderer/screens/Export.svelte';
import Data from '../../src/renderer/screens/Data.svelte';
import { DataStore } from '../../src/renderer/lib/stores/data.svelte.ts';
import { connection } from '../../src/renderer/lib/bridge.ts';
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

  it('opens the collapsed training settings and focuses the first wrong field there, with its message', async () => {
    const { api, calls } = fakeApi({});
    mounted.push(mount(Start, { target: document.body, props: { api, federation: new FederationStore(api), onDone: () => {} } }));
    const details = document.querySelector('details')!;
    expect(details.open).toBe(false);
    input('f-name', 'Reviews');
    input('f-r', '0');
    input('f-lr', '5');
    submit(document.querySelector('form[aria-labelledby="create-h"]')!);
    await tick();
    expect(details.open).toBe(true);
    expect(document.activeElement?.id).toBe('f-r');
    expect(document.getElementById('f-r-error')?.textContent).toBe('at least 1');
    expect(document.getElementById('f-r')?.getAttribute('aria-describedby')).toContain('f-r-error');
    expect(document.getElementById('f-lr-error')?.textContent).toBe('at most 1');
    expect(calls).toEqual([]);
  });

  it('focuses the first wrong field in the open part without opening the settings', async () => {
    const { api } = fakeApi({});
    mounted.push(mount(Start, { target: document.body, props: { api, federation: new FederationStore(api), onDone: () => {} } }));
    input('f-r', '0');
    submit(document.querySelector('form[aria-labelledby="create-h"]')!);
    await tick();
    expect(document.activeElement?.id).toBe('f-name');
    expect(document.querySelector('details')!.open).toBe(false);
  });

  it('joins like it creates: a built-in task as data, the same help, a default organisation name', async () => {
    const { api, calls } = fakeApi({ join: () => ({ ...status }) });
    mounted.push(mount(Start, { target: document.body, props: { api, federation: new FederationStore(api), onDone: () => {} } }));
    expect((document.getElementById('j-peer') as HTMLInputElement).value).toBe('organisation-2');
    expect((document.getElementById('f-peer') as HTMLInputElement).value).toBe('organisation-1');
    expect((document.getElementById('j-data') as HTMLInputElement).value).toBe('sentiment');
    expect(document.getElementById('j-data-help')?.textContent).toBe(document.getElementById('f-data-help')?.textContent);
    expect(document.getElementById('j-data-help')?.textContent).toMatch(/built-in task.*\.jsonl\/\.csv/);
    const form = document.querySelector('form[aria-labelledby="join-h"]')!;
    submit(form);
    await tick();
    expect(document.activeElement?.id).toBe('j-code');
    expect(document.getElementById('j-code-error')?.textContent).toBe('paste the invite code');
    input('j-code', 'ff1-abc');
    input('j-domain', 'yelp');
    submit(form);
    await tick();
    expect(calls).toEqual([['join', ['ff1-abc', 'sentiment', { peerName: 'organisation-2', domain: 'yelp' }]]]);
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
    expect(rows[0]).toMatch(/^imdb\s*this peer/);
    expect(document.querySelector('[data-testid="members"] tbody tr .badge.self')?.textContent).toBe('this peer');
    expect(rows[0]).toContain('round 2, step 3/6');
    expect(rows[1]).toContain('unreachable');
    expect(rows[1]).toContain('update counted in round 1');
    expect(rows.join(' ')).not.toContain('not reported');
    expect(document.querySelector('progress')?.getAttribute('aria-label')).toBe('imdb: local training');
  });

  it('says “starting” rather than step 0/0, and what it knows of a member that never reported', () => {
    const { api } = fakeApi({});
    const federation = new FederationStore(api);
    federation.status = {
      ...status,
      members: [
        { ...status.members[0]!, progress: { round: 2, step: 0, steps: 0 } },
        { ...status.members[1]!, lastUpdateRound: null, link: 'connected' },
      ],
    };
    mounted.push(mount(Federation, { target: document.body, props: { federation } }));
    const rows = [...document.querySelectorAll('[data-testid="members"] tbody tr')].map((r) => r.textContent ?? '');
    expect(rows[0]).toContain('round 2, starting');
    expect(rows[0]).not.toContain('0/0');
    expect(rows[1]).toContain('trains on its own machine');
  });

  it('removes a member only after a second click, and never offers to remove this peer', async () => {
    const other = status.members.find((m) => !m.self)!;
    const { api, calls } = fakeApi({ removeMember: () => ({ ...status, members: status.members.filter((m) => m.id !== other.id) }) });
    const federation = new FederationStore(api);
    federation.status = status;
    mounted.push(mount(Federation, { target: document.body, props: { federation } }));
    expect(document.querySelectorAll('button[aria-label^="Remove "]')).toHaveLength(status.members.filter((m) => !m.self).length);
    (document.querySelector(`button[aria-label="Remove ${other.name}"]`) as HTMLElement).click();
    await tick();
    expect(calls).toEqual([]); // asks first
    (document.querySelector('[role="group"] button.danger') as HTMLElement).click();
    await tick();
    expect(calls).toEqual([['removeMember', [other.id]]]);
    expect(document.querySelector('[data-testid="members"]')?.textContent).not.toContain(other.name);
  });

  it('lists newcomers waiting for approval, and approves one', async () => {
    const pending = { peerId: '12D3KooWGzh8Jpe4sT2b3vq5RfsYxo8BfkJVqg4Ha5u6p6DPS3BH', name: 'amazon', inviteId: 'i', at: 0, approved: false };
    const { api, calls } = fakeApi({ approveJoin: () => [{ ...pending, approved: true }] });
    const federation = new FederationStore(api);
    federation.status = status;
    federation.pending = [pending];
    mounted.push(mount(Federation, { target: document.body, props: { federation } }));
    expect(document.querySelector('[data-testid="pending"]')?.textContent).toContain('amazon');
    (document.querySelector('button[aria-label="Approve amazon"]') as HTMLElement).click();
    await tick();
    expect(calls).toEqual([['approveJoin', [pending.peerId]]]);
    expect(document.querySelector('[data-testid="pending"] .badge')?.textContent).toBe('approved');
    expect(document.querySelector('button[aria-label="Approve amazon"]')).toBeNull();
  });

  it('asks before revoking an invite', async () => {
    const inv = { id: 'inv-1', code: null, usesLeft: 1, expiresAt: Date.now() + 3600_000, revoked: false, state: 'active' as const };
    const { api, calls } = fakeApi({ revokeInvite: () => [{ ...inv, revoked: true, state: 'revoked' }] });
    const federation = new FederationStore(api);
    federation.status = status;
    federation.invites = [inv];
    mounted.push(mount(Federation, { target: document.body, props: { federation } }));
    const click = (el: Element | null | undefined) => {
      (el as HTMLElement).click();
      flushSync();
    };
    const button = (text: string) => [...document.querySelectorAll('[data-testid="invites"] button')].find((b) => b.textContent === text);
    click(document.querySelector('button[aria-label^="Revoke invite"]'));
    expect(calls).toEqual([]);
    click(button('Keep it'));
    expect(calls).toEqual([]);
    expect(button('Yes, revoke')).toBeUndefined();
    click(document.querySelector('button[aria-label^="Revoke invite"]'));
    click(button('Yes, revoke'));
    await tick();
    expect(calls).toEqual([['revokeInvite', ['inv-1']]]);
    expect(document.querySelector('[data-testid="invites"] .badge')?.textContent).toBe('revoked');
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

describe('Data', () => {
  it('calls a built-in task a kind, not a size', async () => {
    const summary = { source: 'sentiment (imdb)', kind: 'builtin', size: null, examples: 24, labels: ['neg', 'pos'], balance: [], preview: [] };
    const { api } = fakeApi({ dataSummary: () => summary });
    mounted.push(mount(Data, { target: document.body, props: { data: new DataStore(api) } }));
    await tick();
    const cards = document.querySelector('.cards')!.textContent ?? '';
    expect(cards).toContain('Kindbuilt-in task');
    expect(cards).not.toMatch(/size/i);
  });
});

describe('Export', () => {
  const history = [
    { id: 'merged-round-3-b', round: 3, merged: true, dir: '/d/exports/merged-round-3-b', files: [{ name: 'model.safetensors', bytes: 2048 }], at: 2 },
    { id: 'adapter-round-2-a', round: 2, merged: false, dir: '/d/exports/adapter-round-2-a', files: [{ name: 'adapter_config.json', bytes: 10 }, { name: 'adapter_model.safetensors', bytes: 4096 }], at: 1 },
  ];

  it('lists past exports; in the desktop app each opens its folder', async () => {
    const { api, calls } = fakeApi({ listExports: () => history, openExportFolder: () => '' });
    const federation = new FederationStore(api);
    federation.status = { ...status, committedRound: 3 };
    mounted.push(mount(Export, { target: document.body, props: { federation, exports: new ExportStore(api) } }));
    await tick();
    const rows = [...document.querySelectorAll('[data-testid="export-history"] tbody tr')].map((r) => r.textContent ?? '');
    expect(rows).toHaveLength(2);
    expect(rows[0]).toContain('merged checkpoint');
    expect(rows[1]).toContain('PEFT adapter');
    expect(document.querySelector('[data-testid="export-history"] a')).toBeNull();
    const open = [...document.querySelectorAll('[data-testid="export-history"] button')].filter((b) => b.textContent === 'Open folder');
    expect(open).toHaveLength(2);
    (open[1] as HTMLElement).click();
    await tick();
    expect(calls.at(-1)).toEqual(['openExportFolder', ['adapter-round-2-a']]);
  });

  it('offers downloads behind the page’s token in the browser', async () => {
    connection.transport = 'websocket';
    sessionStorage.setItem('fedforward-token', 'tok');
    try {
      const { api } = fakeApi({ listExports: () => history });
      const federation = new FederationStore(api);
      federation.status = { ...status, committedRound: 3 };
      mounted.push(mount(Export, { target: document.body, props: { federation, exports: new ExportStore(api) } }));
      await tick();
      const links = [...document.querySelectorAll('[data-testid="export-history"] a')] as HTMLAnchorElement[];
      expect(links.map((a) => a.getAttribute('href'))).toEqual([
        '/download/merged-round-3-b/model.safetensors?token=tok',
        '/download/adapter-round-2-a/adapter_config.json?token=tok',
        '/download/adapter-round-2-a/adapter_model.safetensors?token=tok',
      ]);
      expect(links[0]!.getAttribute('download')).toBe('model.safetensors');
      expect(document.querySelector('[data-testid="export-history"] button')).toBeNull();
    } finally {
      connection.transport = 'none';
      sessionStorage.clear();
    }
  });

  it('offers every committed round, newest first', () => {
    const { api } = fakeApi({});
    const federation = new FederationStore(api);
    federation.status = { ...status, committedRound: 3 };
    mounted.push(mount(Export, { target: document.body, props: { federation, exports: new ExportStore(api) } }));
    const options = [...document.querySelectorAll('#exp-round option')].map((o) => o.textContent);
    expect(options).toEqual(['newest committed (3)', 'round 3', 'round 2', 'round 1']);
  });
});
