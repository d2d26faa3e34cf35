// What a running peer last saw, for `fedforward status` (another process): the aggregator, its
// term, this peer's role and last committed round with its sha256, written atomically to
// status.json at most once a second while the peer runs.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { PeerContext } from './context.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';

const statusSchema = z.object({
  at: z.number(),
  role: z.string(),
  term: z.number(),
  aggregator: z.string().nullable(),
  aggregatorName: z.string().nullable(),
  committedRound: z.number(),
  committedSha256: z.string().nullable(),
});
export type RecordedStatus = z.infer<typeof statusSchema>;

const fileOf = (root: string) => path.join(root, 'status.json');

/** Keep status.json up to date while the peer runs; returns the function that stops it. */
export function recordStatus(ctx: PeerContext): () => void {
  let timer: ReturnType<typeof setTimeout> | null = null;
  const write = () => {
    timer = null;
    const s = ctx.status();
    const leader = s.leader;
    const rec: RecordedStatus = {
      at: Date.now(),
      role: s.role,
      term: s.term,
      aggregator: leader,
      aggregatorName: leader === null ? null : (ctx.fed?.members.find((m) => m.peerId === leader)?.name ?? null),
      committedRound: s.committedRound,
      committedSha256: ctx.committedSha ?? null,
    };
    void writeFileAtomic(fileOf(ctx.dir.root), JSON.stringify(rec, null, 1) + '\n').catch(() => {});
  };
  const off = ctx.on('status', () => {
    if (timer === null) timer = setTimeout(write, 1000);
  });
  write();
  return () => {
    off();
    if (timer !== null) clearTimeout(timer);
    write();
  };
}

/** What the peer of data directory `root` last recorded (null when it never ran). */
export async function readRecordedStatus(root: string): Promise<RecordedStatus | null> {
  try {
    return statusSchema.parse(JSON.parse(await readFile(fileOf(root), 'utf8')));
  } catch {
    return null;
  }
}
