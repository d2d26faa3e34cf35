// The compute pool's shutdown: a worker thread terminated while ONNX Runtime runs for it used to take
// the whole process down (a Napi::Error thrown where nothing can catch it: SIGABRT). Stopping a peer
// mid-round, as an aggregator that dies does, must leave the process running.
import { describe, expect, it } from 'vitest';
import { ComputePool } from '../../../src/main/compute/pool.ts';
import { HyperParams } from '../../../src/shared/methods.ts';

describe('compute pool shutdown', () => {
  it('closes while its workers train on ONNX Runtime, and the process lives on', { timeout: 120_000 }, async () => {
    for (let attempt = 0; attempt < 3; attempt++) {
      const pool = new ComputePool(2);
      const init = await pool.init({ model: 'embedded', lora: {}, backend: 'wasm', maxLength: 32, initSeed: 0 }, { source: 'sentiment', split: { kind: 'dirichlet', clients: 2, alpha: 1 }, seed: 0, trainFraction: 0.8, limit: 200 });
      expect(init.backend).toMatch(/onnxruntime/);
      const hp = HyperParams.parse({ maxLength: 32 });
      const training = init.clients.map((c) =>
        pool
          .run<'train'>({ type: 'train', client: c.id, roundSeed: `close-${attempt}`, method: 'spry', hp, units: init.units.map((u) => u.name), globals: init.initial })
          .then(() => null, (e: unknown) => String(e)),
      );
      // let the steps start, then stop the pool under them
      await new Promise((r) => setTimeout(r, 300 + 200 * attempt));
      await pool.close();
      // each training either finished before the close or was cut short with a reason
      for (const refusal of await Promise.all(training)) if (refusal !== null) expect(refusal).toMatch(/shutting down/);
    }
    expect(process.exitCode ?? 0).toBe(0);
  });
});
