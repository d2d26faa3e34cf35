// Crash-safe file replacement, used by the peer (checkpoints, state) and the worker (weights).
// A reader sees either the old file or the complete new one, never a torn write: the bytes go to a
// temporary file in the same directory (rename is only atomic within one filesystem), are fsynced,
// renamed over the target, and then the directory is fsynced so the rename itself survives a crash.
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';

export async function writeFileAtomic(file: string, data: Uint8Array | string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  // Random suffix: two writers of the same target must not share a temp file.
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await syncDir(dir);
}

/** Move a file that is already complete and fsynced over `to` (same directory), durably. */
export async function renameAtomic(from: string, to: string): Promise<void> {
  await rename(from, to);
  await syncDir(path.dirname(path.resolve(to)));
}

async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
  } catch (err) {
    // Windows cannot open a directory as a file; NTFS journals the rename itself.
    if (process.platform === 'win32') return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
