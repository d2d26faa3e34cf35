// The election timeout a peer adapts to: never below the configured one, growing with the round
// trips it measures (6 × TCP's RTO), capped; and it is handed to the running election.
import { describe, expect, it } from 'vitest';
import { Leadership } from '../../../src/main/federation/leadership.ts';
import { RaftNode } from '../../../src/main/federation/raft.ts';

describe('Leadership', () => {
  it('keeps the configured timeout on a fast link and raises it with slow round trips, up to the cap', () => {
    const fast = new Leadership(1000, 200, () => {});
    for (let i = 0; i < 20; i++) fast.observeRtt(5);
    expect(fast.target()).toBe(1000);

    const slow = new Leadership(1000, 200, () => {});
    for (let i = 0; i < 50; i++) slow.observeRtt(400);
    // srtt → 400, rttvar → 0: 6 × 400
    expect(slow.target()).toBeGreaterThanOrEqual(2400);
    expect(slow.target()).toBeLessThan(3000);

    const awful = new Leadership(1000, 200, () => {});
    awful.observeRtt(60_000);
    expect(awful.target()).toBe(20_000);
  });

  it('sets the election timeout of the running node at once when a round trip calls for more', () => {
    const lines: string[] = [];
    const l = new Leadership(1000, 200, (s) => lines.push(s));
    const raft = new RaftNode({
      id: 'a',
      members: ['a', 'b', 'c'],
      electionTimeoutMs: 1000,
      heartbeatIntervalMs: 200,
      clock: { now: () => 0, setTimer: () => () => {} },
      transport: { send: () => {} },
      random: () => 0,
      persist: () => {},
    });
    l.start(raft);
    try {
      l.observeRtt(500);
      expect(raft.electionTimeoutMs).toBeGreaterThanOrEqual(6 * 500);
      expect(lines.at(-1)).toMatch(/^election timeout \d+ ms \(round trip 500 ms/);
      expect(l.stats().srttMs).toBe(500);
    } finally {
      l.stop();
    }
  });
});
