// A deterministic discrete-event network for RaftNode tests: virtual time, seeded randomness,
// per-message random delays, drops and duplicates, crashes and restarts with persisted state,
// and partitions. After every event it checks "at most one leader per term".
import { RaftNode, type RaftPersistentState, type RaftStatus } from '../../../src/main/federation/raft.ts';
import { raftMessageSchema, type RaftMessage } from '../../../src/shared/messages.ts';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ev {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

class Heap {
  private readonly a: Ev[] = [];
  get size(): number {
    return this.a.length;
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i]!;
    const y = this.a[j]!;
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
  push(e: Ev): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  peek(): Ev | undefined {
    return this.a[0];
  }
  pop(): Ev | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

export interface SimOptions {
  n: number;
  seed: number;
  dropRate?: number;
  duplicateRate?: number;
  minDelay?: number;
  maxDelay?: number;
  electionTimeoutMs?: number;
  capacities?: number[];
  committedRounds?: number[];
  /** Raft pre-vote at every node (default false). */
  preVote?: boolean;
  /** Validate every message against the zod schema (slower). */
  validate?: boolean;
}

export interface Election {
  time: number;
  term: number;
  id: string;
}

export class Sim {
  time = 0;
  readonly ids: string[];
  readonly rng: () => number;
  readonly nodes = new Map<string, RaftNode>();
  readonly alive = new Set<string>();
  readonly disk = new Map<string, RaftPersistentState>();
  readonly leadersByTerm = new Map<number, string>();
  readonly elections: Election[] = [];
  readonly violations: string[] = [];
  readonly committedRounds: number[];
  dropRate: number;
  duplicateRate: number;
  minDelay: number;
  maxDelay: number;
  messages = 0;
  private seq = 0;
  private readonly queue = new Heap();
  private group = new Map<string, number>();
  private generation = new Map<string, number>();
  private readonly options: SimOptions;

  constructor(options: SimOptions) {
    this.options = options;
    this.rng = mulberry32(options.seed);
    this.ids = Array.from({ length: options.n }, (_, i) => `n${i}`);
    this.dropRate = options.dropRate ?? 0;
    this.duplicateRate = options.duplicateRate ?? 0;
    this.minDelay = options.minDelay ?? 1;
    this.maxDelay = options.maxDelay ?? 10;
    this.committedRounds = options.committedRounds ?? this.ids.map(() => 0);
    for (const id of this.ids) this.boot(id);
  }

  schedule(delay: number, fn: () => void): () => void {
    const ev: Ev = { at: this.time + Math.max(0, delay), seq: this.seq++, fn, cancelled: false };
    this.queue.push(ev);
    return () => {
      ev.cancelled = true;
    };
  }

  private boot(id: string): void {
    const gen = (this.generation.get(id) ?? 0) + 1;
    this.generation.set(id, gen);
    const index = this.ids.indexOf(id);
    const node = new RaftNode({
      id,
      members: this.ids,
      capacity: this.options.capacities?.[index] ?? 0,
      electionTimeoutMs: this.options.electionTimeoutMs ?? 100,
      committedRound: this.committedRounds[index] ?? 0,
      ...(this.options.preVote ? { preVote: true } : {}),
      initial: this.disk.get(id),
      clock: {
        now: () => this.time,
        setTimer: (ms, fn) =>
          this.schedule(ms, () => {
            if (this.generation.get(id) === gen && this.alive.has(id)) fn();
          }),
      },
      transport: { send: (to, msg) => this.send(id, to, msg) },
      random: mulberry32(Math.floor(this.rng() * 2 ** 32)),
      persist: (state) => {
        this.disk.set(id, { ...state });
      },
      onChange: (s) => this.onChange(s),
      onError: (err) => this.violations.push(`${id}: ${err.message}`),
    });
    this.nodes.set(id, node);
    this.alive.add(id);
    node.start();
  }

  private onChange(s: RaftStatus): void {
    if (s.role !== 'leader') return;
    this.elections.push({ time: this.time, term: s.term, id: s.id });
    const prev = this.leadersByTerm.get(s.term);
    if (prev !== undefined && prev !== s.id) this.violations.push(`term ${s.term} has two leaders: ${prev} and ${s.id}`);
    this.leadersByTerm.set(s.term, s.id);
  }

  private connected(a: string, b: string): boolean {
    return this.alive.has(a) && this.alive.has(b) && (this.group.get(a) ?? 0) === (this.group.get(b) ?? 0);
  }

  private send(from: string, to: string, msg: RaftMessage): void {
    this.messages++;
    if (!this.connected(from, to)) return;
    const copies = this.rng() < this.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.rng() < this.dropRate) continue;
      const delay = this.minDelay + this.rng() * (this.maxDelay - this.minDelay);
      const wire = JSON.stringify(msg);
      this.schedule(delay, () => {
        if (!this.connected(from, to)) return;
        const parsed: RaftMessage = this.options.validate ? raftMessageSchema.parse(JSON.parse(wire)) : (JSON.parse(wire) as RaftMessage);
        this.nodes.get(to)!.receive(from, parsed);
      });
    }
  }

  /** Check the invariant over the live nodes' current state (besides the onChange record). */
  private check(): void {
    for (const id of this.alive) {
      const node = this.nodes.get(id)!;
      if (node.role !== 'leader') continue;
      const prev = this.leadersByTerm.get(node.term);
      if (prev !== undefined && prev !== id) this.violations.push(`term ${node.term} has two leaders: ${prev} and ${id}`);
    }
  }

  runFor(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      const next = this.queue.peek();
      if (next === undefined || next.at > end) break;
      this.queue.pop();
      if (next.cancelled) continue;
      this.time = next.at;
      next.fn();
      this.check();
    }
    this.time = end;
  }

  crash(id: string): void {
    this.nodes.get(id)!.stop();
    this.alive.delete(id);
  }

  restart(id: string): void {
    if (this.alive.has(id)) return;
    this.boot(id);
  }

  partition(groups: string[][]): void {
    this.group = new Map();
    groups.forEach((g, i) => {
      for (const id of g) this.group.set(id, i);
    });
  }

  heal(): void {
    this.group = new Map();
  }

  liveLeaders(): RaftNode[] {
    return [...this.alive].map((id) => this.nodes.get(id)!).filter((n) => n.role === 'leader');
  }

  /** One live leader that every live node follows in the same term, or null. */
  stableLeader(): RaftNode | null {
    const leaders = this.liveLeaders();
    if (leaders.length !== 1) return null;
    const leader = leaders[0]!;
    for (const id of this.alive) {
      const n = this.nodes.get(id)!;
      if (n.term !== leader.term || n.leaderId !== leader.id) return null;
    }
    return leader;
  }
}
