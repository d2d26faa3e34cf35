// The emitter's external-data path (models past protobuf's 2 GB limit), exercised on a small model
// by lowering the threshold: ONNX Runtime must load the weights from the file and give the same
// logits as the in-memory model. And the order ONNX Runtime runs a jvp graph in (read from its
// profile), which decides how many of the model's values are alive at once.
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { gpt2 } from '../../../src/worker/engine/models/gpt2.ts';
import { batchFeeds } from '../../../src/worker/engine/model.ts';
import { serialize, toOnnx } from '../../../src/worker/engine/onnx.ts';
import { jvpGraph, tangentName } from '../../../src/worker/engine/jvp.ts';
import { ort } from '../../../src/worker/engine/session.ts';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

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

  it('runs a jvp graph layer by layer: the first layer\'s tangents before the last layer\'s values', async () => {
    const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 3, hidden: 32, heads: 2, vocab: 40, positions: 16 }, 1);
    const ir = gpt2(config, tensors, { kind: 'classification', numLabels: 2 }, { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] });
    const t = ir.trace(false);
    const names = ir.trainable.map((s) => s.name);
    const j = jvpGraph(t.graph, [t.loss], names);
    const bytes = serialize(toOnnx(j.graph, { loss: j.outs[0], jvp: j.tangents[0]! }, names.map(tangentName)), () => { throw new Error('small'); }) as Uint8Array;
    const model = onnx.ModelProto.decode(bytes);
    // the nodes that read layer 0's LoRA tangents, and the one value node of the loss (log-softmax)
    const first = new Set(model.graph!.node!.filter((n) => n.input!.some((x) => x.startsWith('transformer.h.0.') && x.endsWith('.tangent'))).map((n) => n.name!));
    const last = model.graph!.node!.filter((n) => n.opType === 'LogSoftmax').map((n) => n.name!);
    expect(first.size).toBeGreaterThan(0);
    expect(last).toHaveLength(1);
    const dir = mkdtempSync(join(os.tmpdir(), 'ff-onnx-order-'));
    try {
      const s = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, logSeverityLevel: 3, enableProfiling: true, profileFilePrefix: join(dir, 'p') });
      const feeds = { ...batchFeeds(ir, { b: 2, t: 4, ids: Int32Array.of(1, 2, 3, 4, 5, 6, 7, 8), mask: new Float32Array(8).fill(1), labels: Int32Array.of(0, 1) }, true) };
      for (const spec of ir.trainable) {
        const size = spec.shape.reduce((a, b) => a * b, 1);
        feeds[spec.name] = { data: new Float32Array(size).fill(0.01), shape: spec.shape };
        feeds[tangentName(spec.name)] = { data: new Float32Array(size).fill(1), shape: [1, ...spec.shape] };
      }
      await s.run(Object.fromEntries(s.inputNames.map((n) => [n, new ort.Tensor(feeds[n].data instanceof BigInt64Array ? 'int64' : 'float32', feeds[n].data, feeds[n].shape)])));
      await s.release();
      const events = JSON.parse(readFileSync(join(dir, readdirSync(dir)[0]), 'utf8')) as { cat: string; name: string }[];
      // node events are named <node>_kernel_time; a fused node keeps its first node's name as prefix
      const order = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time')).map((e) => e.name.slice(0, -'_kernel_time'.length).split('/')[0]);
      const at = (names: Iterable<string>) => Math.min(...[...names].map((n) => order.indexOf(n)).filter((i) => i >= 0));
      expect(order.length).toBeGreaterThan(0);
      expect(at(first)).toBeLessThan(at(last));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
