import { describe, expect, it } from 'vitest';
import { describeCollapse, detectCollapse, sumCounts } from '../../src/shared/collapse.ts';

const collapseWarning = (...a: Parameters<typeof detectCollapse>) => {
  const c = detectCollapse(...a);
  return c && describeCollapse(c);
};

describe('collapse warning', () => {
  it('sums per-class counts over clients', () => {
    expect(sumCounts([{ loss: 1, correct: 1, total: 3, predicted: [2, 1], actual: [1, 2] }, { loss: 1, correct: 0, total: 1, predicted: [0, 1], actual: [1, 0] }])).toEqual({ predicted: [2, 2], actual: [2, 2] });
    expect(sumCounts([{ loss: 1, correct: 0, total: 3 }])).toBeNull(); // language modelling: no classes
  });

  it('names the class an adapter collapsed to', () => {
    const w = collapseWarning(7, 0.69, 0.7, { predicted: [0, 96, 4], actual: [40, 30, 30] }, ['neg', 'pos', 'mixed']);
    expect(w).toMatch(/^round 7: .*one class \("pos"\) for 96 %/);
  });

  it('says nothing for a healthy adapter, or when the test labels are themselves one class', () => {
    expect(collapseWarning(3, 0.6, 0.7, { predicted: [52, 48], actual: [50, 50] })).toBeNull();
    expect(collapseWarning(3, 0.6, 0.7, { predicted: [100, 0], actual: [97, 3] })).toBeNull();
    expect(collapseWarning(3, 0.6, 0.7, { predicted: [94, 6], actual: [50, 50] })).toBeNull();
  });

  it('warns when the test loss rises above round 0\'s', () => {
    expect(collapseWarning(4, 0.7461, 0.6862, { predicted: [50, 50], actual: [50, 50] })).toMatch(/test loss 0\.7461 is above the untrained adapter's 0\.6862/);
    expect(collapseWarning(4, 3.1, 3.2, null)).toBeNull();
    expect(collapseWarning(4, 3.3, 3.2, null)).toMatch(/above/);
  });
});
