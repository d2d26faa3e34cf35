// Who may be a member: creating a federation, inviting (any member can), revoking an invite, joining
// (terms first, then the join-request), admitting a newcomer (by the aggregator, which Raft's
// heartbeats then carry to everyone), and what the peer knows of each member (name, addresses).
//
// Joining: the newcomer dials the inviter (any member) → join-terms (the signed settings) → the
// newcomer checks its copy of the base model against the fingerprint → join-request with it → the
// inviter checks the invite and the fingerprint, and has the aggregator (itself, or over the admit
// protocol) add the newcomer to the membership → join-accepted; only then is the invite used up.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { multiaddr } from '@multiformats/multiaddr';
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id';
import type { PeerId, PrivateKey } from '@libp2p/interface';
import type { z } from 'zod';
import { createPeerNode, generateSwarmKey, type PeerNode, type PeerNodeOptions } from './node.ts';
import { request } from './wire.ts';
import { oneLine, short, sleep, type CreateSettings, type PeerContext } from './context.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { PROTOCOLS, type AdmitAccepted, type ErrorReply, type FederationSettings, type JoinRequest, type PeerInfo } from '../../shared/messages.ts';
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

export class Membership {
  private readonly ctx: PeerContext;
  private inviteChain: Promise<unknown> = Promise.resolve();

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
    const model = ModelSpec.parse(c.model);
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
  async invite(opts: { expiresMs?: number; uses?: number } = {}): Promise<string> {
    const ctx = this.ctx;
    const fed = ctx.fed;
    if (fed === null) throw new Error('this peer belongs to no federation; create or join one first');
    const expiresAt = Date.now() + (opts.expiresMs ?? 24 * 3600 * 1000);
    const { code, invite } = await createInvite({
      privateKey: ctx.privateKey,
      federationId: fed.settings.federationId,
      federationName: fed.settings.federationName,
      swarmKey: Uint8Array.from(Buffer.from(fed.swarmKey, 'hex')),
      bootstrap: ctx.addresses(),
      expiresAt,
    });
    await this.updateInvites((table) => table.add(invite.inviteId, opts.uses ?? 1, expiresAt));
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
      const ask = async (fingerprint?: string) => {
        for (let attempt = 0; ; attempt++) {
          const { msg } = await request(node, invite.bootstrap.map((a) => multiaddr(a)), PROTOCOLS.join, { type: 'join-request', invite: code, peer: self, modelFingerprint: fingerprint }, { timeoutMs: 20_000 });
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

  /** Which peers the node refuses (libp2p's connection gater). */
  gater(): Pick<PeerNodeOptions, 'connectionGater'> {
    const blocked = this.ctx.options.blockedPeers;
    if (blocked === undefined) return {};
    const deny = (id: PeerId) => blocked.has(id.toString());
    return {
      connectionGater: {
        denyDialPeer: deny,
        denyInboundEncryptedConnection: deny,
        denyOutboundEncryptedConnection: deny,
      },
    };
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
        (await this.readInvites()).check(invite.inviteId);
        const want = fed.settings.modelFingerprint;
        if (want !== undefined && theirs === undefined) return { type: 'join-terms' as const, settings: fed.settings };
        if (want !== undefined && theirs !== want)
          return refuse(`the joiner's base model is not the federation's (fingerprint ${theirs!.slice(0, 12)}…, expected ${want.slice(0, 12)}…)`);
        // The invite is used up only once the newcomer is a member: a failed admission leaves it as it was.
        membership = await this.updateInvites(async (table) => {
          table.consume(invite.inviteId);
          return this.admit(info);
        });
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
