import { describe, expect, it } from 'vitest';
import { RaftNode, electionTimeoutRange, type RaftPersistentState } from '../../../src/main/federation/raft.ts';
import type { RaftMessage } from '../../../src/shared/messages.ts';
import { Sim, mulberry32 } from './raft_sim.ts';

const T = 100; // virtual ms

/** Node a of {a, b, c} with pre-vote, on a manual clock, recording what it sends. */
function nodeA(random: number) {
  const clock = new ManualClock();
  const sent: [string, RaftMessage][] = [];
  const node = new RaftNode({ id: 'a', members: ['a', 'b', 'c'], electionTimeoutMs: T, preVote: true, clock, transport: { send: (to, m) => sent.push([to, m]) }, random: () => random, persist: () => {} });
  return { node, clock, sent };
}

describe('electionTimeoutRange', () => {
  it('gives higher capacity an earlier range within [T, 2.5T]', () => {
    const [lo0, hi0] = electionTimeoutRange(T, 0);
    const [lo1, hi1] = electionTimeoutRange(T, 1);
    const [lo9, hi9] = electionTimeoutRange(T, 9);
    expect([lo0, hi0]).toEqual([200, 250]);
    expect(lo1).toBeLessThan(lo0);
    expect(lo9).toBeLessThan(lo1);
    expect(hi9).toBeLessThan(hi0);
    expect(lo9).toBeGreaterThanOrEqual(T);
    expect(electionTimeoutRange(T, -5)).toEqual([200, 250]);
    expect(electionTimeoutRange(T, Number.NaN)).toEqual([200, 250]);
  });
});

describe('Raft election in a simulated network', () => {
  for (const n of [3, 5]) {
    it(`${n} nodes: at most one leader per term under delays, drops and duplicates, and a leader emerges (100 seeds)`, () => {
      for (let seed = 1; seed <= 100; seed++) {
        const sim = new Sim({ n, seed, dropRate: 0.15, duplicateRate: 0.05, minDelay: 1, maxDelay: 40, validate: seed <= 10 });
        sim.runFor(5_000);
        // Calm the network so the invariant check is joined by a liveness check.
        sim.dropRate = 0;
        sim.maxDelay = 10;
        sim.runFor(3_000);
        expect(sim.violations, `seed ${seed}`).toEqual([]);
        expect(sim.stableLeader(), `seed ${seed}: no stable leader`).not.toBeNull();
        expect(sim.elections.length).toBeGreaterThan(0);
      }
    });
  }

  it('5 nodes with crashes, restarts and partitions: never two leaders in a term (60 seeds)', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const sim = new Sim({ n: 5, seed, dropRate: 0.1, duplicateRate: 0.05, minDelay: 1, maxDelay: 30 });
      const chaos = mulberry32(seed * 7919);
      for (let step = 0; step < 150; step++) {
        const r = chaos();
        const id = sim.ids[Math.floor(chaos() * sim.ids.length)]!;
        if (r < 0.15) sim.crash(id);
        else if (r < 0.35) sim.restart(id);
        else if (r < 0.55) {
          // A quick reboot, often in the middle of an election: it must remember its vote.
          sim.crash(id);
          sim.runFor(chaos() * 5);
          sim.restart(id);
        }
        else if (r < 0.7) {
          const shuffled = [...sim.ids].sort(() => chaos() - 0.5);
          const cut = 1 + Math.floor(chaos() * 4);
          sim.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        } else if (r < 0.85) sim.heal();
        sim.runFor(chaos() * 300);
      }
      for (const id of sim.ids) sim.restart(id);
      sim.heal();
      sim.dropRate = 0;
      sim.runFor(3_000);
      expect(sim.violations, `seed ${seed}`).toEqual([]);
      expect(sim.stableLeader(), `seed ${seed}`).not.toBeNull();
    }
  });

  it('elects a new leader with a higher term when the leader crashes', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const sim = new Sim({ n: 5, seed, maxDelay: 10 });
      sim.runFor(2_000);
      const first = sim.stableLeader();
      expect(first, `seed ${seed}`).not.toBeNull();
      const oldTerm = first!.term;
      sim.crash(first!.id);
      sim.runFor(2_000);
      const second = sim.stableLeader();
      expect(second, `seed ${seed}`).not.toBeNull();
      expect(second!.id).not.toBe(first!.id);
      expect(second!.term).toBeGreaterThan(oldTerm);
      // The crashed leader comes back as a follower of the new leader.
      sim.restart(first!.id);
      sim.runFor(1_000);
      expect(sim.stableLeader()?.id).toBe(second!.id);
      expect(sim.violations).toEqual([]);
    }
  });

  it('a minority partition elects nobody, its old leader steps down, the majority elects one; healing leaves one leader', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const sim = new Sim({ n: 5, seed, maxDelay: 10 });
      sim.runFor(2_000);
      const leader = sim.stableLeader()!;
      expect(leader).not.toBeNull();
      // Put the current leader in the minority, to exercise step-down too.
      const others = sim.ids.filter((id) => id !== leader.id);
      const minority = [leader.id, others[0]!];
      const majority = others.slice(1);
      const cutAt = sim.time;
      sim.partition([minority, majority]);
      sim.runFor(3_000);
      const electedInMinority = sim.elections.filter((e) => e.time > cutAt && minority.includes(e.id));
      expect(electedInMinority, `seed ${seed}`).toEqual([]);
      for (const id of minority) expect(sim.nodes.get(id)!.role).not.toBe('leader');
      const majorityLeaders = majority.map((id) => sim.nodes.get(id)!).filter((n) => n.role === 'leader');
      expect(majorityLeaders).toHaveLength(1);
      sim.heal();
      sim.runFor(3_000);
      expect(sim.stableLeader(), `seed ${seed}`).not.toBeNull();
      expect(sim.violations).toEqual([]);
    }
  });

  it('a minority alone (3 of 5 down) never elects anyone', () => {
    const sim = new Sim({ n: 5, seed: 3, maxDelay: 10 });
    sim.crash('n2');
    sim.crash('n3');
    sim.crash('n4');
    sim.runFor(5_000);
    expect(sim.elections).toEqual([]);
    expect(sim.nodes.get('n0')!.term).toBeGreaterThan(1); // they keep trying
  });

  it('a candidate behind on committed rounds never wins against voters with newer ones', () => {
    let winnersChecked = 0;
    for (let seed = 1; seed <= 40; seed++) {
      // n0 is stale (round 3) but has by far the shortest timeouts.
      const sim = new Sim({ n: 5, seed, maxDelay: 10, capacities: [50, 0, 0, 0, 0], committedRounds: [3, 3, 5, 5, 5] });
      sim.runFor(3_000);
      for (const e of sim.elections) {
        expect(['n2', 'n3', 'n4'], `seed ${seed}`).toContain(e.id);
        winnersChecked++;
      }
      expect(sim.stableLeader()?.committedRound).toBe(5);
      expect(sim.violations).toEqual([]);
    }
    expect(winnersChecked).toBeGreaterThanOrEqual(40);
  });

  it('higher capacity wins most elections', () => {
    const wins = new Map<string, number>();
    const seeds = 200;
    for (let seed = 1; seed <= seeds; seed++) {
      const sim = new Sim({ n: 3, seed, maxDelay: 10, capacities: [0, 1, 3] });
      sim.runFor(1_500);
      const first = sim.elections[0]!;
      wins.set(first.id, (wins.get(first.id) ?? 0) + 1);
      // And after the leader crashes, the most capable survivor tends to take over.
      expect(sim.violations).toEqual([]);
    }
    expect(wins.get('n2') ?? 0).toBeGreaterThan(seeds * 0.6);
    expect(wins.get('n2') ?? 0).toBeGreaterThan(wins.get('n1') ?? 0);
    expect(wins.get('n1') ?? 0).toBeGreaterThanOrEqual(wins.get('n0') ?? 0);
  });

  it('followers learn the leader\'s committed round, and a new leader carries the newest round forward', () => {
    const sim = new Sim({ n: 3, seed: 11, maxDelay: 10 });
    sim.runFor(2_000);
    const leader = sim.stableLeader()!;
    const learned: number[] = [];
    for (const id of sim.ids) {
      const n = sim.nodes.get(id)!;
      n.setCommittedRound(7); // a round committed at every peer
      if (id !== leader.id) learned.push(n.status().leaderCommittedRound);
    }
    sim.runFor(200);
    for (const id of sim.ids) {
      if (id === leader.id) continue;
      expect(sim.nodes.get(id)!.status().leaderCommittedRound).toBe(7);
    }
    expect(learned).toEqual([0, 0]);
    expect([...leader.followerCommittedRounds().values()]).toEqual([7, 7]);
  });
});

// ---- unit tests with a hand-driven clock ------------------------------------------------------

class ManualClock {
  time = 0;
  private timers: { at: number; fn: () => void; live: boolean }[] = [];
  now = (): number => this.time;
  setTimer = (ms: number, fn: () => void): (() => void) => {
    const t = { at: this.time + ms, fn, live: true };
    this.timers.push(t);
    return () => {
      t.live = false;
    };
  };
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.live && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (due === undefined) break;
      due.live = false;
      this.time = due.at;
      due.fn();
    }
    this.time = end;
  }
}

function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

describe('RaftNode durability and membership', () => {
  it('persists {term, votedFor} before the vote leaves, and sends nothing if persisting fails', async () => {
    const clock = new ManualClock();
    const sent: [string, RaftMessage][] = [];
    const order: string[] = [];
    let release: (() => void) | null = null;
    let fail = false;
    const node = new RaftNode({
      id: 'a',
      members: ['a', 'b', 'c'],
      electionTimeoutMs: T,
      clock,
      transport: { send: (to, msg) => { order.push(`send ${msg.type}`); sent.push([to, msg]); } },
      random: () => 0.5,
      persist: (s) => {
        order.push(`persist ${s.term} ${s.votedFor}`);
        return new Promise<void>((resolve, reject) => {
          release = () => (fail ? reject(new Error('disk full\nmore')) : resolve());
        });
      },
      onError: (e) => order.push(`error ${e.message}`),
    });
    node.start();
    node.receive('b', { type: 'vote-request', term: 1, committedRound: 0 });
    await flush();
    expect(sent).toEqual([]); // waiting for the disk
    expect(order).toEqual(['persist 1 null']);
    release!();
    await flush();
    release!();
    await flush();
    expect(order).toEqual(['persist 1 null', 'persist 1 b', 'send vote-response']);
    expect(sent).toEqual([['b', { type: 'vote-response', term: 1, granted: true }]]);

    // A second candidate in the same term is refused.
    node.receive('c', { type: 'vote-request', term: 1, committedRound: 0 });
    await flush();
    expect(sent.at(-1)).toEqual(['c', { type: 'vote-response', term: 1, granted: false }]);

    // A failing disk: the vote is never sent.
    fail = true;
    sent.length = 0;
    node.receive('c', { type: 'vote-request', term: 2, committedRound: 0 });
    await flush();
    release!();
    await flush();
    await flush();
    expect(sent.filter(([, m]) => m.type === 'vote-response' && m.granted)).toEqual([]);
    expect(order.some((l) => l.startsWith('error cannot persist election state: disk full'))).toBe(true);
    node.stop();
  });

  it('a restarted node keeps its vote for the term', () => {
    const disk: RaftPersistentState[] = [];
    const sent: RaftMessage[] = [];
    const make = (initial?: RaftPersistentState): RaftNode =>
      new RaftNode({
        id: 'a',
        members: ['a', 'b', 'c'],
        electionTimeoutMs: T,
        initial,
        clock: new ManualClock(),
        transport: { send: (_to, msg) => sent.push(msg) },
        random: () => 0.5,
        persist: (s) => {
          disk.push({ ...s });
        },
      });
    const first = make();
    first.start();
    first.receive('b', { type: 'vote-request', term: 4, committedRound: 0 });
    expect(sent.at(-1)).toEqual({ type: 'vote-response', term: 4, granted: true });
    first.stop();
    const second = make(disk.at(-1));
    second.start();
    expect(second.term).toBe(4);
    second.receive('c', { type: 'vote-request', term: 4, committedRound: 0 });
    expect(sent.at(-1)).toEqual({ type: 'vote-response', term: 4, granted: false });
    second.receive('b', { type: 'vote-request', term: 4, committedRound: 0 });
    expect(sent.at(-1)).toEqual({ type: 'vote-response', term: 4, granted: true });
  });

  it('a single-member federation elects itself', () => {
    const clock = new ManualClock();
    const node = new RaftNode({
      id: 'solo',
      members: ['solo'],
      electionTimeoutMs: T,
      clock,
      transport: { send: () => {} },
      random: () => 0,
      persist: () => {},
    });
    node.start();
    clock.advance(3 * T);
    expect(node.role).toBe('leader');
    expect(node.term).toBe(1);
  });

  it('the leader replicates membership changes; a removed node stops standing for election', () => {
    const sim = new Sim({ n: 3, seed: 5, maxDelay: 10 });
    sim.runFor(2_000);
    const leader = sim.stableLeader()!;
    const removed = sim.ids.find((id) => id !== leader.id)!;
    const kept = sim.ids.filter((id) => id !== removed);
    expect(sim.nodes.get(removed)!.setMembers(kept)).toBe(false); // only the leader may
    expect(leader.setMembers(kept)).toBe(true);
    sim.runFor(200);
    for (const id of sim.ids) {
      const st = sim.nodes.get(id)!.status();
      expect(st.membershipVersion).toBe(1);
      expect(st.members).toEqual(kept);
    }
    // Cut the removed node off: it never becomes a candidate (no term growth).
    const termBefore = sim.nodes.get(removed)!.term;
    sim.partition([[removed], kept]);
    sim.runFor(3_000);
    expect(sim.nodes.get(removed)!.term).toBe(termBefore);
    expect(sim.nodes.get(removed)!.role).toBe('follower');
    // The two remaining members are a majority of the new list of two.
    const pairLeaders = kept.map((id) => sim.nodes.get(id)!).filter((n) => n.role === 'leader');
    expect(pairLeaders).toHaveLength(1);
    expect(sim.violations).toEqual([]);
  });

  it('a stale leader learns a higher term from a heartbeat response and steps down', () => {
    const clock = new ManualClock();
    const sent: [string, RaftMessage][] = [];
    const node = new RaftNode({
      id: 'a',
      members: ['a', 'b', 'c'],
      electionTimeoutMs: T,
      clock,
      transport: { send: (to, m) => sent.push([to, m]) },
      random: () => 0,
      persist: () => {},
    });
    node.start();
    clock.advance(2.5 * T);
    expect(node.role).toBe('candidate');
    node.receive('b', { type: 'vote-response', term: 1, granted: true });
    expect(node.role).toBe('leader');
    expect(sent.filter(([, m]) => m.type === 'heartbeat')).toHaveLength(2);
    node.receive('c', { type: 'heartbeat-response', term: 3, ok: false, committedRound: 0 });
    expect(node.role).toBe('follower');
    expect(node.term).toBe(3);
    expect(node.leaderId).toBeNull();
  });
  it('a member added by setMembers counts as heard when added: no needless re-election on the first join', () => {
    const clock = new ManualClock();
    const sent: [string, RaftMessage][] = [];
    const node = new RaftNode({
      id: 'solo',
      members: ['solo'],
      electionTimeoutMs: T,
      clock,
      transport: { send: (to, m) => sent.push([to, m]) },
      random: () => 0,
      persist: () => {},
    });
    node.start();
    clock.advance(3 * T);
    expect(node.role).toBe('leader');
    clock.advance(10 * T); // leading alone for a long time
    expect(node.setMembers(['solo', 'b'])).toBe(true);
    expect(node.role).toBe('leader');
    expect(sent.some(([to, m]) => to === 'b' && m.type === 'heartbeat')).toBe(true);
    // b answers within the election timeout: the leader stays.
    clock.advance(T / 2);
    node.receive('b', { type: 'heartbeat-response', term: node.term, ok: true, committedRound: 0 });
    clock.advance(T / 2);
    expect(node.role).toBe('leader');
    expect(node.term).toBe(1);
    // b falls silent: check-quorum still deposes the leader one timeout later.
    clock.advance(2 * T);
    expect(node.role).toBe('follower');
  });

  it('votes compare (term, round) of the newest staged or committed round, term first', () => {
    const sent: [string, RaftMessage][] = [];
    const make = (id: string) =>
      new RaftNode({
        id,
        members: ['a', 'b', 'c', 'd', 'e', 'f'],
        electionTimeoutMs: T,
        committedRound: 4,
        committedTerm: 2,
        stagedRound: 5,
        stagedTerm: 3,
        clock: new ManualClock(),
        transport: { send: (to, m) => sent.push([to, m]) },
        random: () => 0.5,
        persist: () => {},
      });
    const node = make('a');
    node.start();
    expect(node.lastEntry()).toEqual({ term: 3, round: 5 });
    const answer = () => (sent.at(-1)![1] as { granted: boolean }).granted;
    // Committed round 5 but staged in an older term (a stranded aggregator's round): refused.
    node.receive('b', { type: 'vote-request', term: 10, committedRound: 5, lastRound: 5, lastTerm: 2 });
    expect(answer()).toBe(false);
    // Behind by a round in the same term: refused.
    node.receive('c', { type: 'vote-request', term: 11, committedRound: 4, lastRound: 4, lastTerm: 3 });
    expect(answer()).toBe(false);
    // Only committed rounds, no term (an old peer): refused, being behind.
    node.receive('d', { type: 'vote-request', term: 12, committedRound: 5 });
    expect(answer()).toBe(false);
    // The same staged round: granted; a newer term with fewer rounds: granted too (Raft's rule).
    node.receive('e', { type: 'vote-request', term: 13, committedRound: 4, lastRound: 5, lastTerm: 3 });
    expect(answer()).toBe(true);
    node.receive('f', { type: 'vote-request', term: 14, committedRound: 4, lastRound: 4, lastTerm: 4 });
    expect(answer()).toBe(true);
    // Promoting the staged round keeps the last entry; a committed newer round moves it.
    node.setCommittedRound(5, 'ab'.repeat(32), 3);
    expect(node.lastEntry()).toEqual({ term: 3, round: 5 });
    node.setCommittedRound(6, 'cd'.repeat(32), 14);
    expect(node.lastEntry()).toEqual({ term: 14, round: 6 });
  });

  it('heartbeats carry the committed round with its sha256 and term', () => {
    const sim = new Sim({ n: 3, seed: 12, maxDelay: 10 });
    sim.runFor(2_000);
    const leader = sim.stableLeader()!;
    const heard: unknown[] = [];
    const follower = sim.nodes.get(sim.ids.find((id) => id !== leader.id)!)!;
    (follower as unknown as { config: { onLeaderCommittedRound: unknown } }).config.onLeaderCommittedRound = (...args: unknown[]) => heard.push(args);
    leader.setCommittedRound(3, 'ef'.repeat(32), leader.term);
    sim.runFor(200);
    expect(heard).toEqual([[3, leader.id, 'ef'.repeat(32), leader.term]]);
  });
});

describe('Raft pre-vote', () => {
  it('a member cut off and back neither raises its term nor deposes the leader (30 seeds); without pre-vote it does', () => {
    let disruptedWithout = 0;
    for (let seed = 1; seed <= 30; seed++) {
      for (const preVote of [true, false]) {
        const sim = new Sim({ n: 5, seed, maxDelay: 10, preVote });
        sim.runFor(2_000);
        const leader = sim.stableLeader()!;
        expect(leader, `seed ${seed}`).not.toBeNull();
        const term = leader.term;
        const lone = sim.ids.find((id) => id !== leader.id)!;
        sim.partition([[lone], sim.ids.filter((id) => id !== lone)]);
        sim.runFor(3_000);
        if (preVote) {
          expect(sim.nodes.get(lone)!.term, `seed ${seed}`).toBe(term);
          expect(sim.nodes.get(lone)!.role).toBe('follower');
        }
        sim.heal();
        sim.runFor(2_000);
        const now = sim.stableLeader();
        expect(now, `seed ${seed}`).not.toBeNull();
        if (preVote) {
          expect(now!.id, `seed ${seed}`).toBe(leader.id);
          expect(now!.term, `seed ${seed}`).toBe(term);
          expect(sim.elections.filter((e) => e.term > term)).toEqual([]);
        } else if (now!.term > term) disruptedWithout++;
        expect(sim.violations).toEqual([]);
      }
    }
    expect(disruptedWithout).toBeGreaterThan(0);
  });

  it('still elects a leader when the leader crashes, and never two per term under chaos (40 seeds)', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const sim = new Sim({ n: 5, seed, dropRate: 0.1, duplicateRate: 0.05, minDelay: 1, maxDelay: 30, preVote: true, validate: seed <= 5 });
      const chaos = mulberry32(seed * 104729);
      for (let step = 0; step < 100; step++) {
        const r = chaos();
        const id = sim.ids[Math.floor(chaos() * sim.ids.length)]!;
        if (r < 0.2) sim.crash(id);
        else if (r < 0.45) sim.restart(id);
        else if (r < 0.6) {
          const shuffled = [...sim.ids].sort(() => chaos() - 0.5);
          const cut = 1 + Math.floor(chaos() * 4);
          sim.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
        } else if (r < 0.8) sim.heal();
        sim.runFor(chaos() * 300);
      }
      for (const id of sim.ids) sim.restart(id);
      sim.heal();
      sim.dropRate = 0;
      sim.runFor(3_000);
      expect(sim.violations, `seed ${seed}`).toEqual([]);
      expect(sim.stableLeader(), `seed ${seed}`).not.toBeNull();
      const first = sim.stableLeader()!;
      sim.crash(first.id);
      sim.runFor(3_000);
      const second = sim.stableLeader();
      expect(second, `seed ${seed}: no leader after the crash`).not.toBeNull();
      expect(second!.term).toBeGreaterThan(first.term);
    }
  });

  it('a longer election timeout set while running keeps a silent leader\'s follower waiting that long', () => {
    const { node, clock, sent } = nodeA(0);
    node.start();
    node.receive('b', { type: 'heartbeat', term: 2, committedRound: 0, members: ['a', 'b', 'c'], membershipVersion: 0 });
    node.setElectionTimeout(10 * T); // as the peer does on measuring a slow link
    expect(node.electionTimeoutMs).toBe(10 * T);
    node.receive('b', { type: 'heartbeat', term: 2, committedRound: 0, members: ['a', 'b', 'c'], membershipVersion: 0 });
    clock.advance(9 * T);
    expect(sent.filter(([, m]) => m.type === 'vote-request')).toHaveLength(0);
    // A voter that heard the leader within the new timeout refuses a pre-vote.
    node.receive('c', { type: 'vote-request', term: 3, committedRound: 0, lastRound: 0, lastTerm: 0, preVote: true });
    expect(sent.at(-1)).toEqual(['c', { type: 'vote-response', term: 2, granted: false, preVote: true }]);
    clock.advance(12 * T);
    expect(sent.filter(([, m]) => m.type === 'vote-request' && m.preVote === true).length).toBeGreaterThan(0);
    expect(() => node.setElectionTimeout(T / 10)).toThrow(/twice the heartbeat interval/);
  });

  it('a voter that hears a leader refuses a pre-vote, and a pre-vote changes no term', () => {
    const { node, clock, sent } = nodeA(0.5);
    node.start();
    node.receive('b', { type: 'heartbeat', term: 2, committedRound: 0, members: ['a', 'b', 'c'], membershipVersion: 0 });
    expect(node.leaderId).toBe('b');
    node.receive('c', { type: 'vote-request', term: 3, committedRound: 0, lastRound: 0, lastTerm: 0, preVote: true });
    expect(sent.at(-1)).toEqual(['c', { type: 'vote-response', term: 2, granted: false, preVote: true }]);
    expect(node.term).toBe(2);
    // No leader heard for an election timeout: yes, still without a term change.
    clock.time += 1.1 * T;
    node.receive('c', { type: 'vote-request', term: 3, committedRound: 0, lastRound: 0, lastTerm: 0, preVote: true });
    expect(sent.at(-1)).toEqual(['c', { type: 'vote-response', term: 3, granted: true, preVote: true }]);
    expect(node.term).toBe(2);
    expect(node.leaderId).toBe('b');
    // Its own timeout: a pre-vote first (term unchanged), the election only after a majority said yes.
    sent.length = 0;
    clock.advance(3 * T);
    expect(node.term).toBe(2);
    expect(node.role).toBe('follower');
    const asked = sent.filter(([, m]) => m.type === 'vote-request');
    expect(asked.map(([to]) => to).sort()).toEqual(['b', 'c']);
    expect(asked[0]![1]).toMatchObject({ term: 3, preVote: true });
    node.receive('c', { type: 'vote-response', term: 3, granted: true, preVote: true });
    expect(node.role).toBe('candidate');
    expect(node.term).toBe(3);
  });
});
