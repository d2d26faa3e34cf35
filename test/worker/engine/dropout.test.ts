// LoRA dropout masks of the ONNX Runtime path: the asked rate, the 1/(1 − p) scale, the same masks
// for the same seed, and different masks per site and per seed.
import { describe, expect, it } from 'vitest';
import { dropoutFeeds } from '../../../src/worker/engine/model.ts';

describe('dropout masks', () => {
  const sites = [{ name: 'a', features: 64 }, { name: 'b', features: 64 }];
  it('keep 1 − p of the entries (to 4 standard deviations), each scaled by 1/(1 − p)', () => {
    for (const rate of [0.1, 0.5]) {
      const m = dropoutFeeds(sites, 8, 128, rate, 7).a.data;
      const kept = m.filter((x) => x > 0);
      const sd = Math.sqrt((rate * (1 - rate)) / m.length);
      expect(Math.abs(kept.length / m.length - (1 - rate))).toBeLessThan(4 * sd);
      expect(new Set(kept)).toEqual(new Set([Math.fround(1 / (1 - rate))]));
    }
  });
  it('are a function of the seed and the site', () => {
    const a = dropoutFeeds(sites, 2, 16, 0.3, 11);
    expect(dropoutFeeds(sites, 2, 16, 0.3, 11)).toEqual(a);
    expect(a.b.data).not.toEqual(a.a.data);
    expect(dropoutFeeds(sites, 2, 16, 0.3, 12).a.data).not.toEqual(a.a.data);
  });
});
