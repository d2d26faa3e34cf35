// Who may be a member: creating a federation, inviting (any member can), revoking an invite, joining
// (terms first, then the join-request), admitting a newcomer (by the aggregator, which Raft's
// heartbeats then carry to everyone), and what the peer knows of each member (name, addresses).
//
// Joining: the newcomer dials the inviter (any member) → join-terms (the signed settings) → the
// newcomer checks its copy of the base model against the fingerprint → join-request with it → the
// inviter checks the invite and the fingerprint, and has the aggregator (itself, or over the admit
// protocol) add the newcomer to the membership → join-accepted; only then is the invite used up.
//
// A leaked code must not make a stranger a member. An invite bound to peer ids (`invite --for`)
// admits only those; an unbound one holds the newcomer pending (join-pending; it asks again) until
// a member approves its peer id at the inviter. Every member's connection gater admits only the
// current members' peer ids, plus, at an inviter holding a live invite that could admit it, a
// newcomer (rate-limited, and hung up after JOIN_WINDOW_MS unless it became a member). So the
// network key an invite carries opens nothing once the invite is used, revoked or expired, and an
// evicted member (`remove`) is hung up and cannot connect again. The CLI, a separate process,
// reaches the running peer through request files in control/ (approve, remove).
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z as zod } from 'zod';
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import type { z } from 'zod';
import { createPeerNode, generateSwarmKey, type PeerNode, type PeerNodeOptions } from './node.ts';
import { request } from './wire.ts';
import { checkModelFiles } from './model_check.ts';
import { oneLine, short, sleep, type CreateSettings, type PeerContext } from './context.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { PROTOCOLS, peerIdSchema, type AdmitAccepted, type ErrorReply, type FederationSettings, type JoinRequest, type PeerInfo } from '../../shared/messages.ts';
import { createInvite, decodeInvite, InviteError, InviteTable, verifyInviteSignature } from '../../shared/invite.ts';
import { HyperParams } from '../../shared/methods.ts';
import { DataSpec, ModelSpec } from '../../shared/worker_protocol.ts';
import { modelFingerprint } from '../../worker/io/hf_dir.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';

/** Canonical JSON (sorted keys) of the settings minus the signature: what the creator signs. */
function signedSettingsBytes(s: FederationSettings): Uint8Array {
  const canon = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canon);
    if (v !== null && typeof v === 'object') {
      return Object.fromEntries(Object.keys(v).filter((k) => k !== 'signature').sort().map((k) => [k, canon((v as Record<string, unknown>)[k])]));
    }
    return v;
  };
  return new TextEncoder().encode('fedforward-settings-v1\n' + JSON.stringify(canon(s)));
}

/** The settings with the creator's signature (over every other field) filled in. */
export async function signSettings(s: FederationSettings, key: PrivateKey): Promise<FederationSettings> {
  const creator = peerIdFromPrivateKey(key).toString();
  const unsigned = { ...s, creator };
  delete unsigned.signature;
  return { ...unsigned, signature: Buffer.from(await key.sign(signedSettingsBytes(unsigned))).toString('hex') };
}

/** This machine's copy of the federation's base model must be the very files the creator used;
 *  returns its fingerprint (none when the settings name none). `known`: the fingerprint this join
 *  already computed, so that a large model is hashed once. */
export async function checkModel(s: FederationSettings, known?: string): Promise<string | undefined> {
  if (s.modelFingerprint === undefined || s.modelSpec === undefined) return undefined;
  const dir = resolveModelDir(s.modelSpec.model);
  await checkModelFiles(dir);
  const mine = known ?? (await modelFingerprint(dir));
  if (mine !== s.modelFingerprint)
    throw new Error(`join refused: the model at ${dir} is not the federation's (fingerprint ${mine.slice(0, 12)}…, expected ${s.modelFingerprint.slice(0, 12)}…)`);
  return mine;
}

/** What a joiner checks of the settings an inviter sent: the federation, the creator's signature, the model. */
async function acceptTerms(s: FederationSettings, federationId: string, known?: string): Promise<string | undefined> {
  if (s.federationId !== federationId) throw new Error('join refused: the inviter answered for another federation');
  await verifySettings(s);
  return checkModel(s, known);
}

export async function verifySettings(s: FederationSettings): Promise<void> {
  if (s.creator === undefined || s.signature === undefined) throw new Error('federation settings are not signed');
  const key = peerIdFromString(s.creator).publicKey;
  if (key === undefined) throw new Error('federation creator id carries no public key');
  const ok = await key.verify(signedSettingsBytes(s), Uint8Array.from(Buffer.from(s.signature, 'hex')));
  if (!ok) throw new Error('federation settings signature is invalid');
}

/** A newcomer could not be made a member (no aggregator, or it could not be reached): worth retrying. */
class AdmitError extends Error {
  override name = 'AdmitError';
}

export interface MemberList {
  members: PeerInfo[];
  membershipVersion: number;
}

/** A newcomer that holds an unbound invite, waiting for a member's approval at the inviter. */
export interface PendingJoin {
  peerId: string;
  name: string;
  inviteId: string;
  at: number;
  approved: boolean;
}
const pendingSchema = zod.array(
  zod.object({ peerId: peerIdSchema, name: zod.string().max(200), inviteId: zod.string().max(200), at: zod.number(), approved: zod.boolean() }),
);
const controlSchema = zod.object({ type: zod.enum(['approve', 'remove']), peerId: peerIdSchema });
export type ControlRequest = zod.infer<typeof controlSchema>;

/** How long a newcomer's connection may stay up without it becoming a member. */
const JOIN_WINDOW_MS = 60_000;
/** Non-member connections admitted per minute, in all and per peer id. */
const NEWCOMERS_PER_MINUTE = 20;
const NEWCOMERS_PER_PEER_PER_MINUTE = 5;

const pendingFileOf = (root: string) => path.join(root, 'pending.json');
const controlDirOf = (root: string) => path.join(root, 'control');

/** The newcomers waiting for approval at the peer of data directory `root`. */
export async function readPending(root: string): Promise<PendingJoin[]> {
  try {
    return pendingSchema.parse(JSON.parse(await readFile(pendingFileOf(root), 'utf8')));
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return [];
    throw new Error(`${pendingFileOf(root)} is invalid: ${oneLine(e)}`);
  }
}

/**
 * Ask the peer running on data directory `root` (another process) to approve or remove a member;
 * resolves with its one-line answer, or null when no peer picked the request up within `waitMs`
 * (it stays queued until the peer runs).
 */
export async function requestOfRunningPeer(root: string, req: ControlRequest, waitMs = 15_000): Promise<string | null> {
  const dir = controlDirOf(root);
  await mkdir(dir, { recursive: true });
  const id = `${Date.now()}-${randomBytes(4).toString('hex')}`;
  await writeFileAtomic(path.join(dir, `${id}.json`), JSON.stringify(controlSchema.parse(req)) + '\n');
  const result = path.join(dir, `${id}.result`);
  for (const end = Date.now() + waitMs; Date.now() < end; await sleep(200)) {
    const text = await readFile(result, 'utf8').catch(() => null);
    if (text !== null) {
      await rm(result, { force: true });
      return text.trim();
    }
  }
  return null;
}

export interface InviteOptions {
  expiresMs?: number;
  uses?: number;
  /** Bind the invite to these peer ids: they join without an approval, nobody else can. */
  for?: string[];
}

export class Membership {
  private readonly ctx: PeerContext;
  private inviteChain: Promise<unknown> = Promise.resolve();
  private pendingChain: Promise<unknown> = Promise.resolve();
  /** When non-member connections were admitted lately, by peer id (the rate limit). */
  private newcomers = new Map<string, number[]>();
  private controlTimer: ReturnType<typeof setInterval> | null = null;

  constructor(ctx: PeerContext) {
    this.ctx = ctx;
  }

  private get invitesFile(): string {
    return path.join(this.ctx.dir.root, 'invites.json');
  }

  private async readInvites(): Promise<InviteTable> {
    try {
      const records = JSON.parse(await readFile(this.invitesFile, 'utf8')) as unknown;
      if (!Array.isArray(records)) throw new Error('not a list');
      return new InviteTable(records);
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') return new InviteTable();
      throw new Error(`${this.invitesFile} is invalid: ${oneLine(e)}`);
    }
  }

  /** Change invites.json, one change at a time. */
  private updateInvites<T>(change: (table: InviteTable) => Promise<T> | T): Promise<T> {
    const run = this.inviteChain.then(async () => {
      const table = await this.readInvites();
      const out = await change(table);
      await writeFileAtomic(this.invitesFile, JSON.stringify(table.toJSON(), null, 1) + '\n');
      return out;
    });
    this.inviteChain = run.catch(() => {});
    return run;
  }

  // ---- create, invite, revoke, join -----------------------------------------------------------

  /** Create a new federation with this peer as its only member (does not start the peer). */
  async create(c: CreateSettings): Promise<FederationSettings> {
    const ctx = this.ctx;
    if (ctx.fed !== null) throw new Error(`this data directory already belongs to federation "${ctx.fed.settings.federationName}"`);
    if ((c.method ?? 'spry') !== 'spry') throw new Error('only the spry method runs in a federation');
    const hp = HyperParams.parse(c.hp ?? {});
    if (!Number.isInteger(c.rounds) || c.rounds < 1) throw new Error('rounds must be a positive integer');
    if (!Number.isInteger(c.minMembers) || c.minMembers < 1) throw new Error('min members must be a positive integer');
    for (const r of c.relays ?? []) {
      if (multiaddr(r).getComponents().findLast((x) => x.name === 'p2p') === undefined) throw new Error(`relay ${r} names no peer (it must end in /p2p/<peer id>)`);
    }
    const model = ModelSpec.parse(c.model);
    await checkModelFiles(resolveModelDir(model.model));
    const data = DataSpec.parse(c.data);
    const unsigned: FederationSettings = {
      federationId: randomBytes(16).toString('hex'),
      federationName: c.name,
      createdAt: Date.now(),
      model: model.model,
      method: 'spry',
      hyperparameters: Object.fromEntries(Object.entries(hp).filter(([, v]) => v !== undefined)) as Record<string, number | string | boolean>,
      roundDeadlineMs: c.roundDeadlineMs ?? 60_000,
      modelSpec: model,
      modelFingerprint: await modelFingerprint(resolveModelDir(model.model)),
      rounds: c.rounds,
      minMembers: c.minMembers,
      seed: c.seed ?? 0,
      ...(c.relays?.length ? { relays: c.relays } : {}),
      creator: ctx.peerId,
    };
    const settings = await signSettings(unsigned, ctx.privateKey);
    const listen = ctx.options.listen ?? ['/ip4/127.0.0.1/tcp/0'];
    await ctx.writeLocal({ version: 1, name: c.peerName, data, listen, announce: ctx.options.announce });
    const self: PeerInfo = { peerId: ctx.peerId, name: c.peerName, multiaddrs: [], capacity: ctx.options.capacity ?? 1 };
    ctx.fed = await ctx.dir.writeFederation({
      version: 1,
      settings,
      swarmKey: Buffer.from(generateSwarmKey()).toString('hex'),
      bootstrap: [],
      members: [self],
      membershipVersion: 1,
    });
    return settings;
  }

  /** Issue an invite code; its uses are tracked in invites.json. */
  async invite(opts: InviteOptions = {}): Promise<string> {
    const ctx = this.ctx;
    const fed = ctx.fed;
    if (fed === null) throw new Error('this peer belongs to no federation; create or join one first');
    for (const id of opts.for ?? []) {
      try {
        peerIdFromString(id);
      } catch {
        throw new Error(`"${id.slice(0, 80)}" is not a peer id (the invitee prints its own with: fedforward id)`);
      }
    }
    const expiresAt = Date.now() + (opts.expiresMs ?? 24 * 3600 * 1000);
    const { code, invite } = await createInvite({
      privateKey: ctx.privateKey,
      federationId: fed.settings.federationId,
      federationName: fed.settings.federationName,
      swarmKey: Uint8Array.from(Buffer.from(fed.swarmKey, 'hex')),
      bootstrap: ctx.addresses(),
      expiresAt,
    });
    await this.updateInvites((table) => table.add(invite.inviteId, opts.uses ?? opts.for?.length ?? 1, expiresAt, opts.for));
    return code;
  }

  /** Revoke an invite issued here (by its code); the inviter refuses it from now on. */
  async revoke(code: string): Promise<void> {
    const fed = this.ctx.fed;
    if (fed === null) throw new Error('this peer belongs to no federation; create or join one first');
    const invite = decodeInvite(code, 0, { federationId: fed.settings.federationId });
    await this.updateInvites((table) => {
      if (!table.revoke(invite.inviteId)) throw new Error('this invite was not issued by this peer');
    });
  }

  /** Join the federation of `code` with this peer's data; `start` runs the peer on the node it joined with. */
  async join(code: string, peerName: string, data: z.input<typeof DataSpec>, start: (node: PeerNode) => Promise<void>): Promise<void> {
    const ctx = this.ctx;
    if (ctx.fed !== null) throw new Error(`this data directory already belongs to federation "${ctx.fed.settings.federationName}"`);
    const invite = decodeInvite(code);
    await verifyInviteSignature(invite);
    const dataSpec = DataSpec.parse(data);
    const listen = ctx.options.listen ?? ['/ip4/127.0.0.1/tcp/0'];
    const node = await createPeerNode({ privateKey: ctx.privateKey, swarmKey: invite.swarmKey, listen, announce: ctx.options.announce, ...this.gater() });
    try {
      const self: PeerInfo = {
        peerId: ctx.peerId,
        name: peerName,
        multiaddrs: node.getMultiaddrs().map((m) => m.toString()).slice(0, 16),
        capacity: ctx.options.capacity ?? 1,
      };
      let told = false;
      const ask = async (fingerprint?: string) => {
        for (let attempt = 0; ; attempt++) {
          const { msg } = await request(node, invite.bootstrap.map((a) => multiaddr(a)), PROTOCOLS.join, { type: 'join-request', invite: code, peer: self, modelFingerprint: fingerprint }, { timeoutMs: 20_000 }).catch((e: unknown) => {
            throw new Error(`join refused: the inviter cannot be reached or refused the connection (is the invite used, revoked, expired or for another peer id?): ${oneLine(e).slice(0, 200)}`);
          });
          // Held until a member approves us: ask again until the invite expires.
          if (msg.type === 'join-pending' && Date.now() < invite.expiresAt) {
            if (!told) ctx.log(msg.reason);
            told = true;
            attempt = 0;
            await sleep(2000);
            continue;
          }
          if (msg.type === 'join-pending') throw new Error('join refused: the invite expired before a member approved this peer');
          // The inviter may be between elections: it says so, and we ask again.
          if (msg.type !== 'join-refused' || !msg.reason.includes('try again') || attempt >= 20) return msg;
          await sleep(500);
        }
      };
      // First the terms: a joiner whose base model differs stops here, before it is a member and
      // without using up the invite.
      let reply = await ask();
      let mine: string | undefined;
      if (reply.type === 'join-terms') reply = await ask((mine = await acceptTerms(reply.settings, invite.federationId)));
      if (reply.type !== 'join-accepted') throw new Error(`join refused: ${reply.type === 'join-terms' ? 'the inviter did not take this model fingerprint' : reply.reason}`);
      await acceptTerms(reply.settings, invite.federationId, mine);
      await ctx.writeLocal({ version: 1, name: peerName, data: dataSpec, listen, announce: ctx.options.announce });
      ctx.fed = await ctx.dir.writeFederation({
        version: 1,
        settings: reply.settings,
        swarmKey: Buffer.from(invite.swarmKey).toString('hex'),
        bootstrap: invite.bootstrap,
        members: reply.members,
        membershipVersion: reply.membershipVersion,
      });
      await start(node);
    } catch (e) {
      if (ctx.node === null) await Promise.resolve(node.stop()).catch(() => {});
      throw e;
    }
  }

  /**
   * Which peers the node refuses (libp2p's connection gater, asked after the Noise handshake, so the
   * peer id is proven): anyone but the current members, except a newcomer that a live invite here
   * could admit. Before this peer belongs to a federation (joining) it refuses nobody.
   */
  gater(): Pick<PeerNodeOptions, 'connectionGater'> {
    const { blockedPeers: blocked, noDirect } = this.ctx.options;
    const isBlocked = (id: PeerId) => blocked?.has(id.toString()) ?? false;
    const outsider = (id: PeerId) => this.ctx.fed !== null && !this.isMemberNow(id.toString());
    const direct = (id: PeerId, addr: Multiaddr) => (noDirect?.has(id.toString()) ?? false) && !addr.toString().includes('/p2p-circuit');
    return {
      connectionGater: {
        denyDialPeer: (id) => isBlocked(id) || outsider(id),
        denyDialMultiaddr: (addr) => {
          const id = addr.getComponents().findLast((x) => x.name === 'p2p')?.value;
          return id !== undefined && direct(peerIdFromString(id), addr);
        },
        denyOutboundEncryptedConnection: (id, conn) => isBlocked(id) || outsider(id) || direct(id, conn.remoteAddr),
        denyInboundEncryptedConnection: async (id, conn) => isBlocked(id) || direct(id, conn.remoteAddr) || (outsider(id) && !(await this.mayJoin(id.toString()))),
      },
    };
  }

  /** Members by the election's view once it runs, else by federation.json. */
  private isMemberNow(id: string): boolean {
    const ctx = this.ctx;
    if (ctx.raft !== null) return ctx.isMember(id);
    return ctx.fed?.members.some((m) => m.peerId === id) ?? false;
  }

  /** A non-member may connect while a live invite here could admit it, within the rate limit. */
  private async mayJoin(id: string): Promise<boolean> {
    const table = await this.readInvites().catch(() => null);
    if (table === null || !table.mayAdmit(id)) return false;
    const now = Date.now();
    for (const [k, ts] of this.newcomers) {
      const recent = ts.filter((t) => now - t < 60_000);
      if (recent.length === 0) this.newcomers.delete(k);
      else this.newcomers.set(k, recent);
    }
    const all = [...this.newcomers.values()].reduce((n, ts) => n + ts.length, 0);
    const mine = this.newcomers.get(id) ?? [];
    if (all >= NEWCOMERS_PER_MINUTE || mine.length >= NEWCOMERS_PER_PEER_PER_MINUTE) {
      this.ctx.log(`refused a connection from ${short(id)}: too many newcomers this minute`);
      return false;
    }
    this.newcomers.set(id, [...mine, now]);
    return true;
  }

  /** Wire the running node: newcomers get JOIN_WINDOW_MS to become members; requests from the CLI. */
  attach(node: PeerNode): void {
    node.addEventListener('connection:open', (evt) => {
      const id = evt.detail.remotePeer;
      if (this.isMemberNow(id.toString()) || this.ctx.fed === null) return;
      setTimeout(() => {
        if (this.ctx.node === node && !this.isMemberNow(id.toString())) void node.hangUp(id).catch(() => {});
      }, JOIN_WINDOW_MS).unref();
    });
    this.controlTimer = setInterval(() => void this.serveControl().catch((e: unknown) => this.ctx.log(`control request: ${oneLine(e)}`)), 1000);
    this.controlTimer.unref();
  }

  detach(): void {
    if (this.controlTimer !== null) clearInterval(this.controlTimer);
    this.controlTimer = null;
  }

  /** The membership changed: hang up on whoever is no longer a member; newcomers can be reached
   *  through the relays too. */
  onMembersChange(before: readonly string[], after: readonly string[]): void {
    const node = this.ctx.node;
    if (node === null) return;
    for (const id of after) if (!before.includes(id) && id !== this.ctx.peerId) void this.remember(node, id, []);
    for (const id of before) {
      if (after.includes(id) || id === this.ctx.peerId) continue;
      this.ctx.log(`${short(id)} is no longer a member: closing its connections`);
      void node.hangUp(peerIdFromString(id)).catch(() => {});
    }
  }

  /** Where member `id` can be dialed: its own addresses, and through every relay (behind a NAT). */
  async remember(node: PeerNode, id: string, addresses: string[]): Promise<void> {
    const addrs = addresses.flatMap((a) => {
      try {
        return [multiaddr(a)];
      } catch {
        return [];
      }
    });
    for (const r of this.ctx.fed?.settings.relays ?? []) if (!r.endsWith(`/p2p/${id}`)) addrs.push(multiaddr(`${r}/p2p-circuit/p2p/${id}`));
    if (addrs.length > 0) await node.peerStore.merge(peerIdFromString(id), { multiaddrs: addrs }).catch(() => {});
  }

  // ---- approvals and eviction -----------------------------------------------------------------

  /** The newcomers waiting here for a member's approval. */
  pending(): Promise<PendingJoin[]> {
    return readPending(this.ctx.dir.root);
  }

  private updatePending<T>(change: (list: PendingJoin[]) => T): Promise<T> {
    const run = this.pendingChain.then(async () => {
      const list = await this.pending();
      const out = change(list);
      await writeFileAtomic(pendingFileOf(this.ctx.dir.root), JSON.stringify(list, null, 1) + '\n');
      return out;
    });
    this.pendingChain = run.catch(() => {});
    return run;
  }

  /** Let a pending newcomer in: its next join-request is admitted (the invite must still be live). */
  async approve(peerId: string): Promise<string> {
    const found = await this.updatePending((list) => {
      const p = list.find((x) => x.peerId === peerId);
      if (p !== undefined) p.approved = true;
      return p;
    });
    if (found === undefined) throw new Error(`no newcomer ${short(peerId)} is waiting for approval here (see: fedforward pending)`);
    this.ctx.log(`approved ${found.name} (${short(peerId)})`);
    this.ctx.changed();
    return `approved ${found.name} (${peerId}); it joins at its next try`;
  }

  /** Evict a member: the aggregator takes it out of the membership; every member hangs up on it. */
  async remove(peerId: string): Promise<string> {
    const ctx = this.ctx;
    const raft = ctx.raft;
    if (raft === null || ctx.node === null) throw new Error('this peer is not running; start it, then remove');
    if (!ctx.isMember(peerId)) throw new Error(`${short(peerId)} is not a member`);
    if (raft.isLeader) {
      if (raft.members.length === 1) throw new Error('the last member cannot be removed');
      if (!raft.setMembers(raft.members.filter((m) => m !== peerId))) throw new Error('the aggregator lost its role; try again');
    } else {
      const leader = raft.leaderId;
      if (leader === null) throw new Error('the federation is electing its aggregator; try again in a few seconds');
      const { msg } = await request(ctx.node, peerIdFromString(leader), PROTOCOLS.remove, { type: 'remove-request', peerId }, { timeoutMs: 10_000 });
      if (msg.type === 'error') throw new Error(`the aggregator did not remove it: ${msg.reason}`);
    }
    const name = this.infoOf(peerId).name;
    ctx.log(`removed ${name} (${short(peerId)}) from the federation`);
    return `removed ${name} (${peerId})`;
  }

  /** Aggregator: a member asks to evict a member. */
  onRemove(peerId: string, from: string): { type: 'ack' } | ErrorReply {
    const raft = this.ctx.raft;
    if (raft === null || !this.ctx.isMember(from)) return { type: 'error', reason: 'only a member can remove a member' };
    if (!raft.isLeader) return { type: 'error', reason: 'not the aggregator; try again' };
    if (!raft.members.includes(peerId)) return { type: 'ack' };
    if (raft.members.length === 1 || !raft.setMembers(raft.members.filter((m) => m !== peerId))) return { type: 'error', reason: 'cannot remove it now; try again' };
    this.ctx.log(`${short(peerId)} removed, at the request of ${short(from)}`);
    return { type: 'ack' };
  }

  /** Carry out the CLI's requests (control/*.json) and answer each in a .result file. */
  private async serveControl(): Promise<void> {
    const dir = controlDirOf(this.ctx.dir.root);
    const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.json')).sort();
    for (const n of names) {
      const file = path.join(dir, n);
      let answer: string;
      try {
        const req = controlSchema.parse(JSON.parse(await readFile(file, 'utf8')));
        answer = req.type === 'approve' ? await this.approve(req.peerId) : await this.remove(req.peerId);
      } catch (e) {
        answer = `error: ${oneLine(e)}`;
      }
      await writeFileAtomic(file.replace(/\.json$/, '.result'), answer + '\n');
      await rm(file, { force: true });
    }
  }

  // ---- handlers -------------------------------------------------------------------------------

  async onJoin({ invite: code, peer: info, modelFingerprint: theirs }: JoinRequest, from: string) {
    const ctx = this.ctx;
    const refuse = (reason: string) => {
      ctx.log(`join refused for ${short(from)}: ${reason}`);
      return { type: 'join-refused' as const, reason: reason.slice(0, 500) };
    };
    const fed = ctx.fed;
    const raft = ctx.raft;
    if (fed === null || raft === null) return refuse('this peer is not running a federation');
    if (info.peerId !== from) return refuse('the peer info names another peer');
    let membership: MemberList;
    try {
      const invite = decodeInvite(code, Date.now(), { federationId: fed.settings.federationId });
      await verifyInviteSignature(invite, [ctx.peerId]);
      if (ctx.isMember(from)) membership = this.memberList();
      else {
        const table = await this.readInvites();
        table.check(invite.inviteId, Date.now(), from);
        const want = fed.settings.modelFingerprint;
        if (want !== undefined && theirs === undefined) return { type: 'join-terms' as const, settings: fed.settings };
        if (want !== undefined && theirs !== want)
          return refuse(`the joiner's base model is not the federation's (fingerprint ${theirs!.slice(0, 12)}…, expected ${want.slice(0, 12)}…)`);
        // An invite bound to nobody is a bearer token: a member must approve this very peer id.
        if (table.get(invite.inviteId)!.for === undefined && !(await this.approved(info, invite.inviteId))) {
          return { type: 'join-pending' as const, reason: `waiting for a member to approve this peer at the inviter: fedforward approve ${from}` };
        }
        // The invite is used up only once the newcomer is a member: a failed admission leaves it as it was.
        membership = await this.updateInvites(async (t) => {
          t.consume(invite.inviteId, Date.now(), from);
          return this.admit(info);
        });
        await this.updatePending((list) => list.splice(0, list.length, ...list.filter((p) => p.peerId !== from)));
        ctx.log(`${info.name} (${short(from)}) joined`);
      }
    } catch (e) {
      if (e instanceof InviteError || e instanceof AdmitError) return refuse(e.message);
      throw e;
    }
    return {
      type: 'join-accepted' as const,
      settings: fed.settings,
      ...membership,
      leader: raft.leaderId,
      committedRound: ctx.committed?.round ?? 0,
    };
  }

  /** Whether `info` was approved; if not, it is recorded as pending (once). */
  private approved(info: PeerInfo, inviteId: string): Promise<boolean> {
    return this.updatePending((list) => {
      const p = list.find((x) => x.peerId === info.peerId);
      if (p !== undefined) return p.approved;
      // A bounded list: the oldest asks make way (the rate limit keeps them few anyway).
      if (list.length >= 100) list.splice(0, list.length - 99);
      list.push({ peerId: info.peerId, name: info.name.slice(0, 200), inviteId, at: Date.now(), approved: false });
      this.ctx.log(`${info.name} (${short(info.peerId)}) asks to join: approve with fedforward approve ${info.peerId}`);
      queueMicrotask(() => this.ctx.changed());
      return false;
    });
  }

  /** Make `info` a member: here when this peer is the aggregator, else through the aggregator. */
  private async admit(info: PeerInfo): Promise<MemberList> {
    const ctx = this.ctx;
    const raft = ctx.raft!;
    if (raft.isLeader) return this.addMember(info);
    const leader = raft.leaderId;
    if (leader === null || ctx.node === null) throw new AdmitError('the federation is electing its aggregator; try again in a few seconds');
    let reply;
    try {
      reply = (await request(ctx.node, peerIdFromString(leader), PROTOCOLS.admit, { type: 'admit-request', peer: info }, { timeoutMs: 10_000 })).msg;
    } catch (e) {
      throw new AdmitError(`the aggregator cannot be reached (${oneLine(e).slice(0, 200)}); try again`);
    }
    if (reply.type !== 'admit-accepted') throw new AdmitError(`the aggregator did not admit the newcomer (${reply.reason.slice(0, 200)}); try again`);
    for (const m of reply.members) if (!ctx.memberInfo.has(m.peerId)) ctx.memberInfo.set(m.peerId, m);
    return { members: reply.members, membershipVersion: reply.membershipVersion };
  }

  /** Aggregator: add `info` to the membership, which Raft's heartbeats carry to every member. */
  private addMember(info: PeerInfo): MemberList {
    const ctx = this.ctx;
    if (!ctx.isMember(info.peerId)) {
      ctx.memberInfo.set(info.peerId, { ...info, multiaddrs: info.multiaddrs.slice(0, 16) });
      if (!ctx.raft!.setMembers([...ctx.raft!.members, info.peerId])) throw new AdmitError('the aggregator lost its role; try again');
    }
    return this.memberList();
  }

  /** Aggregator: a member that accepted an invite asks to add the newcomer it vouches for. */
  onAdmit(info: PeerInfo, from: string): AdmitAccepted | ErrorReply {
    const ctx = this.ctx;
    if (ctx.raft === null || !ctx.isMember(from)) return { type: 'error', reason: 'only a member can admit a newcomer' };
    try {
      const membership = this.addMember(info);
      ctx.log(`${info.name} (${short(info.peerId)}) joined, invited by ${short(from)}`);
      return { type: 'admit-accepted', ...membership };
    } catch (e) {
      return { type: 'error', reason: oneLine(e).slice(0, 500) };
    }
  }

  private memberList(): MemberList {
    const st = this.ctx.raft!.status();
    return { members: st.members.map((id) => this.infoOf(id)), membershipVersion: st.membershipVersion };
  }

  /** What this peer knows of a member (a name and addresses come with its join, or later). */
  infoOf(id: string): PeerInfo {
    return this.ctx.memberInfo.get(id) ?? { peerId: id, name: short(id), multiaddrs: [], capacity: 0 };
  }

  /** A member's identify tells its current listen addresses: record them, so that every member
   *  can reach every other one (also one that joined later, or came back on a new port). */
  onIdentify(id: string, listen: string[]): void {
    const ctx = this.ctx;
    if (id === ctx.peerId || ctx.fed === null) return;
    const addrs = listen.filter((a) => !a.includes('/ip4/0.0.0.0/') && !a.includes('/ip6/::/')).slice(0, 16);
    if (addrs.length === 0) return;
    const prev = ctx.memberInfo.get(id);
    if (prev !== undefined && prev.multiaddrs.join('\n') === addrs.join('\n')) return;
    const info: PeerInfo = { ...(prev ?? { peerId: id, name: short(id), capacity: 0 }), multiaddrs: addrs };
    ctx.memberInfo.set(id, info);
    if (!ctx.fed.members.some((m) => m.peerId === id)) return;
    ctx.fed = { ...ctx.fed, members: ctx.fed.members.map((m) => (m.peerId === id ? { ...m, multiaddrs: addrs } : m)) };
    void ctx.saveFederation().catch(() => {});
  }
}
