// A peer's data directory:
//
//   identity.key                    libp2p private key (protobuf), mode 0600, created on first use
//   federation.json                 the federation this peer belongs to (settings, swarm key, …), 0600
//   checkpoints/round-<n>.safetensors
//   checkpoints/index.json          [{round, sha256, bytes, committedAt, term?}], written after the file
//   checkpoints/staged-round-<n>-t<term>-<sha256>.safetensors
//                                   a round a member stored on the aggregator's commit-request but
//                                   does not yet know to be committed (never in index.json)
//   metrics.jsonl                   one JSON object per line, appended
//   exports/                        exported adapters
//
// Every file replacement goes through writeFileAtomic (temporary file, fsync, rename, fsync dir), and
// a checkpoint's index entry is written only after its file, so a kill at any instant leaves the last
// committed round readable. A staged checkpoint is promoted (copied into round-<n> and the index)
// only once the member learns that a majority stored it; at most one staged file is kept. Reading a checkpoint verifies its sha256 and falls back to the previous
// committed round when a file is missing or corrupt. metrics.jsonl is appended to (not rewritten);
// a torn last line from a crash is skipped on reading and terminated on the next open.
//
// Every failure is a StorageError with a one-line message (full disk, permission denied, …).
import { appendFile, chmod, mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys';
import type { PrivateKey } from '@libp2p/interface';
import { renameAtomic, writeFileAtomic } from '../../shared/atomic_write.ts';
import { federationSettingsSchema, multiaddrSchema, natSchema, peerInfoSchema, sha256Schema } from '../../shared/messages.ts';

/** A one-line storage failure. `code` is the underlying errno code when there is one. */
export class StorageError extends Error {
  override name = 'StorageError';
  readonly code: string | undefined;
  constructor(message: string, code?: string) {
    super(message);
    this.code = code;
  }
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && typeof (err as { code?: unknown }).code === 'string'
    ? (err as { code: string }).code
    : undefined;
}

/** Turn a filesystem error into a one-line StorageError naming the file and the cause. */
export function storageError(err: unknown, action: 'write' | 'read' | 'create', file: string): StorageError {
  if (err instanceof StorageError) return err;
  const code = errnoCode(err);
  const verb = action === 'create' ? 'cannot create' : `cannot ${action}`;
  switch (code) {
    case 'ENOSPC':
      return new StorageError(`disk full: ${verb} ${file}`, code);
    case 'EDQUOT':
      return new StorageError(`disk quota exceeded: ${verb} ${file}`, code);
    case 'EACCES':
    case 'EPERM':
      return new StorageError(`permission denied: ${verb} ${file}`, code);
    case 'EROFS':
      return new StorageError(`read-only file system: ${verb} ${file}`, code);
    case 'ENOTDIR':
      return new StorageError(`${verb} ${file}: a parent path is not a directory`, code);
    case 'EISDIR':
      return new StorageError(`${verb} ${file}: it is a directory`, code);
    case 'ENOENT':
      return new StorageError(`${verb} ${file}: no such file or directory`, code);
    default: {
      const msg = err instanceof Error ? err.message : String(err);
      const line = msg.split('\n')[0]!.slice(0, 300);
      return new StorageError(`${verb} ${file}: ${line}`, code);
    }
  }
}

export interface CheckpointEntry {
  round: number;
  sha256: string;
  bytes: number;
  /** Unix ms. */
  committedAt: number;
  /** The election term the round was committed in (absent in older indexes: 0). */
  term?: number;
}

/** A staged (stored, not yet known to be committed) checkpoint. */
export interface StagedEntry {
  round: number;
  term: number;
  sha256: string;
  file: string;
}

const STAGED_RE = /^staged-round-(\d+)-t(\d+)-([0-9a-f]{64})\.safetensors$/;

const checkpointEntrySchema = z.object({
  round: natSchema,
  sha256: sha256Schema,
  bytes: natSchema,
  committedAt: natSchema,
  term: natSchema.optional(),
});
const checkpointIndexSchema = z.object({
  version: z.literal(1),
  checkpoints: z.array(checkpointEntrySchema),
});

/** federation.json: what a peer needs to rejoin its federation after a restart. */
export const federationFileSchema = z.object({
  version: z.literal(1),
  settings: federationSettingsSchema,
  /** The federation's swarm key, 32 bytes as 64 hex characters. */
  swarmKey: z.string().regex(/^[0-9a-f]{64}$/),
  /** Addresses to dial on start. */
  bootstrap: z.array(multiaddrSchema).max(64),
  /** The members last known, with their addresses. */
  members: z.array(peerInfoSchema).max(256).default([]),
  membershipVersion: natSchema.default(0),
  /** Raft's durable state: the current term and the vote cast in it. */
  raft: z.object({ term: natSchema, votedFor: z.string().max(128).nullable() }).default({ term: 0, votedFor: null }),
});
export type FederationFile = z.infer<typeof federationFileSchema>;
export type FederationFileInput = z.input<typeof federationFileSchema>;

export interface LatestCheckpoint {
  entry: CheckpointEntry;
  bytes: Uint8Array;
  /** Newer entries that were skipped because their file was missing or corrupt. */
  skipped: CheckpointEntry[];
}

export interface DataDirOptions {
  /** Clock for committedAt (default Date.now). */
  now?: () => number;
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw storageError(err, 'read', file);
  }
}

async function writeAtomic(file: string, data: Uint8Array | string, mode?: number): Promise<void> {
  try {
    await writeFileAtomic(file, data);
    // The directory is 0700, so the moment between rename and chmod exposes nothing.
    if (mode !== undefined && process.platform !== 'win32') await chmod(file, mode);
  } catch (err) {
    throw storageError(err, 'write', file);
  }
}

export class DataDir {
  readonly root: string;
  readonly checkpointsDir: string;
  readonly exportsDir: string;
  readonly identityFile: string;
  readonly federationFile: string;
  readonly metricsFile: string;
  readonly indexFile: string;
  private readonly now: () => number;
  /** Serialises checkpoint commits, so two commits never interleave their index writes. */
  private commitChain: Promise<unknown> = Promise.resolve();

  private constructor(root: string, options: DataDirOptions) {
    this.root = path.resolve(root);
    this.checkpointsDir = path.join(this.root, 'checkpoints');
    this.exportsDir = path.join(this.root, 'exports');
    this.identityFile = path.join(this.root, 'identity.key');
    this.federationFile = path.join(this.root, 'federation.json');
    this.metricsFile = path.join(this.root, 'metrics.jsonl');
    this.indexFile = path.join(this.checkpointsDir, 'index.json');
    this.now = options.now ?? Date.now;
  }

  /** Open (creating when needed) a data directory. */
  static async open(root: string, options: DataDirOptions = {}): Promise<DataDir> {
    const dir = new DataDir(root, options);
    for (const d of [dir.root, dir.checkpointsDir, dir.exportsDir]) {
      try {
        await mkdir(d, { recursive: true, mode: 0o700 });
      } catch (err) {
        throw storageError(err, 'create', d);
      }
    }
    await dir.repairMetricsTail();
    return dir;
  }

  // ---- identity -------------------------------------------------------------------------------

  /** The peer's libp2p key: read from identity.key, or created (Ed25519) on first use. */
  async loadOrCreateIdentity(): Promise<PrivateKey> {
    const file = this.identityFile;
    if (await exists(file)) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file);
      } catch (err) {
        throw storageError(err, 'read', file);
      }
      let key: PrivateKey;
      try {
        key = privateKeyFromProtobuf(bytes);
      } catch {
        throw new StorageError(`${file} is corrupt; move it away to create a new identity (the peer id will change)`);
      }
      if (process.platform !== 'win32') {
        // A crash between rename and chmod could leave a wider mode: tighten it now.
        try {
          const st = await stat(file);
          if ((st.mode & 0o777) !== 0o600) await chmod(file, 0o600);
        } catch (err) {
          throw storageError(err, 'write', file);
        }
      }
      return key;
    }
    const key = await generateKeyPair('Ed25519');
    await writeAtomic(file, privateKeyToProtobuf(key), 0o600);
    return key;
  }

  // ---- federation settings --------------------------------------------------------------------

  /** federation.json, or null when this peer belongs to no federation yet. */
  async readFederation(): Promise<FederationFile | null> {
    const file = this.federationFile;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw storageError(err, 'read', file);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StorageError(`${file} is not valid JSON`);
    }
    const parsed = federationFileSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StorageError(`${file} is invalid: ${issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'schema mismatch'}`);
    }
    return parsed.data;
  }

  async writeFederation(value: FederationFileInput): Promise<FederationFile> {
    const parsed = federationFileSchema.safeParse(value);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new StorageError(`refusing to write invalid federation settings: ${issue ? `${issue.path.join('.')}: ${issue.message}` : ''}`);
    }
    // It holds the swarm key: owner-only.
    await writeAtomic(this.federationFile, JSON.stringify(parsed.data, null, 2) + '\n', 0o600);
    return parsed.data;
  }

  // ---- checkpoints ----------------------------------------------------------------------------

  checkpointPath(round: number): string {
    if (!Number.isSafeInteger(round) || round < 0) throw new StorageError(`bad round number ${round}`);
    return path.join(this.checkpointsDir, `round-${round}.safetensors`);
  }

  /** The committed checkpoints, oldest first. */
  async listCheckpoints(): Promise<CheckpointEntry[]> {
    const file = this.indexFile;
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError(err, 'read', file);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new StorageError(`${file} is not valid JSON`);
    }
    const parsed = checkpointIndexSchema.safeParse(json);
    if (!parsed.success) throw new StorageError(`${file} is invalid`);
    return [...parsed.data.checkpoints].sort((a, b) => a.round - b.round);
  }

  /**
   * Commit round `round`'s checkpoint: the file first, the index after, both atomically. Rounds
   * only move forward; committing the newest round again with the same bytes rewrites its file
   * (repairing a corrupt copy) and is otherwise a no-op.
   */
  async commitCheckpoint(round: number, bytes: Uint8Array, term?: number): Promise<CheckpointEntry> {
    return this.chained(() => this.commitNow(round, sha256Hex(bytes), bytes.byteLength, (file) => writeAtomic(file, bytes), term));
  }

  /**
   * Commit a staged checkpoint (in `term`, by default the one it was staged in) by renaming its
   * file into place: no second copy of the adapter is written, so a nearly full disk can still
   * commit. Throws when the staged file is missing or does not match its sha256.
   */
  async promoteStaged(staged: StagedEntry, term = staged.term): Promise<CheckpointEntry> {
    return this.chained(async () => {
      const bytes = await this.readStaged(staged);
      if (bytes === null) throw new StorageError(`staged checkpoint ${staged.file} is missing or corrupt`);
      return this.commitNow(staged.round, staged.sha256, bytes.byteLength, async (file) => {
        try {
          await renameAtomic(staged.file, file);
        } catch (err) {
          throw storageError(err, 'write', file);
        }
      }, term);
    });
  }

  private chained<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.commitChain.then(fn);
    this.commitChain = run.catch(() => {});
    return run;
  }

  stagedPath(round: number, term: number, sha256: string): string {
    if (!Number.isSafeInteger(round) || round < 0 || !Number.isSafeInteger(term) || term < 0 || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw new StorageError(`bad staged checkpoint name (round ${round}, term ${term})`);
    }
    return path.join(this.checkpointsDir, `staged-round-${round}-t${term}-${sha256}.safetensors`);
  }

  /**
   * Stage round `round`'s checkpoint (received in `term`): written atomically beside the committed
   * ones, not in the index; every other staged file is removed. Not committed state.
   */
  async stageCheckpoint(round: number, term: number, bytes: Uint8Array): Promise<StagedEntry> {
    return this.chained(async () => {
      const sha256 = sha256Hex(bytes);
      const file = this.stagedPath(round, term, sha256);
      await writeAtomic(file, bytes);
      for (const e of await this.listStagedNow()) if (e.file !== file) await this.removeFile(e.file);
      return { round, term, sha256, file };
    });
  }

  /** The staged checkpoints, oldest round first. */
  async listStaged(): Promise<StagedEntry[]> {
    return this.listStagedNow();
  }

  private async listStagedNow(): Promise<StagedEntry[]> {
    let names: string[];
    try {
      names = await readdir(this.checkpointsDir);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError(err, 'read', this.checkpointsDir);
    }
    const out: StagedEntry[] = [];
    for (const name of names) {
      const m = STAGED_RE.exec(name);
      if (m === null) continue;
      out.push({ round: Number(m[1]), term: Number(m[2]), sha256: m[3]!, file: path.join(this.checkpointsDir, name) });
    }
    return out.sort((a, b) => a.round - b.round || a.term - b.term);
  }

  /** A staged checkpoint's bytes, verified against the sha256 in its name; null if missing or corrupt. */
  async readStaged(entry: StagedEntry): Promise<Uint8Array | null> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(entry.file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw storageError(err, 'read', entry.file);
    }
    if (sha256Hex(bytes) !== entry.sha256) return null;
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Remove the staged checkpoints of rounds up to `round` (all of them when omitted). */
  async dropStaged(round = Number.MAX_SAFE_INTEGER): Promise<void> {
    return this.chained(async () => {
      for (const e of await this.listStagedNow()) if (e.round <= round) await this.removeFile(e.file);
    });
  }

  private async removeFile(file: string): Promise<void> {
    try {
      await rm(file, { force: true });
    } catch (err) {
      throw storageError(err, 'write', file);
    }
  }

  /** The file first (`place` puts it at the path it is given), the index after. */
  private async commitNow(round: number, sha256: string, size: number, place: (file: string) => Promise<void>, term?: number): Promise<CheckpointEntry> {
    const file = this.checkpointPath(round);
    const entries = await this.listCheckpoints();
    const last = entries.at(-1);
    if (last !== undefined && round < last.round) {
      throw new StorageError(`round ${round} is older than the last committed round ${last.round}`);
    }
    if (last !== undefined && round === last.round) {
      if (last.sha256 !== sha256) throw new StorageError(`round ${round} is already committed with different contents`);
      await place(file);
      return last;
    }
    await place(file);
    const entry: CheckpointEntry = { round, sha256, bytes: size, committedAt: this.now(), ...(term !== undefined ? { term } : {}) };
    await writeAtomic(this.indexFile, JSON.stringify({ version: 1, checkpoints: [...entries, entry] }, null, 1) + '\n');
    return entry;
  }

  /** One committed round's bytes, verified; throws StorageError if missing or corrupt. */
  async readCheckpoint(round: number): Promise<{ entry: CheckpointEntry; bytes: Uint8Array }> {
    const entry = (await this.listCheckpoints()).find((e) => e.round === round);
    if (entry === undefined) throw new StorageError(`round ${round} has no committed checkpoint`);
    const bytes = await this.readVerified(entry);
    if (bytes === null) throw new StorageError(`checkpoint of round ${round} is missing or corrupt (sha256 mismatch)`);
    return { entry, bytes };
  }

  /** The newest committed checkpoint whose file verifies, or null when there is none. */
  async readLatestCheckpoint(): Promise<LatestCheckpoint | null> {
    const entries = await this.listCheckpoints();
    const skipped: CheckpointEntry[] = [];
    for (let i = entries.length - 1; i >= 0; i--) {
      const entry = entries[i]!;
      const bytes = await this.readVerified(entry);
      if (bytes !== null) return { entry, bytes, skipped };
      skipped.push(entry);
    }
    return null;
  }

  /** The committed checkpoints whose file is missing or does not match its sha256, oldest first. */
  async verifyCheckpoints(): Promise<CheckpointEntry[]> {
    const bad: CheckpointEntry[] = [];
    for (const entry of await this.listCheckpoints()) if ((await this.readVerified(entry)) === null) bad.push(entry);
    return bad;
  }

  /** Write again the file of a committed round, from bytes that match its recorded sha256. */
  async repairCheckpoint(round: number, bytes: Uint8Array): Promise<void> {
    return this.chained(async () => {
      const entry = (await this.listCheckpoints()).find((e) => e.round === round);
      if (entry === undefined) throw new StorageError(`round ${round} has no committed checkpoint`);
      if (bytes.byteLength !== entry.bytes || sha256Hex(bytes) !== entry.sha256) throw new StorageError(`these bytes are not round ${round}'s committed checkpoint`);
      await writeAtomic(this.checkpointPath(round), bytes);
    });
  }

  private async readVerified(entry: CheckpointEntry): Promise<Uint8Array | null> {
    const file = this.checkpointPath(entry.round);
    let bytes: Uint8Array;
    try {
      bytes = await readFile(file);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return null;
      throw storageError(err, 'read', file);
    }
    if (bytes.byteLength !== entry.bytes || sha256Hex(bytes) !== entry.sha256) return null;
    // A plain Uint8Array, not a Buffer, for callers that compare or transfer it.
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  // ---- metrics --------------------------------------------------------------------------------

  /** Append one record to metrics.jsonl (fsynced). */
  async appendMetric(record: Record<string, unknown>): Promise<void> {
    const line = JSON.stringify(record);
    if (line.includes('\n')) throw new StorageError('a metric record must serialise to one line');
    const file = this.metricsFile;
    try {
      const handle = await open(file, 'a');
      try {
        await handle.appendFile(line + '\n');
        await handle.sync();
      } finally {
        await handle.close();
      }
    } catch (err) {
      throw storageError(err, 'write', file);
    }
  }

  /** Every complete record in metrics.jsonl, oldest first; torn or invalid lines are skipped. */
  async readMetrics(): Promise<Record<string, unknown>[]> {
    let text: string;
    try {
      text = await readFile(this.metricsFile, 'utf8');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return [];
      throw storageError(err, 'read', this.metricsFile);
    }
    const out: Record<string, unknown>[] = [];
    for (const line of text.split('\n')) {
      if (line.length === 0) continue;
      try {
        const v: unknown = JSON.parse(line);
        if (typeof v === 'object' && v !== null && !Array.isArray(v)) out.push(v as Record<string, unknown>);
      } catch {
        // a torn line from a crash
      }
    }
    return out;
  }

  /** After a crash mid-append, end the torn line so the next record starts on a line of its own. */
  private async repairMetricsTail(): Promise<void> {
    const file = this.metricsFile;
    try {
      const handle = await open(file, 'r');
      try {
        const { size } = await handle.stat();
        if (size === 0) return;
        const last = Buffer.alloc(1);
        await handle.read(last, 0, 1, size - 1);
        if (last[0] === 0x0a) return;
      } finally {
        await handle.close();
      }
      await appendFile(file, '\n');
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw storageError(err, 'write', file);
    }
  }

  // ---- exports --------------------------------------------------------------------------------

  /** A path inside exports/ for `name` (a plain file or folder name, no separators). */
  exportPath(name: string): string {
    if (name.length === 0 || name.length > 200 || /[/\\\0]/.test(name) || name === '.' || name === '..') {
      throw new StorageError(`bad export name ${JSON.stringify(name.slice(0, 60))}`);
    }
    return path.join(this.exportsDir, name);
  }
}

/** Open (creating when needed) a peer's data directory. */
export function openDataDir(root: string, options: DataDirOptions = {}): Promise<DataDir> {
  return DataDir.open(root, options);
}
