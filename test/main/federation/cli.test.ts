// The federation subcommands as a user runs them: create, invite, status, and one-line refusals.
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../src/main/cli/index.ts');
let tmp = '';

function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

function runWithStdin(input: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { timeout: 90_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe('fedforward create | invite | status | join', () => {
  it('creates a federation, issues an invite, reports status, refuses bad input in one line', { timeout: 240_000 }, async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'ff-cli-'));
    const a = path.join(tmp, 'a');
    const created = await run('create', '--data-dir', a, '--name', 'demo', '--peer-name', 'imdb', '--domain', 'imdb', '--rounds', '3', '--listen', '/ip4/127.0.0.1/tcp/40999', '--json');
    expect(created.code).toBe(0);
    const info = JSON.parse(created.stdout) as { peerId: string; settings: { federationName: string; rounds: number; signature: string } };
    expect(info.settings).toMatchObject({ federationName: 'demo', rounds: 3 });
    expect(info.settings.signature).toMatch(/^[0-9a-f]+$/);

    const [inv, status, again, typo, nowhere] = await Promise.all([
      run('invite', '--data-dir', a, '--uses', '2', '--json'),
      run('status', '--data-dir', a, '--json'),
      run('create', '--data-dir', a, '--name', 'x', '--peer-name', 'y'),
      runWithStdin('ff1-abcdefghijklmnopqrstuvwxyz-abcd\n', 'join', '--code-file', '-', '--data-dir', path.join(tmp, 'b'), '--peer-name', 'yelp'),
      run('invite', '--data-dir', path.join(tmp, 'c')),
    ]);
    expect(inv.code).toBe(0);
    const { code } = JSON.parse(inv.stdout) as { code: string };
    expect(code).toMatch(/^ff1-[a-z2-7]+-[a-z2-7]+$/);
    expect(status.code).toBe(0);
    const s = JSON.parse(status.stdout) as { peerId: string; members: unknown[]; committedRound: number };
    // Never run: no aggregator known yet (a running peer records the one it follows, with its term).
    expect(s).toMatchObject({ peerId: info.peerId, committedRound: 0, aggregator: null, committedSha256: null });
    expect(s.members).toHaveLength(1);
    // The peer id an inviter binds an invite to; a code on the command line is refused (ps shows argv).
    const [id, pending, argvCode] = await Promise.all([
      run('id', '--data-dir', a),
      run('pending', '--data-dir', a),
      run('join', code, '--data-dir', path.join(tmp, 'd'), '--peer-name', 'x'),
    ]);
    expect(id.stdout.trim()).toBe(info.peerId);
    expect(pending.stdout.trim()).toBe('nobody is waiting');
    expect(argvCode.code).not.toBe(0);
    expect(argvCode.stderr).toMatch(/too many arguments/);
    for (const [r, re] of [
      [again, /already belongs to federation "demo"/],
      [typo, /invite code is mistyped/],
      [nowhere, /belongs to no federation/],
    ] as const) {
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(re);
    }
  });
});
