// A full disk and an unwritable directory, simulated at the atomic-write layer (this machine runs the
// tests as root, so permissions cannot be provoked for real, and a disk cannot be filled safely).
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

const failure: { code: string | null } = { code: null };

vi.mock('../../../src/shared/atomic_write.ts', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../../src/shared/atomic_write.ts')>();
  return {
    ...real,
    writeFileAtomic: async (file: string, data: Uint8Array | string) => {
      if (failure.code !== null) {
        throw Object.assign(new Error(`${failure.code}: simulated, write '${file}'\n    at somewhere`), { code: failure.code });
      }
      return real.writeFileAtomic(file, data);
    },
  };
});

const { openDataDir, StorageError } = await import('../../../src/main/storage/data_dir.ts');

let root: string;
beforeEach(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'ff-full-'));
  failure.code = null;
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('DataDir on a failing disk', () => {
  it('a full disk while committing gives one line and keeps the last committed round', async () => {
    const dir = await openDataDir(root);
    await dir.commitCheckpoint(1, new Uint8Array([1, 2, 3, 4]));
    failure.code = 'ENOSPC';
    const err = await dir.commitCheckpoint(2, new Uint8Array([5, 6, 7, 8])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StorageError);
    expect((err as Error).message).toBe(`disk full: cannot write ${dir.checkpointPath(2)}`);
    failure.code = null;
    expect((await dir.readLatestCheckpoint())?.entry.round).toBe(1);
    // The next commit works once there is room again.
    expect((await dir.commitCheckpoint(2, new Uint8Array([5, 6, 7, 8]))).round).toBe(2);
  });

  it('an unwritable directory gives one line for the identity and the settings', async () => {
    const dir = await openDataDir(root);
    failure.code = 'EACCES';
    await expect(dir.loadOrCreateIdentity()).rejects.toThrow(`permission denied: cannot write ${dir.identityFile}`);
    await expect(
      dir.writeFederation({
        version: 1,
        settings: { federationId: 'f', federationName: 'F', createdAt: 0 },
        swarmKey: '00'.repeat(32),
        bootstrap: [],
      }),
    ).rejects.toThrow(`permission denied: cannot write ${dir.federationFile}`);
  });
});
