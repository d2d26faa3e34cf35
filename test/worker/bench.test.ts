// The benchmark's ONNX Runtime modes on a tiny model (what they measure, not how fast: no timings
// are asserted), and the shape of its 1 B-parameter Llama.
import { describe, expect, it } from 'vitest';
import { type BenchArgs, RANDOM, measureMode } from '../../src/worker/bench.ts';

const args: BenchArgs = { model: 'gpt2-4x256-random', batch: 1, seq: 4, steps: 1, layers: 'all', k: 1, backend: 'auto', threads: 1 };

describe('bench on ONNX Runtime', () => {
  it('ort-jvp-assignments times one jvp step per client of a Spry round, by its first unit, beside inference', async () => {
    const r = await measureMode('ort-jvp-assignments', { ...args, clients: 3 });
    // 4 LoRA units (c_attn of each layer) and the head over 3 clients: unit i goes to client i mod 3
    expect(r.clients!.map((c) => [c.first, c.units])).toEqual([['transformer.h.0.attn.c_attn', 2], ['transformer.h.1.attn.c_attn', 2], ['transformer.h.2.attn.c_attn', 1]]);
    expect(r.stepMs).toHaveLength(3);
    expect(r.medianStepMs).toBeCloseTo(r.clients!.reduce((s, c) => s + c.medianStepMs, 0) / 3, 9);
    expect(r.inferenceMs).toBeGreaterThan(0);
  });

  it('ort-weights builds the jvp session and runs no step; the LM head task runs a jvp step', async () => {
    const w = await measureMode('ort-weights', args);
    expect(w.stepMs).toEqual([]);
    expect(w.medianStepMs).toBeNaN();
    expect(w.peakRssBytes).toBeGreaterThan(0);
    const lm = await measureMode('ort-jvp', { ...args, task: 'lm' });
    expect(lm.stepMs).toHaveLength(1);
    expect(lm.trainable).toBe(8); // 4 LoRA pairs, no classification head
  });

  it('llama-1b-random has about 1 B parameters (TinyLlama 1.1B less its untied LM head)', () => {
    const s = RANDOM['llama-1b-random'];
    const hd = s.hidden / s.heads;
    const perLayer = 2 * s.hidden * s.hidden + 2 * s.hidden * s.kvHeads! * hd + 3 * s.hidden * s.intermediate! + 2 * s.hidden;
    const params = s.vocab * s.hidden + s.layers * perLayer + s.hidden;
    expect(params).toBeGreaterThan(1.0e9);
    expect(params).toBeLessThan(1.1e9);
  });
});
