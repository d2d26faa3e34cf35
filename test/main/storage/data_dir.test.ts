import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, readdir, rm, stat, writeFile, appendFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import os from 'node:os';
import path from 'node:path';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { DataDir, StorageError, openDataDir, storageError } from '../../../src/main/storage/data_dir.ts';

let root: string;

beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ff-datadir-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed * 7) & 0xff;
  return out;
}

describe('DataDir', () => {
  it('creates the layout with owner-only permissions', async () => {
    const dir = await openDataDir(path.join(root, 'peer'));
    expect((await readdir(dir.root)).sort()).toEqual(['checkpoints', 'exports']);
    if (process.platform !== 'win32') expect((await stat(dir.root)).mode & 0o777).toBe(0o700);
  });

  it('creates an Ed25519 identity on first use (mode 0600) and keeps the peer id across restarts', async () => {
    const a = await openDataDir(root);
    const key = await a.loadOrCreateIdentity();
    expect(key.type).toBe('Ed25519');
    if (process.platform !== 'win32') expect((await stat(a.identityFile)).mode & 0o777).toBe(0o600);
    const b = await openDataDir(root);
    const again = await b.loadOrCreateIdentity();
    expect(peerIdFromPrivateKey(again).toString()).toBe(peerIdFromPrivateKey(key).toString());
    expect(again.equals(key)).toBe(true);
  });

  it('refuses a corrupt identity instead of silently replacing it', async () => {
    const dir = await openDataDir(root);
    await writeFile(dir.identityFile, 'garbage');
    const err = await dir.loadOrCreateIdentity().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/identity\.key is corrupt/);
    expect((err as Error).message).not.toContain('\n');
    expect(await readFile(dir.identityFile, 'utf8')).toBe('garbage');
  });

  it('tightens a too-open identity file to 0600', async () => {
    if (process.platform === 'win32') return;
    const dir = await openDataDir(root);
    await dir.loadOrCreateIdentity();
    const { chmod } = await import('node:fs/promises');
    await chmod(dir.identityFile, 0o644);
    await dir.loadOrCreateIdentity();
    expect((await stat(dir.identityFile)).mode & 0o777).toBe(0o600);
  });

  it('writes and reads federation.json, validated, mode 0600', async () => {
    const dir = await openDataDir(root);
    expect(await dir.readFederation()).toBeNull();
    const saved = await dir.writeFederation({
      version: 1,
      settings: { federationId: 'fed-1', federationName: 'Hospitals', createdAt: 1_700_000_000_000, roundDeadlineMs: 60_000 },
      swarmKey: 'ab'.repeat(32),
      bootstrap: ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWSomething'],
    });
    expect(saved.raft).toEqual({ term: 0, votedFor: null });
    expect(saved.members).toEqual([]);
    const read = await dir.readFederation();
    expect(read).toEqual(saved);
    if (process.platform !== 'win32') expect((await stat(dir.federationFile)).mode & 0o777).toBe(0o600);
    await expect(dir.writeFederation({ ...saved, swarmKey: 'nothex' })).rejects.toThrow(/refusing to write invalid federation settings: swarmKey/);
    await writeFile(dir.federationFile, '{"version":1}');
    await expect(dir.readFederation()).rejects.toThrow(/federation\.json is invalid: settings/);
    await writeFile(dir.federationFile, '{');
    await expect(dir.readFederation()).rejects.toThrow(/federation\.json is not valid JSON/);
  });

  it('commits checkpoints in order with sha256, file before index', async () => {
    let t = 1000;
    const dir = await openDataDir(root, { now: () => t++ });
    expect(await dir.readLatestCheckpoint()).toBeNull();
    const e1 = await dir.commitCheckpoint(1, bytes(100, 1));
    const e2 = await dir.commitCheckpoint(2, bytes(120, 2));
    expect(e1).toEqual({ round: 1, sha256: createHash('sha256').update(bytes(100, 1)).digest('hex'), bytes: 100, committedAt: 1000 });
    expect(e2.round).toBe(2);
    expect(await dir.listCheckpoints()).toEqual([e1, e2]);
    const latest = await dir.readLatestCheckpoint();
    expect(latest?.entry).toEqual(e2);
    expect(latest?.bytes).toEqual(bytes(120, 2));
    expect(latest?.skipped).toEqual([]);
    expect((await readdir(dir.checkpointsDir)).sort()).toEqual(['index.json', 'round-1.safetensors', 'round-2.safetensors']);
    // Rounds only move forward; re-committing the newest with the same bytes is a no-op.
    await expect(dir.commitCheckpoint(1, bytes(100, 1))).rejects.toThrow('round 1 is older than the last committed round 2');
    await expect(dir.commitCheckpoint(2, bytes(120, 3))).rejects.toThrow('round 2 is already committed with different contents');
    expect(await dir.commitCheckpoint(2, bytes(120, 2))).toEqual(e2);
    expect((await dir.readCheckpoint(1)).bytes).toEqual(bytes(100, 1));
    await expect(dir.readCheckpoint(7)).rejects.toThrow('round 7 has no committed checkpoint');
  });

  it('serialises concurrent commits', async () => {
    const dir = await openDataDir(root);
    await Promise.all([1, 2, 3, 4].map((r) => dir.commitCheckpoint(r, bytes(50, r))));
    expect((await dir.listCheckpoints()).map((e) => e.round)).toEqual([1, 2, 3, 4]);
  });

  it('falls back to the previous round when the newest file is corrupt or missing', async () => {
    const dir = await openDataDir(root);
    await dir.commitCheckpoint(1, bytes(64, 1));
    await dir.commitCheckpoint(2, bytes(64, 2));
    await dir.commitCheckpoint(3, bytes(64, 3));
    // Flip one byte of round 3, delete round 2.
    const p3 = dir.checkpointPath(3);
    const b3 = await readFile(p3);
    b3[10] = b3[10]! ^ 0xff;
    await writeFile(p3, b3);
    await rm(dir.checkpointPath(2));
    const latest = await dir.readLatestCheckpoint();
    expect(latest?.entry.round).toBe(1);
    expect(latest?.bytes).toEqual(bytes(64, 1));
    expect(latest?.skipped.map((e) => e.round)).toEqual([3, 2]);
    await expect(dir.readCheckpoint(3)).rejects.toThrow(/checkpoint of round 3 is missing or corrupt/);
    // Re-committing round 3 with the right bytes repairs it.
    await dir.commitCheckpoint(3, bytes(64, 3));
    expect((await dir.readLatestCheckpoint())?.entry.round).toBe(3);
  });

  it('a kill between the checkpoint file and the index leaves the last committed round readable', async () => {
    const dir = await openDataDir(root);
    await dir.commitCheckpoint(1, bytes(64, 1));
    // Simulate the kill: round 2's file was renamed into place, the index never got its entry;
    // a stray temporary file lies around as well.
    await writeFile(dir.checkpointPath(2), bytes(64, 2));
    await writeFile(path.join(dir.checkpointsDir, '.index.json.123.abcdef.tmp'), '{"version":1,"checkp');
    const reopened = await openDataDir(root);
    const latest = await reopened.readLatestCheckpoint();
    expect(latest?.entry.round).toBe(1);
    // Committing round 2 afterwards simply replaces the orphan.
    await reopened.commitCheckpoint(2, bytes(64, 22));
    expect((await reopened.readLatestCheckpoint())?.bytes).toEqual(bytes(64, 22));
  });

  it('stages a checkpoint outside the index, keeps one staged file, and promotes it by renaming it into place', async () => {
    const dir = await openDataDir(root);
    await dir.commitCheckpoint(1, bytes(100, 1), 1);
    const a = await dir.stageCheckpoint(2, 3, bytes(100, 2));
    expect(a.sha256).toBe(createHash('sha256').update(bytes(100, 2)).digest('hex'));
    expect(path.basename(a.file)).toBe(`staged-round-2-t3-${a.sha256}.safetensors`);
    // Staged is not committed: the index and the latest checkpoint do not see it.
    expect((await dir.listCheckpoints()).map((e) => e.round)).toEqual([1]);
    expect((await dir.readLatestCheckpoint())!.entry.round).toBe(1);
    await expect(dir.readCheckpoint(2)).rejects.toThrow(/no committed checkpoint/);
    // Another staging (a newer aggregator) replaces it.
    const b = await dir.stageCheckpoint(2, 4, bytes(100, 3));
    expect(await dir.listStaged()).toEqual([b]);
    expect(await dir.readStaged(b)).toEqual(bytes(100, 3));
    // Promotion: the staged file is renamed into place and committed with the term it is given.
    const entry = await dir.promoteStaged(b, 5);
    expect(entry).toMatchObject({ round: 2, term: 5, sha256: b.sha256, bytes: 100 });
    expect(await dir.listStaged()).toEqual([]);
    expect((await dir.listCheckpoints()).map((e) => [e.round, e.term])).toEqual([[1, 1], [2, 5]]);
    expect((await dir.readCheckpoint(2)).bytes).toEqual(bytes(100, 3));
    // A corrupt staged file reads as null and cannot be promoted; nothing is committed.
    const c = await dir.stageCheckpoint(3, 4, bytes(50, 4));
    await writeFile(c.file, bytes(50, 5));
    expect(await dir.readStaged(c)).toBeNull();
    await expect(dir.promoteStaged(c)).rejects.toThrow(/^staged checkpoint .* is missing or corrupt$/);
    expect((await dir.listCheckpoints()).map((e) => e.round)).toEqual([1, 2]);
    // A staged round older than the last committed one is refused, and stays staged.
    const old = await dir.stageCheckpoint(1, 6, bytes(100, 6));
    await expect(dir.promoteStaged(old)).rejects.toThrow(/older than the last committed round 2/);
    expect(await dir.listStaged()).toEqual([old]);
    await dir.stageCheckpoint(3, 4, bytes(50, 4)); // staged again, intact; the old one goes
    // Reopened: staged files are still there (a cache), never in the index.
    const again = await openDataDir(root);
    expect((await again.listStaged()).map((e) => e.round)).toEqual([3]);
    expect((await again.listCheckpoints()).map((e) => e.round)).toEqual([1, 2]);
  });

  it('reports a corrupt index in one line', async () => {
    const dir = await openDataDir(root);
    await writeFile(dir.indexFile, 'not json');
    await expect(dir.readLatestCheckpoint()).rejects.toThrow(/index\.json is not valid JSON$/);
  });

  it('appends metrics and survives a torn last line', async () => {
    const dir = await openDataDir(root);
    await dir.appendMetric({ round: 1, loss: 2.5 });
    await dir.appendMetric({ round: 2, loss: 2.25 });
    await appendFile(dir.metricsFile, '{"round":3,"lo'); // a crash mid-append
    expect(await dir.readMetrics()).toEqual([{ round: 1, loss: 2.5 }, { round: 2, loss: 2.25 }]);
    const reopened = await openDataDir(root);
    await reopened.appendMetric({ round: 3, loss: 2 });
    expect(await reopened.readMetrics()).toEqual([{ round: 1, loss: 2.5 }, { round: 2, loss: 2.25 }, { round: 3, loss: 2 }]);
    await expect(reopened.appendMetric({ s: 'a\nb' })).resolves.toBeUndefined(); // JSON escapes newlines
  });

  it('gives export paths inside exports/ only', async () => {
    const dir = await openDataDir(root);
    expect(dir.exportPath('adapter-round-3')).toBe(path.join(dir.exportsDir, 'adapter-round-3'));
    expect(() => dir.exportPath('../escape')).toThrow(StorageError);
    expect(() => dir.exportPath('..')).toThrow(StorageError);
    expect(() => dir.exportPath('')).toThrow(StorageError);
  });

  it('an unusable directory gives a one-line error', async () => {
    const file = path.join(root, 'a-file');
    await writeFile(file, 'x');
    const err = await openDataDir(path.join(file, 'peer')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toMatch(/^cannot create .*a-file\/peer: a parent path is not a directory$/);
    // A checkpoint directory replaced by a file: commit fails with one line.
    const dir = await DataDir.open(path.join(root, 'p2'));
    await rm(dir.checkpointsDir, { recursive: true });
    await writeFile(dir.checkpointsDir, 'x');
    const err2 = await dir.commitCheckpoint(1, bytes(8, 1)).catch((e: unknown) => e);
    expect(err2).toBeInstanceOf(StorageError);
    expect((err2 as Error).message).not.toContain('\n');
  });

  it('maps errno codes to one-line messages', () => {
    const mk = (code: string): Error => Object.assign(new Error(`${code}: something\nstack`), { code });
    expect(storageError(mk('ENOSPC'), 'write', '/d/f').message).toBe('disk full: cannot write /d/f');
    expect(storageError(mk('EACCES'), 'write', '/d/f').message).toBe('permission denied: cannot write /d/f');
    expect(storageError(mk('EPERM'), 'create', '/d').message).toBe('permission denied: cannot create /d');
    expect(storageError(mk('EROFS'), 'write', '/d/f').message).toBe('read-only file system: cannot write /d/f');
    expect(storageError(mk('EDQUOT'), 'write', '/d/f').message).toBe('disk quota exceeded: cannot write /d/f');
    expect(storageError(mk('EIO'), 'read', '/d/f').message).toBe('cannot read /d/f: EIO: something');
    expect(storageError(mk('ENOSPC'), 'write', '/d/f').code).toBe('ENOSPC');
  });
});
