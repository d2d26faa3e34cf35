// End to end: `fedforward serve` in-process with a real Peer behind it, Debian's Chromium driven by
// playwright-core. Create a federation in the UI, create an invite, join a second headless Peer
// with the code (approved in the UI), train two rounds while the charts fill, export the adapter and check that the
// files are what PEFT loads. Then a second run, joined through the UI, in which the aggregator is
// stopped mid-round: the survivors elect a new one and the round starts again; the Rounds screen
// tells it, exports download, and every screen is photographed at 1280×800 and 1024×700, light and
// dark. Screenshots go to test-output/screenshots/.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, statSync, readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { serve, type Serving } from '../../src/main/serve/index.ts';
import { Peer } from '../../src/main/federation/peer.ts';
import type { StepPoint } from '../../src/shared/api.ts';
import { FIXTURES, HAS_FIXTURES } from '../fixtures.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(ROOT, 'test-output', 'screenshots');
const FIXTURE_MODEL = path.join(FIXTURES, 'stories260K', 'hf');
const EMBEDDED = path.join(ROOT, 'models', 'embedded', 'config.json');
const MODEL = HAS_FIXTURES && existsSync(path.join(FIXTURE_MODEL, 'config.json')) ? FIXTURE_MODEL : existsSync(EMBEDDED) ? 'embedded' : null;
const LORA_R = 2;

/** Newest modification time under a folder (to rebuild a stale renderer). */
function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

function ensureRendererBuilt(): void {
  const html = path.join(ROOT, 'out', 'renderer', 'index.html');
  const stale = existsSync(html) && newest(path.join(ROOT, 'src', 'renderer')) > statSync(html).mtimeMs;
  if (existsSync(html) && !stale) return;
  execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'electron-vite', 'bin', 'electron-vite.js'), 'build'], { cwd: ROOT, stdio: 'pipe', timeout: 180_000 });
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const points = async (page: Page, testid: string) => Number(await page.getByTestId(testid).getAttribute('data-points'));

describe.skipIf(!existsSync(CHROMIUM) || MODEL === null)('the interface, end to end in Chromium', () => {
  let serving: Serving;
  let context: BrowserContext;
  let page: Page;
  let joiner: Peer;
  const dirs: string[] = [];
  const pageErrors: string[] = [];

  const tmp = async (tag: string) => {
    const d = await mkdtemp(path.join(os.tmpdir(), `ff-e2e-${tag}-`));
    dirs.push(d);
    return d;
  };
  const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: false });

  beforeAll(async () => {
    ensureRendererBuilt();
    await mkdir(SHOTS, { recursive: true });
    serving = await serve({ dataDir: await tmp('ui'), benchSteps: 1 });
    context = await chromium.launchPersistentContext(await tmp('chromium'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 800 },
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  }, 240_000);

  afterAll(async () => {
    await context?.close().catch(() => {});
    await joiner?.stop().catch(() => {});
    await serving?.close().catch(() => {});
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('refuses the page and the socket without the token', async () => {
    const base = `http://127.0.0.1:${serving.server.port}`;
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(401);
    expect((await fetch(serving.server.url)).status).toBe(200);
  });

  it('creates a federation, invites, trains two rounds with a joined peer, exports', { timeout: 240_000 }, async () => {
    await page.goto(serving.server.url);
    await page.getByRole('heading', { name: 'Start' }).waitFor();
    await shot('01-start');

    // An empty name is refused in plain words next to the field, without a call.
    await page.getByRole('button', { name: 'Create federation' }).click();
    await expect.poll(() => page.locator('#f-name-error').textContent()).toBe('give it a name');
    await page.getByLabel('Rounds').fill('two');
    await page.getByRole('button', { name: 'Create federation' }).click();
    await expect.poll(() => page.locator('#f-rounds-error').textContent()).toBe('enter a number');
    await shot('02-start-errors');

    await page.getByLabel('Federation name').fill('Review sentiment');
    await page.locator('#f-peer').fill('imdb');
    await page.locator('#f-model').fill(MODEL === 'embedded' ? 'embedded' : MODEL!);
    await page.locator('#f-data').fill('sentiment');
    await page.locator('#f-domain').fill('imdb');
    await page.getByLabel('Example cap').fill('24');
    await page.getByLabel('Rounds').fill('2');
    await page.getByLabel('Minimum members').fill('2');
    await page.getByText('Training settings').click();
    await page.getByLabel('LoRA rank r').fill(String(LORA_R));
    await page.getByLabel('LoRA alpha').fill('4');
    await page.getByLabel('Local steps per round').fill('3');
    await page.getByLabel('Batch size').fill('4');
    await page.getByLabel('Max tokens').fill('32');
    await page.getByLabel('Round deadline (s)').fill('60');
    await page.getByRole('button', { name: 'Create federation' }).click();

    await page.getByRole('heading', { name: 'Federation', exact: true }).waitFor({ timeout: 60_000 });
    await until('the peer to lead its federation', async () => ((await page.getByTestId('aggregator').textContent()) ?? '').includes('since term'));

    // An invite with an expiry and one use; the code appears to copy.
    await page.getByLabel('Expires after (hours)').fill('2');
    await page.getByLabel('Uses').fill('1');
    await page.getByRole('button', { name: 'Create invite' }).click();
    const codeBox = page.getByTestId('invite-code');
    await codeBox.waitFor();
    const code = (await codeBox.inputValue()).trim();
    expect(code).toMatch(/^ff1-/);
    await expect.poll(() => page.getByTestId('invites').locator('tbody tr').count()).toBe(1);

    // A second organisation joins headless with the code and its own data.
    joiner = await Peer.open({ dataDir: await tmp('joiner'), listen: ['/ip4/127.0.0.1/tcp/0'] });
    const joining = joiner.join(code, 'yelp', { source: 'sentiment', split: { kind: 'local', client: 'yelp', domain: 'yelp' }, seed: 1, limit: 24 });
    // the code names nobody: the newcomer waits until a member approves it on this screen
    await page.getByRole('button', { name: 'Approve yelp' }).click({ timeout: 60_000 });
    await joining;
    await expect.poll(() => page.getByTestId('members').locator('tbody tr').count(), { timeout: 30_000 }).toBe(2);
    await expect.poll(async () => (await page.getByTestId('members').textContent()) ?? '', { timeout: 30_000 }).toContain('yelp');
    await until('an aggregator of the two', async () => ((await page.getByTestId('aggregator').textContent()) ?? '').includes('since term'), 30_000);
    await shot('03-federation');

    // Training: the charts fill as the two rounds commit.
    await page.getByRole('button', { name: 'Training' }).click();
    await until('two rounds in the loss chart', async () => (await points(page, 'chart-accuracy')) >= 2, 180_000);
    await until('local steps in the step chart', async () => (await points(page, 'chart-steps')) >= 2);
    expect(await points(page, 'chart-loss')).toBeGreaterThanOrEqual(2);
    await expect.poll(async () => (await page.getByTestId('phase').textContent()) ?? '', { timeout: 20_000 }).toContain('all rounds done');
    await shot('04-training');

    // Memory: live samples, and the backprop figure measured with the bench code.
    await page.getByRole('button', { name: 'Memory' }).click();
    await until('memory samples', async () => (await points(page, 'chart-memory')) > 0);
    await expect.poll(async () => (await page.getByTestId('backprop').textContent()) ?? '', { timeout: 120_000, interval: 1000 }).toContain('measured with the bench code');
    await shot('05-memory');

    // Data: this peer's data, balance and preview.
    await page.getByRole('button', { name: 'Data' }).click();
    await expect.poll(() => page.getByTestId('preview').locator('tbody tr').count(), { timeout: 30_000 }).toBe(5);
    expect(await page.getByTestId('examples').textContent()).toBe('24');
    await shot('06-data');

    // Export: the newest round's PEFT adapter.
    await page.getByRole('button', { name: 'Export' }).click();
    await page.getByRole('button', { name: 'Export', exact: true }).last().click();
    await expect.poll(async () => (await page.getByTestId('export-status').textContent()) ?? '', { timeout: 30_000 }).toContain('Done.');
    await shot('07-export');
    const files = await page.getByTestId('export-status').locator('li code').allTextContents();
    const cfgFile = files.find((f) => f.endsWith('adapter_config.json'))!;
    const stFile = files.find((f) => f.endsWith('adapter_model.safetensors'))!;
    expect(cfgFile && stFile).toBeTruthy();

    const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;
    for (const k of ['peft_type', 'task_type', 'r', 'lora_alpha', 'lora_dropout', 'target_modules', 'base_model_name_or_path', 'bias', 'fan_in_fan_out']) expect(cfg).toHaveProperty(k);
    expect(cfg.peft_type).toBe('LORA');
    expect(cfg.r).toBe(LORA_R);
    expect(cfg.lora_alpha).toBe(4);

    const bytes = await readFile(stFile);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    const header = JSON.parse(bytes.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    const names = Object.keys(header).filter((n) => n !== '__metadata__');
    const loraA = names.filter((n) => n.endsWith('.lora_A.weight'));
    expect(loraA.length).toBeGreaterThan(0);
    const hidden = MODEL === 'embedded' ? null : (JSON.parse(await readFile(path.join(MODEL!, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
    for (const n of loraA) {
      expect(n).toMatch(/^base_model\.model\..+\.lora_A\.weight$/);
      const t = header[n]!;
      expect(t.dtype).toBe('F32');
      expect(t.shape).toHaveLength(2);
      expect(t.shape[0]).toBe(LORA_R);
      if (hidden !== null && /\.(q_proj|k_proj|v_proj)\./.test(n)) expect(t.shape[1]).toBe(hidden);
      const b = header[n.replace('lora_A', 'lora_B')];
      expect(b, `lora_B beside ${n}`).toBeDefined();
      expect(b!.shape[1]).toBe(LORA_R);
      const [start, end] = t.data_offsets;
      expect(end - start).toBe(4 * t.shape[0]! * t.shape[1]!);
    }
    // every tensor's bytes lie inside the file
    const dataLen = bytes.length - 8 - headerLen;
    for (const n of names) expect(header[n]!.data_offsets[1]).toBeLessThanOrEqual(dataLen);
  });

  it('moves between screens with the keyboard, with a visible focus', async () => {
    await page.locator('#nav-Start').focus();
    await page.keyboard.press('ArrowDown');
    await page.getByRole('heading', { name: 'Federation', exact: true }).waitFor();
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('nav-Federation');
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Tab');
    await shot('08-keyboard-focus');
    expect(pageErrors).toEqual([]);
  });
});

/** WCAG contrast ratio of two CSS rgb() colours. */
function contrast(a: string, b: string): number {
  const lum = (c: string) => {
    const [r, g, bl] = (c.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => Number(v) / 255).map((v) => (v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4));
    return 0.2126 * r! + 0.7152 * g! + 0.0722 * bl!;
  };
  const [hi, lo] = [lum(a), lum(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

describe.skipIf(!existsSync(CHROMIUM) || MODEL === null)('a run with an election and a retried round, joined through the interface', () => {
  let serving: Serving;
  let context: BrowserContext;
  let page: Page;
  const others: Peer[] = [];
  const dirs: string[] = [];
  const pageErrors: string[] = [];
  const tmp = async (tag: string) => {
    const d = await mkdtemp(path.join(os.tmpdir(), `ff-e2e-${tag}-`));
    dirs.push(d);
    return d;
  };
  const open = async (tag: string) => {
    const p = await Peer.open({ dataDir: await tmp(tag), listen: ['/ip4/127.0.0.1/tcp/0'] });
    others.push(p);
    return p;
  };
  const go = async (screen: string) => {
    await page.locator(`#nav-${screen}`).click();
    await page.getByRole('heading', { name: screen, exact: true }).waitFor();
  };

  beforeAll(async () => {
    ensureRendererBuilt();
    await mkdir(SHOTS, { recursive: true });
    serving = await serve({ dataDir: await tmp('ui2'), benchSteps: 1 });
    context = await chromium.launchPersistentContext(await tmp('chromium2'), {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && pageErrors.push(m.text()));
  }, 240_000);

  afterAll(async () => {
    await context?.close().catch(() => {});
    for (const p of others) await p.stop().catch(() => {});
    await serving?.close().catch(() => {});
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  it('tells the story of each round: an election, a retried round, refused nothing silently', { timeout: 420_000 }, async () => {
    const ui = serving.api.peer;
    // A federation created elsewhere: the aggregator-to-be and a third member.
    const a = await open('creator');
    await a.create({
      name: 'Reviews with a failover',
      peerName: 'amazon',
      model: { model: MODEL!, lora: { r: LORA_R, alpha: 4, dropout: 0 }, maxLength: 32 },
      data: { source: 'sentiment', split: { kind: 'local', client: 'amazon', domain: 'amazon' }, seed: 2, limit: 24 },
      hp: { maxLocalSteps: 3, batchSize: 4, maxLength: 32 },
      rounds: 4,
      minMembers: 3,
      roundDeadlineMs: 120_000,
    });
    await a.start();
    await until('the creator to lead', () => a.status().role === 'leader', 30_000);
    const b = await open('third');
    // bound to the two joiners, so that they join without a member's approval
    const code = await a.invite({ uses: 2, expiresMs: 600_000, for: [ui.peerId, b.peerId] });

    await page.goto(serving.server.url);
    await page.getByRole('heading', { name: 'Start' }).waitFor();

    // A wrong value inside the collapsed "Training settings" opens it and takes the focus there.
    expect(await page.locator('details').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await page.locator('#f-name').fill('never created');
    await page.getByText('Training settings').click();
    await page.locator('#f-r').fill('0');
    await page.getByText('Training settings').click();
    expect(await page.locator('details').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
    await page.getByRole('button', { name: 'Create federation' }).click();
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('f-r');
    expect(await page.locator('details').evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
    expect(await page.locator('#f-r-error').textContent()).toBe('at least 1');

    // Join as Create would: a built-in task as data, the default organisation name kept.
    expect(await page.locator('#j-peer').inputValue()).toBe('organisation-2');
    await page.locator('#j-code').fill(code);
    await page.locator('#j-data').fill('sentiment');
    await page.locator('#j-domain').fill('imdb');
    await page.getByRole('button', { name: 'Join federation' }).click();
    await page.getByRole('heading', { name: 'Federation', exact: true }).waitFor({ timeout: 120_000 });

    await b.join(code, 'yelp', { source: 'sentiment', split: { kind: 'local', client: 'yelp', domain: 'yelp' }, seed: 1, limit: 24 });
    await expect.poll(() => page.getByTestId('members').locator('tbody tr').count(), { timeout: 30_000 }).toBe(3);

    // Hold this peer's training once it has trained round 1, so that a later round stays open until
    // its aggregator is stopped: the survivors must elect a new one and run that round again.
    await go('Training');
    const trained = async () => ((await serving.api.metrics()).steps as StepPoint[]).map((p) => p.round);
    await until('this peer to train round 1', async () => (await trained()).includes(1), 180_000);
    await page.getByRole('button', { name: 'Pause' }).click();
    await until('this peer to be paused', () => ui.status().paused, 10_000);
    let openRound = 0;
    await until(
      'a round after round 1 to wait for this peer',
      async () => {
        const st = ui.status();
        openRound = st.round;
        return st.committedRound >= 1 && st.round > st.committedRound && !(await trained()).includes(st.round);
      },
      180_000,
    );
    const termBefore = ui.status().term;
    await a.stop();
    await until('a new aggregator among the survivors', () => ui.status().term > termBefore && ui.status().leader !== null && ui.status().leader !== a.peerId, 60_000);
    await page.getByRole('button', { name: 'Resume' }).click();
    await until('all 4 rounds committed here', () => ui.status().committedRound >= 4, 300_000);
    await expect.poll(async () => (await page.getByTestId('phase').textContent()) ?? '', { timeout: 30_000 }).toContain('all rounds done');

    // The strip marks the retried round; the step chart draws one attempt per round.
    await expect.poll(() => page.getByTestId('round-strip').locator('li.retried').count(), { timeout: 20_000 }).toBeGreaterThanOrEqual(1);
    const steps = (await serving.api.metrics()).steps as StepPoint[];
    const lastPerRound = new Map<number, number>();
    for (const p of steps) lastPerRound.set(p.round, Math.max(lastPerRound.get(p.round) ?? 0, p.attempt));
    const drawn = steps.filter((p) => p.attempt === lastPerRound.get(p.round)).length;
    await expect.poll(() => points(page, 'chart-steps'), { timeout: 20_000 }).toBe(drawn);
    expect(await page.getByTestId('chart-steps').textContent()).toContain(`${drawn} steps in`);
    // round 0, the baseline, is on the accuracy chart
    await expect.poll(async () => (await page.getByTestId('chart-accuracy').textContent()) ?? '', { timeout: 60_000 }).toContain('round 4:');
    // this peer's rounds 0-4, and the other members' own evaluations their updates carried
    expect(await points(page, 'chart-accuracy')).toBeGreaterThan(5);
    expect(await page.getByTestId('chart-accuracy').textContent()).toContain('before training');

    // Rounds: two terms at least, the retried round with its attempts and why the first did not commit.
    await go('Rounds');
    expect(Number(await page.getByTestId('elections-count').textContent())).toBeGreaterThanOrEqual(2);
    expect(Number(await page.getByTestId('retries-count').textContent())).toBeGreaterThanOrEqual(1);
    const retried = page.locator(`[data-testid="rounds"] > li[data-round="${openRound}"]`);
    const text = (await retried.textContent()) ?? '';
    expect(text).toContain('Attempt 2');
    expect(text).toMatch(/did not commit: a new aggregator was elected \(term \d+\)/);
    // by this peer or the third (named by its short id where this peer never learnt its name)
    expect(text).toMatch(/aggregated by (organisation-2|yelp|…\w{8}), term \d+/);
    expect(await page.locator('[data-testid="rounds"] > li[data-state="committed"]').count()).toBe(4);

    // Memory counts the steps Training draws.
    await go('Memory');
    await expect.poll(async () => (await page.getByTestId('chart-memory-steps').textContent()) ?? '', { timeout: 20_000 }).toContain(`${drawn} steps`);

    // An invite from this member; revoking asks first.
    await go('Federation');
    await page.getByRole('button', { name: 'Create invite' }).click();
    await page.getByTestId('invite-code').waitFor();
    await page.getByRole('button', { name: /^Revoke invite/ }).click();
    await page.getByRole('button', { name: 'Keep it' }).click();
    expect(await page.getByTestId('invites').locator('.badge').first().textContent()).toBe('active');
    await page.getByRole('button', { name: /^Revoke invite/ }).click();
    await page.getByRole('button', { name: 'Yes, revoke' }).click();
    await expect.poll(async () => page.getByTestId('invites').locator('.badge').first().textContent()).toBe('revoked');

    // Export: the browser downloads the files; the history lists the export.
    await go('Export');
    await page.getByRole('button', { name: 'Export', exact: true }).last().click();
    await expect.poll(async () => (await page.getByTestId('export-status').textContent()) ?? '', { timeout: 60_000 }).toContain('Done.');
    await expect.poll(() => page.getByTestId('export-history').locator('tbody tr').count(), { timeout: 10_000 }).toBe(1);
    const link = page.getByTestId('export-history').getByRole('link', { name: /^Download adapter_config\.json/ });
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    const saved = await download.path();
    const exported = (await serving.api.listExports())[0]!;
    expect(await readFile(saved, 'utf8')).toBe(await readFile(path.join(exported.dir, 'adapter_config.json'), 'utf8'));

    // Every screen, light and dark, at both sizes; text keeps its contrast in both schemes.
    for (const scheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme: scheme });
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      expect(bg).toBe(scheme === 'dark' ? 'rgb(11, 17, 32)' : 'rgb(243, 244, 246)');
      for (const [w, h] of [[1280, 800], [1024, 700]] as const) {
        await page.setViewportSize({ width: w, height: h });
        for (const [i, screen] of ['Start', 'Federation', 'Training', 'Rounds', 'Memory', 'Data', 'Export'].entries()) {
          await go(screen);
          if (screen === 'Memory') await expect.poll(async () => (await page.getByTestId('backprop').textContent()) ?? '', { timeout: 120_000, interval: 1000 }).toContain('measured with the bench code');
          if (screen === 'Data') await page.getByTestId('preview').waitFor();
          await page.waitForTimeout(150); // a frame for the charts to draw
          await page.screenshot({ path: path.join(SHOTS, `run2-${scheme}-${w}x${h}-${i + 1}-${screen.toLowerCase()}.png`) });
          const pairs = await page.evaluate(() => {
            const out: [string, string, string][] = [];
            const bgOf = (el: Element | null): string => {
              for (let e = el; e; e = e.parentElement) {
                const c = getComputedStyle(e).backgroundColor;
                if (c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c;
              }
              return getComputedStyle(document.body).backgroundColor;
            };
            for (const el of document.querySelectorAll('main h1, main p, main td, main th, main .k, main .v, main .help, main .badge, main label, main button, main a, nav button, main li')) {
              if (!(el as HTMLElement).offsetParent || !el.textContent?.trim()) continue;
              const st = getComputedStyle(el);
              if (st.opacity !== '1' || (el as HTMLButtonElement).disabled) continue;
              out.push([el.tagName + '.' + el.className, st.color, bgOf(el)]);
            }
            return out;
          });
          for (const [what, fg, back] of pairs) expect(contrast(fg, back), `${scheme} ${screen}: ${what} ${fg} on ${back}`).toBeGreaterThanOrEqual(4.5);
        }
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
    await page.setViewportSize({ width: 1280, height: 800 });
    expect(pageErrors).toEqual([]);
  });
});
