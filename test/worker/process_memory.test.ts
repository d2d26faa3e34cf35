// Process memory as the kernel counts it: RSS now and its peak, and a mark after which the peak
// counts only what ran since (a bench child: the weights loaded, then the steps).
import { describe, expect, it } from 'vitest';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { markWorkingMemory, processMemory } from '../../src/worker/process_memory.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const MB = 2 ** 20;

/** Touches every page of a fresh buffer, so that all of it is resident. */
const resident = (bytes: number) => new Uint8Array(bytes).fill(1);

describe('process memory', () => {
  it('counts a buffer this process holds, and its peak is never below the present', () => {
    const before = processMemory();
    const held = resident(96 * MB);
    const after = processMemory();
    expect(after.rss - before.rss).toBeGreaterThan(0.9 * held.byteLength);
    expect(after.peakRss).toBeGreaterThanOrEqual(after.rss);
    expect(held[held.length - 1]).toBe(1);
  });

  it.runIf(process.platform === 'linux')('measures the peak above a mark, not an earlier higher peak', async () => {
    // an earlier peak, far above anything the measured part needs, then given back
    const baseline = processMemory().rss;
    let early: Uint8Array | null = resident(256 * MB);
    expect(early[0]).toBe(1);
    early = null;
    gc();
    // V8 hands a large buffer's memory back on a background thread: wait until it is gone
    for (let i = 0; i < 200 && processMemory().rss > baseline + 128 * MB; i++) await new Promise((r) => setTimeout(r, 25));
    expect(processMemory().rss).toBeLessThan(baseline + 128 * MB);
    const read = markWorkingMemory();
    const held = resident(32 * MB);
    const w = read();
    // what ran after the mark: the 32 MB, not the 256 MB before it
    expect(w.workingRss).toBeGreaterThan(0.9 * held.byteLength);
    expect(w.workingRss).toBeLessThan(held.byteLength + 64 * MB);
    // the process's own peak still counts the earlier one
    expect(w.peakRss).toBeGreaterThan(w.markRss + 200 * MB);
    expect(held[0]).toBe(1);
  });
});
