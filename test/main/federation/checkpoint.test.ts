// The federation's weight formats: checkpoints (globals + server optimizer state), the wire packing
// of updates, and every check an update must pass before it is aggregated.
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '@libp2p/crypto/keys';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { hashWeights, packWeights, parseCheckpoint, serializeCheckpoint, unpackWeights } from '../../../src/main/federation/checkpoint.ts';
import { signSettings, verifySettings } from '../../../src/main/federation/peer.ts';
import type { TensorSpec, Weights } from '../../../src/shared/units.ts';

const specs: TensorSpec[] = [
  { name: 'a.lora_A', shape: [2, 3] },
  { name: 'a.lora_B', shape: [3, 2] },
  { name: 'head', shape: [4] },
];
const weights = (): Weights =>
  new Map(specs.map((s, k) => [s.name, Float32Array.from({ length: s.shape.reduce((x, y) => x * y, 1) }, (_, i) => k + i / 10)]));

describe('checkpoints', () => {
  it('round-trip the globals and the server state, with deterministic bytes', () => {
    const g = weights();
    const server = { m: new Map([['head', new Float32Array([1, 2, 3, 4])]]), v: new Map([['head', new Float32Array([5, 6, 7, 8])]]) };
    const bytes = serializeCheckpoint({ round: 3, globals: g, server }, 'fed');
    expect(serializeCheckpoint({ round: 3, globals: weights(), server }, 'fed')).toEqual(bytes);
    const back = parseCheckpoint(bytes, specs);
    expect(back.round).toBe(3);
    expect([...back.globals.keys()].sort()).toEqual(specs.map((s) => s.name).sort());
    expect(back.globals.get('a.lora_B')).toEqual(g.get('a.lora_B'));
    expect(back.server.m.get('head')).toEqual(new Float32Array([1, 2, 3, 4]));
    expect(back.server.v.get('head')).toEqual(new Float32Array([5, 6, 7, 8]));
  });

  it('refuse a checkpoint of another model', () => {
    const bytes = serializeCheckpoint({ round: 1, globals: weights(), server: { m: new Map(), v: new Map() } }, 'fed');
    expect(() => parseCheckpoint(bytes, [...specs, { name: 'extra', shape: [1] }])).toThrow(/extra is missing/);
    expect(() => parseCheckpoint(bytes, [{ name: 'head', shape: [5] }, ...specs.slice(0, 2)])).toThrow(/does not match/);
  });
});

describe('update checks', () => {
  const mine = specs.slice(0, 2);
  it('accept exactly the assigned tensors', () => {
    const { layout, data } = packWeights(weights(), mine);
    const w = unpackWeights(layout, data, mine);
    expect(w.get('a.lora_A')).toEqual(weights().get('a.lora_A'));
    expect(hashWeights(weights(), specs)).toMatch(/^[0-9a-f]{64}$/);
  });
  it('refuse a wrong shape, a NaN, a missing or foreign tensor, a bad offset, trailing data', () => {
    const { layout, data } = packWeights(weights(), mine);
    expect(() => unpackWeights([{ ...layout[0]!, shape: [3, 2] }, layout[1]!], data, mine)).toThrow(/has shape \[3, 2\], expected \[2, 3\]/);
    const nan = new Float32Array(data.buffer.slice(0));
    nan[4] = Number.NaN;
    expect(() => unpackWeights(layout, new Uint8Array(nan.buffer), mine)).toThrow(/non-finite/);
    const inf = new Float32Array(data.buffer.slice(0));
    inf[7] = Number.POSITIVE_INFINITY;
    expect(() => unpackWeights(layout, new Uint8Array(inf.buffer), mine)).toThrow(/non-finite/);
    expect(() => unpackWeights(layout.slice(0, 1), data.slice(0, 24), mine)).toThrow(/expected 2 tensors/);
    expect(() => unpackWeights([layout[0]!, { ...layout[1]!, name: 'head' }], data, mine)).toThrow(/unexpected tensor "head"/);
    expect(() => unpackWeights([layout[0]!, { ...layout[1]!, offset: 28 }], data, mine)).toThrow(/offset/);
    const longer = new Uint8Array(data.byteLength + 8);
    longer.set(data);
    expect(() => unpackWeights(layout, longer, mine)).toThrow(/beyond the tensors/);
    expect(() => unpackWeights(layout, data.slice(0, 40), mine)).toThrow(/past the end/);
    expect(() => unpackWeights(undefined, data, mine)).toThrow(/without a layout/);
  });
});

describe('settings signature', () => {
  it('verifies the creator signature and refuses a changed or unsigned setting', async () => {
    const key = await generateKeyPair('Ed25519');
    const base = { federationId: 'f', federationName: 'n', createdAt: 1, rounds: 3, hyperparameters: { lr: 0.001, batchSize: 4 } };
    const signed = await signSettings(base, key);
    expect(signed.creator).toBe(peerIdFromPrivateKey(key).toString());
    await verifySettings(signed);
    // key order does not matter (canonical JSON)
    await verifySettings({ hyperparameters: { batchSize: 4, lr: 0.001 }, ...signed });
    await expect(verifySettings({ ...signed, rounds: 4 })).rejects.toThrow(/signature is invalid/);
    await expect(verifySettings(base)).rejects.toThrow(/not signed/);
    const other = await generateKeyPair('Ed25519');
    await expect(verifySettings({ ...signed, creator: peerIdFromPrivateKey(other).toString() })).rejects.toThrow(/signature is invalid/);
  });
});
