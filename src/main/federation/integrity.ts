// Checkpoints verified at start: every committed round's file is checked against the sha256 its
// index recorded; each corrupt or missing one is logged and fetched again from the members (any
// member serves committed rounds), until all are whole or the peer stops. Without it a flipped
// byte in an old round would surface only when someone exports that round.
import { peerIdFromString } from '@libp2p/peer-id';
import { request, sha256Hex } from './wire.ts';
import { oneLine, short, sleep, type PeerContext } from './context.ts';
import type { CheckpointEntry } from '../storage/data_dir.ts';
import { PROTOCOLS } from '../../shared/messages.ts';

const RETRY_MS = 3000;

/** Log the corrupt checkpoints; returns them, oldest first. */
export async function findCorrupt(ctx: PeerContext): Promise<CheckpointEntry[]> {
  const bad = await ctx.dir.verifyCheckpoints();
  for (const e of bad) ctx.log(`round ${e.round}'s checkpoint is corrupt or missing (sha256 ${e.sha256.slice(0, 12)}… does not match); fetching it from a member`);
  return bad;
}

/** Fetch each corrupt round from whichever member has it, checked against our own index's sha256. */
export async function repairFromMembers(ctx: PeerContext, bad: CheckpointEntry[]): Promise<void> {
  const left = [...bad];
  while (left.length > 0 && !ctx.stopped) {
    const node = ctx.node;
    const members = (ctx.raft?.members ?? []).filter((m) => m !== ctx.peerId);
    for (const entry of [...left]) {
      for (const m of members) {
        if (node === null || node.getConnections(peerIdFromString(m)).length === 0) continue;
        try {
          const res = await request(node, peerIdFromString(m), PROTOCOLS.checkpoint, { type: 'checkpoint-fetch-request', round: entry.round }, { timeoutMs: 60_000 });
          if (res.msg.type !== 'checkpoint-fetch-response' || res.data === undefined || sha256Hex(res.data) !== entry.sha256) continue;
          await ctx.dir.repairCheckpoint(entry.round, res.data);
          left.splice(left.indexOf(entry), 1);
          ctx.log(`round ${entry.round}'s checkpoint fetched again from ${short(m)} and verified`);
          break;
        } catch (e) {
          ctx.log(`round ${entry.round}: cannot fetch it from ${short(m)}: ${oneLine(e)}`);
        }
      }
    }
    if (left.length > 0) await sleep(RETRY_MS);
  }
}
