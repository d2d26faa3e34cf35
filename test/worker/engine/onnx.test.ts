// The emitter's weight file (ONNX external data, as every session loads its weights): ONNX Runtime
// must give the same outputs from it as from the in-memory model, before and after JavaScript's
// copies are released. And the order ONNX Runtime runs a jvp graph in (read from its
// profile), which decides how many of the model's values are alive at once.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { randomCheckpoint } from '../../../src/worker/models/random.ts';
import { gpt2 } from '../../../src/worker/engine/models/gpt2.ts';
import { batchFeeds } from '../../../src/worker/engine/model.ts';
import { WeightFile, serialize, toOnnx } from '../../../src/worker/engine/onnx.ts';
import { jvpGraph, tangentName } from '../../../src/worker/engine/jvp.ts';
import { ort } from '../../../src/worker/engine/session.ts';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

describe('ONNX emitter', () => {
  it('puts the weights of all of a model\'s graphs in one file, each once; after release the graphs run from the file alone', async () => {
    const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 2, hidden: 32, heads: 2, vocab: 40, positions: 16 }, 1);
    const ir = gpt2(config, tensors, { kind: 'causal-lm' }, { r: 1, alpha: 1, dropout: 0, targetModules: [] });
    const logitsOf = () => { const t = ir.trace(false); return toOnnx(t.graph, { logits: t.logits }); };
    const lossOf = () => { const t = ir.trace(false); return toOnnx(t.graph, { loss: t.loss }); };
    const feeds = batchFeeds(ir, { b: 1, t: 5, ids: Int32Array.of(3, 1, 4, 1, 5), mask: new Float32Array(5).fill(1), labels: null }, true);
    const run = async (model: string | Uint8Array, out: string) => {
      const s = await ort.InferenceSession.create(model as string);
      const r = await s.run(Object.fromEntries(s.inputNames.map((n) => [n, new ort.Tensor(feeds[n].data instanceof BigInt64Array ? 'int64' : 'float32', feeds[n].data, feeds[n].shape)])));
      await s.release();
      return Array.from(r[out].data as Float32Array);
    };
    const inMemory = await run(serialize(logitsOf()), 'logits');
    const inMemoryLoss = await run(serialize(lossOf()), 'loss');
    const file = new WeightFile();
    const path = file.write(logitsOf());
    const dir = dirname(path);
    // the weights of 4 KB or more: wte and each layer's four projection matrices (wpe, 2 KB, biases and norms stay inline)
    const big = [...tensors.values()].filter((t) => t.data.byteLength >= 4096);
    expect(big.length).toBe(1 + 2 * 4);
    const total = big.reduce((s, t) => s + t.data.byteLength, 0);
    expect(statSync(join(dir, 'weights.bin')).size).toBe(total);
    expect(statSync(path).size).toBeLessThan(total / 4);
    expect(await run(path, 'logits')).toEqual(inMemory);
    const second = file.write(lossOf());
    expect(statSync(join(dir, 'weights.bin')).size).toBe(total); // nothing written twice
    expect(await run(second, 'loss')).toEqual(inMemoryLoss);
    file.release(big.map((t) => t.data as Float32Array));
    expect(big.every((t) => t.data.length === 0)).toBe(true);
    expect(await run(file.write(logitsOf()), 'logits')).toEqual(inMemory);
  });

  it('removes the weight folders of processes that are gone, and no others', async () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    const dead = mkdtempSync(join(os.tmpdir(), `fedforward-weights-${gone}-`));
    const alive = mkdtempSync(join(os.tmpdir(), `fedforward-weights-${process.ppid}-`));
    try {
      const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 1, hidden: 32, heads: 2, vocab: 40, positions: 16 }, 1);
      const t = gpt2(config, tensors, { kind: 'causal-lm' }, { r: 1, alpha: 1, dropout: 0, targetModules: [] }).trace(false);
      new WeightFile().write(toOnnx(t.graph, { logits: t.logits }));
      expect(existsSync(dead)).toBe(false);
      expect(existsSync(alive)).toBe(true);
    } finally {
      rmSync(dead, { recursive: true, force: true });
      rmSync(alive, { recursive: true, force: true });
    }
  });

  it('runs a jvp graph layer by layer: the first layer\'s tangents before the last layer\'s values', async () => {
    const { config, tensors } = randomCheckpoint({ family: 'gpt2', layers: 3, hidden: 32, heads: 2, vocab: 40, positions: 16 }, 1);
    const ir = gpt2(config, tensors, { kind: 'classification', numLabels: 2 }, { r: 1, alpha: 1, dropout: 0, targetModules: ['c_attn'] });
    const t = ir.trace(false);
    const names = ir.trainable.map((s) => s.name);
    const j = jvpGraph(t.graph, [t.loss], names);
    const bytes = serialize(toOnnx(j.graph, { loss: j.outs[0], jvp: j.tangents[0]! }, names.map(tangentName)));
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
