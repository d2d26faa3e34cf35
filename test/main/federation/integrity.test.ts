// Integrity you can see: a model directory is checked (header, layout, shapes against config.json)
// before create; at start every committed checkpoint is verified, each corrupt or missing one is
// logged and fetched again from the members; status.json names the aggregator and its term.
import { afterAll, describe, expect, it } from 'vitest';
import { cp, mkdtemp, open, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { FIXTURES, HAS_FIXTURES } from '../../fixtures.ts';
import { Harness, MODEL, committedShas, data } from './harness.ts';
import { checkModelFiles } from '../../../src/main/federation/model_check.ts';
import { readRecordedStatus } from '../../../src/main/federation/status_file.ts';

const h = new Harness();
const tmps: string[] = [];
afterAll(async () => {
  await h.close();
  await Promise.all(tmps.map((d) => rm(d, { recursive: true, force: true })));
});

async function modelCopy(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'ff-model-'));
  tmps.push(d);
  await cp(path.join(FIXTURES, 'stories260K', 'hf'), d, { recursive: true });
  return d;
}

describe.skipIf(!HAS_FIXTURES)('model files', () => {
  it('accepts a whole model; refuses a truncated file, a damaged header, and weights that do not fit config.json, in one line', async () => {
    await checkModelFiles(MODEL);
    const truncated = await modelCopy();
    const file = path.join(truncated, 'model.safetensors');
    const size = (await readFile(file)).byteLength;
    await truncate(file, size - 100);
    await expect(checkModelFiles(truncated)).rejects.toThrow(/^the model at .*: model\.safetensors is truncated/);

    const damaged = await modelCopy();
    const fh = await open(path.join(damaged, 'model.safetensors'), 'r+');
    await fh.write(Buffer.from('}}}}'), 0, 4, 8); // the header's first bytes
    await fh.close();
    await expect(checkModelFiles(damaged)).rejects.toThrow(/damaged header/);

    const misfit = await modelCopy();
    const config = JSON.parse(await readFile(path.join(misfit, 'config.json'), 'utf8')) as Record<string, number>;
    await writeFile(path.join(misfit, 'config.json'), JSON.stringify({ ...config, num_hidden_layers: (config.num_hidden_layers ?? config.n_layer ?? 1) + 1 }));
    await expect(checkModelFiles(misfit)).rejects.toThrow(/config\.json says/);

    const untokenized = await modelCopy();
    await rm(path.join(untokenized, 'tokenizer.json'));
    await expect(checkModelFiles(untokenized)).rejects.toThrow(/^the model at .* has no tokenizer \(tokenizer\.json, or vocab\.json \+ merges\.txt\)$/);

    // create refuses it before writing anything.
    const p = await h.newPeer('badmodel');
    await expect(
      p.create({ name: 'x', peerName: 'x', model: { model: truncated, backend: 'wasm', maxLength: 16 }, data: data('imdb'), rounds: 1, minMembers: 1 }),
    ).rejects.toThrow(/is truncated/);
    expect(p.settings).toBeNull();
  });
});

describe.skipIf(!HAS_FIXTURES)('checkpoints at start', () => {
  it('a member restarted with a corrupt and a missing checkpoint logs both and fetches them again from the others', { timeout: 600_000 }, async () => {
    const [a, b, c] = await h.federation(3, { rounds: 30 });
    await h.until('round 3 committed everywhere', () => [a!, b!, c!].every((p) => p.status().committedRound >= 3), 120_000);
    const victim = [a!, b!, c!].find((p) => p.status().role !== 'leader')!;
    const dir = victim.dir.root;
    await victim.stop();
    const want = await committedShas(victim);
    // A byte flipped in round 1's file, round 2's file gone.
    const f1 = victim.dir.checkpointPath(1);
    const bytes = await readFile(f1);
    bytes[bytes.length - 1] ^= 0xff;
    await writeFile(f1, bytes);
    const f2 = victim.dir.checkpointPath(2);
    await rm(f2);
    expect((await victim.dir.verifyCheckpoints()).map((e) => e.round)).toEqual([1, 2]);

    const back = await h.newPeer('back', {}, dir);
    await back.start();
    await h.until('both fetched again', async () => (await back.dir.verifyCheckpoints()).length === 0, 60_000);
    expect(h.logs.some((l) => /back: round 1's checkpoint is corrupt or missing/.test(l))).toBe(true);
    expect(h.logs.some((l) => /back: round 2's checkpoint is corrupt or missing/.test(l))).toBe(true);
    expect(h.logs.some((l) => /back: round 1's checkpoint fetched again from .* and verified/.test(l))).toBe(true);
    const now = await committedShas(back);
    for (const r of [1, 2]) expect(now.get(r)).toBe(want.get(r));
    expect((await back.dir.readCheckpoint(1)).entry.sha256).toBe(want.get(1));

    // status.json: the aggregator and its term as this peer sees them.
    await h.until('status.json names the aggregator', async () => (await readRecordedStatus(dir))?.aggregator != null, 30_000);
    const seen = (await readRecordedStatus(dir))!;
    expect(seen.aggregator).toBe(back.status().leader);
    expect(seen.term).toBe(back.status().term);
  });
});
