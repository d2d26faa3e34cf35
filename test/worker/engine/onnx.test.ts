// The emitter's external-data path (models past protobuf's 2 GB limit), exercised on a small model
// by lowering the threshold: ONNX Runtime must load the weights from the file and give the same
// logits as the in-memory model.
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { gpt2 } from '../../../src/worker/engine/models/gpt2.ts';
import { batchFeeds } from '../../../src/worker/engine/model.ts';
import { serialize, toOnnx } from '../../../src/worker/engine/onnx.ts';
import { ort } from '../../../src/worker/engine/session.ts';

describe('ONNX emitter', () => {
  it('writes the weights as external data past the threshold, and ORT loads them from disk', async () => {
    const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 2, hidden: 32, heads: 2, vocab: 40, positions: 16 }, 1);
    const ir = gpt2(config, tensors, { kind: 'causal-lm' }, { r: 1, alpha: 1, dropout: 0, targetModules: [] });
    const t = ir.trace(false);
    const emitted = () => toOnnx(t.graph, { logits: t.logits });
    const dir = mkdtempSync(join(os.tmpdir(), 'ff-onnx-test-'));
    try {
      const path = serialize(emitted(), () => dir, 0);
      expect(typeof path).toBe('string');
      const weights = statSync(join(dir, 'weights.bin')).size;
      expect(weights).toBe(emitted().weightBytes);
      expect(statSync(path as string).size).toBeLessThan(weights / 4); // the model file holds no weights
      const fromDisk = await ort.InferenceSession.create(path as string);
      const inMemory = await ort.InferenceSession.create(serialize(emitted(), () => dir) as Uint8Array);
      const feeds = batchFeeds(ir, { b: 1, t: 5, ids: Int32Array.of(3, 1, 4, 1, 5), mask: new Float32Array(5).fill(1), labels: null }, true);
      const run = async (s: ort.InferenceSession) =>
        (await s.run(Object.fromEntries(s.inputNames.map((n) => [n, new ort.Tensor(feeds[n].data instanceof BigInt64Array ? 'int64' : 'float32', feeds[n].data, feeds[n].shape)])))).logits.data;
      expect(await run(fromDisk)).toEqual(await run(inMemory));
      expect(readdirSync(dir).sort()).toEqual(['model.onnx', 'weights.bin']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
