// What a compute worker reports about memory: its process's RSS and peak RSS, the peer's (or the
// simulator's) own, where ONNX Runtime's training buffers show, rather than a figure of its thread.
import { describe, expect, it } from 'vitest';
import { statSync } from 'node:fs';
import path from 'node:path';
import { ComputePool } from '../../../src/main/compute/pool.ts';
import { HyperParams } from '../../../src/shared/methods.ts';
import { resolveModelDir } from '../../../src/worker/models/embedded.ts';
import { processMemory } from '../../../src/worker/process_memory.ts';
import type { MemorySample } from '../../../src/shared/worker_protocol.ts';

describe('compute worker memory', () => {
  it('reports its process RSS and peak with each step and reply', { timeout: 120_000 }, async () => {
    const pool = new ComputePool(1);
    try {
      const init = await pool.init({ model: 'embedded', lora: {}, backend: 'wasm', maxLength: 32, initSeed: 0 }, { source: 'sentiment', split: { kind: 'dirichlet', clients: 2, alpha: 1 }, seed: 0, trainFraction: 0.8, limit: 40 });
      expect(init.backend).toMatch(/^onnxruntime-node /);
      const weightBytes = statSync(path.join(resolveModelDir('embedded'), 'model.safetensors')).size;
      const samples: MemorySample[] = [];
      const hp = HyperParams.parse({ maxLength: 32, maxLocalSteps: 2, batchSize: 4 });
      const reply = await pool.run<'train'>(
        { type: 'train', client: init.clients[0]!.id, roundSeed: 'memory', method: 'fedavg', hp, units: init.units.map((u) => u.name), globals: init.initial },
        (p) => samples.push(p.memory),
      );
      const here = processMemory();
      expect(samples.length).toBe(2);
      for (const m of [...samples, reply.memory]) {
        // the process holds at least the model's weights
        expect(m.rss).toBeGreaterThan(weightBytes);
        expect(m.peakRss).toBeGreaterThanOrEqual(m.rss);
      }
      // the same process as this thread's: its peak only grows, and its RSS is about the same now
      expect(here.peakRss).toBeGreaterThanOrEqual(reply.memory.peakRss);
      expect(Math.abs(reply.memory.rss - here.rss)).toBeLessThan(0.25 * here.rss);
    } finally {
      await pool.close();
    }
  });
});
