// `fedforward demo`, the main job, as a user runs it (cut to one short round): three peers over
// loopback, each with its own mail file, train the embedded model together and export a PEFT adapter.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/main/cli/index.ts');
let tmp = '';

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

interface Summary {
  rounds: number;
  commits: { round: number; term: number | null; aggregator: string | null }[];
  organisations: { name: string; accuracyBefore: number; accuracyAfter: number; testLossBefore: number; testLossAfter: number; bytesSent: number }[];
  adapter: string;
}

describe('fedforward demo', () => {
  it('federates three organisations for a round and exports the adapter they trained', { timeout: 120_000 }, async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-demo-'));
    const stdout = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [CLI, 'demo', '--rounds', '1', '--max-local-steps', '2', '--out', tmp, '--json'], { timeout: 110_000 }, (err, out, errOut) =>
        err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(out),
      ),
    );
    const summary = JSON.parse(stdout) as Summary;
    expect(summary.rounds).toBe(1);
    // each round with the term it was committed in and the peer that led that term, never "?"
    expect(summary.commits).toHaveLength(1);
    expect(summary.commits[0]).toMatchObject({ round: 1, term: expect.any(Number), aggregator: expect.stringMatching(/^(clinic|bank|school)$/) });
    expect(summary.commits[0]!.term).toBeGreaterThanOrEqual(1);
    expect(summary.organisations.map((o) => o.name)).toEqual(['clinic', 'bank', 'school']);
    for (const o of summary.organisations) {
      expect(o.accuracyBefore).toBeGreaterThan(0);
      // The committed adapter is not the initial one: every organisation's test loss moved.
      expect(o.testLossAfter).not.toBe(o.testLossBefore);
      expect(Number.isFinite(o.testLossAfter)).toBe(true);
      expect(o.bytesSent).toBeGreaterThan(0);
    }
    // each organisation's mail is a file of its own: 600 subject lines, spam and ham, shared with no one
    const seen = new Set<string>();
    for (const org of ['clinic', 'bank', 'school']) {
      const rows = (await readFile(path.join(tmp, 'data', `${org}.jsonl`), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { text: string; label: string });
      expect(rows).toHaveLength(600);
      const spam = rows.filter((r) => r.label === 'spam').length;
      expect(spam).toBeGreaterThan(240);
      expect(rows.length - spam).toBeGreaterThan(240);
      for (const r of rows) {
        expect(seen.has(r.text)).toBe(false);
        seen.add(r.text);
      }
    }
    expect(summary.adapter).toBe(path.join(tmp, 'adapter'));
    const config = JSON.parse(await readFile(path.join(summary.adapter, 'adapter_config.json'), 'utf8')) as { peft_type: string; task_type: string };
    expect(config).toMatchObject({ peft_type: 'LORA', task_type: 'SEQ_CLS' });
    expect((await stat(path.join(summary.adapter, 'adapter_model.safetensors'))).size).toBeGreaterThan(0);
  });
});
