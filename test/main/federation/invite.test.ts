import { beforeAll, describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import type { PrivateKey } from '@libp2p/interface';
import {
  InviteError,
  InviteTable,
  createInvite,
  decodeInvite,
  verifyInviteSignature,
  type CreateInviteOptions,
} from '../../../src/shared/invite.ts';

let key: PrivateKey;
let other: PrivateKey;
let base: CreateInviteOptions;
const NOW = 1_750_000_000_000;

beforeAll(async () => {
  key = await generateKeyPair('Ed25519');
  other = await generateKeyPair('Ed25519');
  const id = peerIdFromPrivateKey(key).toString();
  base = {
    privateKey: key,
    federationId: 'fed-7f3a',
    federationName: 'Clinics of the North',
    swarmKey: Uint8Array.from({ length: 32 }, (_, i) => i * 5),
    bootstrap: [`/ip4/203.0.113.7/tcp/4001/p2p/${id}`, `/ip6/::1/tcp/4002/p2p/${id}`],
    inviteId: 'inv-0001',
    expiresAt: NOW + 3_600_000,
    now: NOW,
  };
});

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InviteError);
    const e = err as InviteError;
    expect(e.message).not.toContain('\n');
    return `${e.reason}: ${e.message}`;
  }
  throw new Error('did not throw');
}

describe('invite codes', () => {
  it('round-trip through one pasteable line and verify', async () => {
    const { code, invite } = await createInvite(base);
    expect(code).toMatch(/^ff1-[a-z2-7]+-[a-z2-7]{7}$/);
    expect(code.length).toBeLessThan(500);
    const decoded = decodeInvite(code, NOW);
    expect(decoded).toEqual(invite);
    expect(decoded.federationName).toBe('Clinics of the North');
    expect(decoded.swarmKey).toEqual(base.swarmKey);
    expect(decoded.bootstrap).toEqual(base.bootstrap);
    expect(decoded.issuer).toBe(peerIdFromPrivateKey(key).toString());
    await verifyInviteSignature(decoded);
    await verifyInviteSignature(decoded, [decoded.issuer]);
  });

  it('forgives whitespace, line breaks and upper case from pasting', async () => {
    const { code, invite } = await createInvite(base);
    const mangled = `  ${code.slice(0, 40).toUpperCase()}\n  ${code.slice(40, 90)} \r\n${code.slice(90)}  `;
    expect(decodeInvite(mangled, NOW)).toEqual(invite);
  });

  it('says which problem it is, in one line', async () => {
    const { code } = await createInvite(base);
    expect(reasonOf(() => decodeInvite('hello world', NOW))).toBe('not-an-invite: not a FedForward invite code');
    expect(reasonOf(() => decodeInvite('', NOW))).toBe('not-an-invite: not a FedForward invite code');
    expect(reasonOf(() => decodeInvite('https://example.com/ff1-abc', NOW))).toBe('not-an-invite: not a FedForward invite code');
    expect(reasonOf(() => decodeInvite(code.replace(/^ff1/, 'ff2'), NOW))).toMatch(/^newer-version: .*ff2/);
    expect(reasonOf(() => decodeInvite(code.slice(0, 30), NOW))).toMatch(/^mistyped: invite code is mistyped or incomplete/);
    expect(reasonOf(() => decodeInvite(code.replace(/-[a-z2-7]{7}$/, ''), NOW))).toMatch(/^mistyped: /);
    const body = code.split('-')[1]!;
    const at = 20;
    expect(reasonOf(() => decodeInvite(code.replace(body, body.slice(0, at) + '0' + body.slice(at + 1)), NOW))).toBe(
      "mistyped: invite code is mistyped (invalid character '0')",
    );
    // Every single-character substitution within the alphabet is caught by the checksum.
    const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
    for (let i = 0; i < body.length; i += 7) {
      const c = body[i]!;
      const sub = alphabet[(alphabet.indexOf(c) + 1) % 32]!;
      const typo = code.replace(body, body.slice(0, i) + sub + body.slice(i + 1));
      expect(reasonOf(() => decodeInvite(typo, NOW))).toMatch(/^mistyped: invite code is mistyped/);
    }
    // Swapped neighbours, a dropped character.
    const swapped = body.slice(0, 10) + body[11] + body[10] + body.slice(12);
    if (swapped !== body) expect(reasonOf(() => decodeInvite(code.replace(body, swapped), NOW))).toMatch(/^mistyped: /);
    expect(reasonOf(() => decodeInvite(code.replace(body, body.slice(0, 50) + body.slice(51)), NOW))).toMatch(/^mistyped: /);
    expect(reasonOf(() => decodeInvite(code, base.expiresAt! + 1))).toMatch(/^expired: invite code has expired/);
    expect(reasonOf(() => decodeInvite(code, NOW, { federationId: 'fed-other' }))).toBe(
      'wrong-federation: invite is for another federation ("Clinics of the North")',
    );
    expect(decodeInvite(code, NOW, { federationId: 'fed-7f3a' }).inviteId).toBe('inv-0001');
  });

  it('detects a forged or re-signed invite', async () => {
    const { invite } = await createInvite(base);
    await expect(verifyInviteSignature({ ...invite, federationName: 'Evil' })).rejects.toThrow('invite code signature is invalid');
    await expect(verifyInviteSignature({ ...invite, expiresAt: invite.expiresAt + 1 })).rejects.toThrow(InviteError);
    await expect(verifyInviteSignature({ ...invite, swarmKey: new Uint8Array(32) })).rejects.toThrow(InviteError);
    const sig = invite.signature.slice();
    sig[0] = sig[0]! ^ 1;
    await expect(verifyInviteSignature({ ...invite, signature: sig })).rejects.toThrow(InviteError);
    // Signed by someone else, self-consistent: valid signature, but not a trusted issuer.
    const { invite: foreign } = await createInvite({ ...base, privateKey: other });
    await verifyInviteSignature(foreign);
    await expect(verifyInviteSignature(foreign, [invite.issuer])).rejects.toThrow('invite was not issued by a member of this federation');
    // Claiming another issuer id with one's own key.
    await expect(verifyInviteSignature({ ...foreign, issuer: invite.issuer })).rejects.toThrow('invite code signature is invalid');
  });

  it('validates what it is asked to create', async () => {
    await expect(createInvite({ ...base, swarmKey: new Uint8Array(31) })).rejects.toThrow(/32 bytes/);
    await expect(createInvite({ ...base, bootstrap: [] })).rejects.toThrow(/bootstrap/);
    await expect(createInvite({ ...base, bootstrap: ['not a multiaddr'] })).rejects.toThrow();
    const { invite } = await createInvite({ ...base, inviteId: undefined, expiresAt: undefined, ttlMs: 1000 });
    expect(invite.inviteId).toMatch(/^[0-9a-f]{32}$/);
    expect(invite.expiresAt).toBe(NOW + 1000);
  });

  it('never throws anything but InviteError on random input (fuzz)', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const chars = 'abcdefghijklmnopqrstuvwxyz234567-ABC01 \n';
    for (let i = 0; i < 2000; i++) {
      const len = Math.floor(rnd() * 200);
      let s = rnd() < 0.7 ? 'ff1-' : '';
      for (let j = 0; j < len; j++) s += chars[Math.floor(rnd() * chars.length)];
      try {
        decodeInvite(s, NOW);
      } catch (err) {
        expect(err).toBeInstanceOf(InviteError);
      }
    }
  });
});

describe('InviteTable (at the inviter)', () => {
  it('tracks uses, revocation and expiry, and serialises', () => {
    const table = new InviteTable();
    table.add('a', 2, NOW + 1000);
    table.add('b', 1, NOW + 1000);
    table.consume('a', NOW);
    table.consume('a', NOW);
    expect(reasonOf(() => table.consume('a', NOW))).toBe('used-up: invite has been used up');
    expect(table.revoke('b')).toBe(true);
    expect(table.revoke('zzz')).toBe(false);
    expect(reasonOf(() => table.check('b', NOW))).toBe('revoked: invite has been revoked');
    expect(reasonOf(() => table.check('zzz', NOW))).toBe('unknown: invite is unknown to this federation');
    table.add('c', 1, NOW);
    expect(reasonOf(() => table.check('c', NOW + 1))).toMatch(/^expired: /);
    const copy = new InviteTable(JSON.parse(JSON.stringify(table)));
    expect(copy.get('a')).toEqual({ inviteId: 'a', usesLeft: 0, revoked: false, expiresAt: NOW + 1000 });
    expect(copy.get('b')?.revoked).toBe(true);
    expect(() => table.add('d', 0, NOW)).toThrow();
  });
});
