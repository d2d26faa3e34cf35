// Invite codes: one line a person can paste, carrying what a newcomer needs to reach and prove
// itself to a federation.
//
//   ff1-<payload, RFC 4648 base32 lower-case unpadded>-<checksum: first 4 bytes of sha256(payload), base32>
//
// The payload (binary, each variable field prefixed by an unsigned varint length):
//   u8 version (1) | federation id | federation name | swarm key (32 bytes) | bootstrap count,
//   then each bootstrap multiaddr (binary form) | invite id | expiry (varint, unix ms) |
//   issuer public key (libp2p protobuf) | signature by the issuer over "fedforward-invite-v1\n"
//   followed by every payload byte before the signature field.
//
// decodeInvite checks the shape, the checksum (typos), the expiry and, when asked, the federation;
// verifyInviteSignature checks the signature. Revocation and use counts live at the inviter, in an
// InviteTable, because only the inviter can know them.
import { createHash, randomBytes } from 'node:crypto';
import { fromString, toString } from 'uint8arrays';
import { multiaddr } from '@multiformats/multiaddr';
import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys';
import { peerIdFromPublicKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';

export const INVITE_PREFIX = 'ff1';
const PAYLOAD_VERSION = 1;
const SIGNING_DOMAIN = new TextEncoder().encode('fedforward-invite-v1\n');
const SWARM_KEY_BYTES = 32;
const MAX_CODE_CHARS = 4096;
const MAX_BOOTSTRAP = 16;

export type InviteErrorReason =
  | 'not-an-invite'
  | 'newer-version'
  | 'mistyped'
  | 'corrupt'
  | 'expired'
  | 'wrong-federation'
  | 'bad-signature'
  | 'unknown'
  | 'revoked'
  | 'used-up'
  | 'not-for-you';

/** A one-line, user-facing invite problem; `reason` says which for programs. */
export class InviteError extends Error {
  override name = 'InviteError';
  readonly reason: InviteErrorReason;
  constructor(reason: InviteErrorReason, message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface Invite {
  federationId: string;
  federationName: string;
  /** The 32 raw bytes of the federation's libp2p pnet pre-shared key. */
  swarmKey: Uint8Array;
  /** Multiaddrs of the inviter, each ending in /p2p/<peer id>. */
  bootstrap: string[];
  inviteId: string;
  /** Unix ms after which the invite is refused. */
  expiresAt: number;
  /** The issuer's public key, libp2p protobuf encoding. */
  issuerPublicKey: Uint8Array;
  /** The issuer's peer id (derived from issuerPublicKey). */
  issuer: string;
  signature: Uint8Array;
}

export interface CreateInviteOptions {
  /** The issuer's libp2p private key; its peer id should be in `bootstrap`. */
  privateKey: PrivateKey;
  federationId: string;
  federationName: string;
  swarmKey: Uint8Array;
  bootstrap: string[];
  /** Default: 16 random bytes, hex. */
  inviteId?: string;
  /** Unix ms; default now + ttlMs. */
  expiresAt?: number;
  /** Default 7 days. */
  ttlMs?: number;
  now?: number;
}

// ---- binary payload ---------------------------------------------------------------------------

class Writer {
  private readonly parts: number[] = [];
  u8(n: number): void {
    this.parts.push(n & 0xff);
  }
  varint(n: number): void {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`cannot encode ${n}`);
    let v = n;
    while (v >= 0x80) {
      this.parts.push((v % 0x80) | 0x80);
      v = Math.floor(v / 0x80);
    }
    this.parts.push(v);
  }
  bytes(b: Uint8Array): void {
    this.varint(b.byteLength);
    for (const x of b) this.parts.push(x);
  }
  string(s: string): void {
    this.bytes(new TextEncoder().encode(s));
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

class Reader {
  private pos = 0;
  private readonly buf: Uint8Array;
  constructor(buf: Uint8Array) {
    this.buf = buf;
  }
  get done(): boolean {
    return this.pos === this.buf.byteLength;
  }
  u8(): number {
    if (this.pos >= this.buf.byteLength) throw new Error('truncated');
    return this.buf[this.pos++]!;
  }
  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      n += (b & 0x7f) * scale;
      if ((b & 0x80) === 0) {
        if (!Number.isSafeInteger(n)) throw new Error('number too large');
        return n;
      }
      scale *= 0x80;
    }
    throw new Error('bad varint');
  }
  bytes(max: number): Uint8Array {
    const len = this.varint();
    if (len > max || this.pos + len > this.buf.byteLength) throw new Error('bad length');
    const out = this.buf.slice(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  string(max: number): string {
    return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes(max));
  }
}

interface Unsigned {
  federationId: string;
  federationName: string;
  swarmKey: Uint8Array;
  bootstrap: string[];
  inviteId: string;
  expiresAt: number;
  issuerPublicKey: Uint8Array;
}

function encodeUnsigned(u: Unsigned): Uint8Array {
  const w = new Writer();
  w.u8(PAYLOAD_VERSION);
  w.string(u.federationId);
  w.string(u.federationName);
  w.bytes(u.swarmKey);
  w.varint(u.bootstrap.length);
  for (const a of u.bootstrap) w.bytes(multiaddr(a).bytes);
  w.string(u.inviteId);
  w.varint(u.expiresAt);
  w.bytes(u.issuerPublicKey);
  return w.finish();
}

function signedBytes(unsignedPayload: Uint8Array): Uint8Array {
  const out = new Uint8Array(SIGNING_DOMAIN.byteLength + unsignedPayload.byteLength);
  out.set(SIGNING_DOMAIN, 0);
  out.set(unsignedPayload, SIGNING_DOMAIN.byteLength);
  return out;
}

function checksum(payload: Uint8Array): string {
  return toString(createHash('sha256').update(payload).digest().subarray(0, 4), 'base32');
}

// ---- public API -------------------------------------------------------------------------------

/** Create and sign an invite; returns the code to hand out and the invite it encodes. */
export async function createInvite(options: CreateInviteOptions): Promise<{ code: string; invite: Invite }> {
  if (options.swarmKey.byteLength !== SWARM_KEY_BYTES) throw new Error(`a swarm key is ${SWARM_KEY_BYTES} bytes`);
  if (options.bootstrap.length === 0) throw new Error('an invite needs at least one bootstrap address');
  if (options.bootstrap.length > MAX_BOOTSTRAP) throw new Error(`at most ${MAX_BOOTSTRAP} bootstrap addresses`);
  if (options.federationId.length === 0 || options.federationName.length === 0) throw new Error('federation id and name must not be empty');
  const now = options.now ?? Date.now();
  const unsigned: Unsigned = {
    federationId: options.federationId,
    federationName: options.federationName,
    swarmKey: options.swarmKey,
    bootstrap: options.bootstrap.map((a) => multiaddr(a).toString()),
    inviteId: options.inviteId ?? randomBytes(16).toString('hex'),
    expiresAt: options.expiresAt ?? now + (options.ttlMs ?? 7 * 24 * 3600 * 1000),
    issuerPublicKey: publicKeyToProtobuf(options.privateKey.publicKey),
  };
  const body = encodeUnsigned(unsigned);
  // Copied: the key may return a Node Buffer, and the invite should hold a plain Uint8Array.
  const signature = Uint8Array.from(await options.privateKey.sign(signedBytes(body)));
  const w = new Writer();
  w.bytes(signature);
  const sig = w.finish();
  const payload = new Uint8Array(body.byteLength + sig.byteLength);
  payload.set(body, 0);
  payload.set(sig, body.byteLength);
  const code = `${INVITE_PREFIX}-${toString(payload, 'base32')}-${checksum(payload)}`;
  const issuer = peerIdFromPublicKey(options.privateKey.publicKey).toString();
  return { code, invite: { ...unsigned, issuer, signature } };
}

export interface DecodeInviteOptions {
  /** Refuse an invite for any other federation (a peer that already belongs to one). */
  federationId?: string;
}

const BASE32 = /^[a-z2-7]*$/;

/**
 * Decode an invite code as pasted (surrounding and embedded whitespace and case are forgiven).
 * Throws an InviteError with a one-line message that says what is wrong. Does not check the
 * signature: see verifyInviteSignature.
 */
export function decodeInvite(code: string, now: number = Date.now(), options: DecodeInviteOptions = {}): Invite {
  const notInvite = (): InviteError => new InviteError('not-an-invite', 'not a FedForward invite code');
  if (typeof code !== 'string' || code.length > MAX_CODE_CHARS * 2) throw notInvite();
  const text = code.replace(/\s+/g, '').toLowerCase();
  if (text.length > MAX_CODE_CHARS) throw notInvite();
  const parts = text.split('-');
  const prefix = parts[0] ?? '';
  if (/^ff[0-9]+$/.test(prefix) && prefix !== INVITE_PREFIX) {
    throw new InviteError('newer-version', `invite code is for another FedForward version (${prefix}); update FedForward`);
  }
  if (prefix !== INVITE_PREFIX) throw notInvite();
  if (parts.length !== 3 || parts[1]!.length < 16 || parts[2]!.length === 0) {
    throw new InviteError('mistyped', 'invite code is mistyped or incomplete (expected ff1-<code>-<checksum>)');
  }
  const [, body, sum] = parts as [string, string, string];
  for (const s of [body, sum]) {
    if (!BASE32.test(s)) {
      const bad = [...s].find((c) => !/[a-z2-7]/.test(c));
      throw new InviteError('mistyped', `invite code is mistyped (invalid character '${bad}')`);
    }
  }
  let payload: Uint8Array;
  try {
    payload = fromString(body, 'base32');
  } catch {
    throw new InviteError('mistyped', 'invite code is mistyped (bad length)');
  }
  if (checksum(payload) !== sum) throw new InviteError('mistyped', 'invite code is mistyped (checksum mismatch)');

  let invite: Invite;
  try {
    const r = new Reader(payload);
    const version = r.u8();
    if (version !== PAYLOAD_VERSION) {
      throw new InviteError('newer-version', `invite code is for another FedForward version (payload v${version}); update FedForward`);
    }
    const federationId = r.string(128);
    const federationName = r.string(200);
    const swarmKey = r.bytes(SWARM_KEY_BYTES);
    if (swarmKey.byteLength !== SWARM_KEY_BYTES) throw new Error('bad swarm key');
    const count = r.varint();
    if (count === 0 || count > MAX_BOOTSTRAP) throw new Error('bad bootstrap count');
    const bootstrap: string[] = [];
    for (let i = 0; i < count; i++) bootstrap.push(multiaddr(r.bytes(1024)).toString());
    const inviteId = r.string(128);
    const expiresAt = r.varint();
    const issuerPublicKey = r.bytes(1024);
    const signature = r.bytes(1024);
    if (!r.done) throw new Error('trailing bytes');
    const issuer = peerIdFromPublicKey(publicKeyFromProtobuf(issuerPublicKey)).toString();
    invite = { federationId, federationName, swarmKey, bootstrap, inviteId, expiresAt, issuerPublicKey, issuer, signature };
  } catch (err) {
    if (err instanceof InviteError) throw err;
    throw new InviteError('corrupt', 'invite code is corrupt (it passed the checksum but does not decode)');
  }
  if (now > invite.expiresAt) {
    throw new InviteError('expired', `invite code has expired (${new Date(invite.expiresAt).toISOString()}); ask for a new one`);
  }
  if (options.federationId !== undefined && options.federationId !== invite.federationId) {
    throw new InviteError('wrong-federation', `invite is for another federation ("${invite.federationName}")`);
  }
  return invite;
}

/**
 * Check the invite's signature with its embedded issuer key. When `trustedIssuers` (peer ids) is
 * given, the issuer must also be one of them: a signature only proves integrity, and the inviter
 * (or any member checking an invite) should accept only invites its federation issued.
 * Throws InviteError('bad-signature') on failure.
 */
export async function verifyInviteSignature(invite: Invite, trustedIssuers?: Iterable<string>): Promise<void> {
  const bad = new InviteError('bad-signature', 'invite code signature is invalid');
  let ok = false;
  try {
    const key = publicKeyFromProtobuf(invite.issuerPublicKey);
    if (peerIdFromPublicKey(key).toString() !== invite.issuer) throw bad;
    const body = encodeUnsigned(invite);
    ok = await key.verify(signedBytes(body), invite.signature);
  } catch {
    throw bad;
  }
  if (!ok) throw bad;
  if (trustedIssuers !== undefined && ![...trustedIssuers].includes(invite.issuer)) {
    throw new InviteError('bad-signature', 'invite was not issued by a member of this federation');
  }
}

// ---- the inviter's table ----------------------------------------------------------------------

export interface InviteRecord {
  inviteId: string;
  usesLeft: number;
  revoked: boolean;
  expiresAt: number;
  /** The peer ids it admits; absent: anyone holding it, after a member approves them. */
  for?: string[];
}

/** The inviter's record of the invites it issued: remaining uses and revocation. Serialisable. */
export class InviteTable {
  private readonly records = new Map<string, InviteRecord>();

  constructor(records: readonly InviteRecord[] = []) {
    for (const r of records) this.records.set(r.inviteId, { ...r });
  }

  add(inviteId: string, uses: number, expiresAt: number, forPeers?: readonly string[]): void {
    if (!Number.isInteger(uses) || uses < 1) throw new Error('an invite needs at least one use');
    this.records.set(inviteId, { inviteId, usesLeft: uses, revoked: false, expiresAt, ...(forPeers?.length ? { for: [...forPeers] } : {}) });
  }

  /** Returns false when the invite is unknown. */
  revoke(inviteId: string): boolean {
    const r = this.records.get(inviteId);
    if (r === undefined) return false;
    r.revoked = true;
    return true;
  }

  get(inviteId: string): InviteRecord | undefined {
    const r = this.records.get(inviteId);
    return r === undefined ? undefined : { ...r };
  }

  /** Throws an InviteError when the invite may not be used now (by `peerId`, when given). */
  check(inviteId: string, now: number = Date.now(), peerId?: string): void {
    const r = this.records.get(inviteId);
    if (r === undefined) throw new InviteError('unknown', 'invite is unknown to this federation');
    if (r.revoked) throw new InviteError('revoked', 'invite has been revoked');
    if (now > r.expiresAt) throw new InviteError('expired', 'invite code has expired; ask for a new one');
    if (r.usesLeft <= 0) throw new InviteError('used-up', 'invite has been used up');
    if (peerId !== undefined && r.for !== undefined && !r.for.includes(peerId)) throw new InviteError('not-for-you', 'invite was issued for another peer id');
  }

  /** check(), then use it once. Persist the table (toJSON) before answering the joiner. */
  consume(inviteId: string, now: number = Date.now(), peerId?: string): void {
    this.check(inviteId, now, peerId);
    this.records.get(inviteId)!.usesLeft -= 1;
  }

  /** Whether some live invite could admit `peerId`: one bound to it, or one bound to nobody. */
  mayAdmit(peerId: string, now: number = Date.now()): boolean {
    for (const r of this.records.values()) {
      if (r.revoked || now > r.expiresAt || r.usesLeft <= 0) continue;
      if (r.for === undefined || r.for.includes(peerId)) return true;
    }
    return false;
  }

  toJSON(): InviteRecord[] {
    return [...this.records.values()].map((r) => ({ ...r }));
  }
}
