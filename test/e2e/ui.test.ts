// End to end: `fedforward serve` in-process with a real Peer behind it, Debian's Chromium driven by
// playwright-core. Create a federation in the UI, create an invite, join a second headless Peer
// with the code, train two rounds while the charts fill, export the adapter and check that the
// files are what PEFT loads. Screenshots of every screen go to test-output/screenshots/.
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
    await joiner.join(code, 'yelp', { source: 'sentiment', split: { kind: 'local', client: 'yelp', domain: 'yelp' }, seed: 1, limit: 24 });
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
