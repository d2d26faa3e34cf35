// Steady leadership on busy machines and WAN links. Two causes of needless elections, two remedies:
// - A heartbeat that crossed a slow link, or waited behind a busy main thread, arrives after a
//   timeout fixed for a LAN. The election timeout adapts: T = max(configured, RTT_FACTOR × the
//   smoothed round trip of election messages (TCP's srtt + 4 rttvar), LAG_FACTOR × the event loop's
//   recent worst delay), capped at MAX_TIMEOUT_MS. It grows at once and shrinks slowly.
// - A follower whose own event loop stalled finds its election timer overdue while the leader's
//   heartbeats sit unread in its socket buffers (Node runs due timers before it polls for I/O). The
//   timer therefore fires through setImmediate (after the poll phase, so pending heartbeats reset it
//   first), and a timer that fired late by more than the timeout itself is re-armed once: the
//   silence it measured was this peer's own stall, not the leader's.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { RaftClock, RaftNode } from './raft.ts';

const RTT_FACTOR = 6;
const LAG_FACTOR = 4;
const MAX_TIMEOUT_MS = 20_000;
const ADAPT_EVERY_MS = 2000;

export interface LeadershipStats {
  /** The election timeout in force now (ms). */
  electionTimeoutMs: number;
  /** Smoothed round trip of election messages, and its deviation (ms; null before any). */
  srttMs: number | null;
  rttVarMs: number | null;
  /** The event loop's worst delay since the last adaptation, and since start (ms). */
  recentLagMs: number;
  maxLagMs: number;
  /** Election timers that fired late by more than a timeout and were re-armed. */
  starvedTimers: number;
}

export class Leadership {
  private readonly configuredMs: number;
  private readonly heartbeatMs: number;
  private readonly log: (line: string) => void;
  private srtt: number | null = null;
  private rttVar: number | null = null;
  private histogram: ReturnType<typeof monitorEventLoopDelay> | null = null;
  private recentLag = 0;
  private maxLag = 0;
  private starved = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private raft: RaftNode | null = null;
  private lastLogged = 0;

  constructor(configuredMs: number, heartbeatMs: number, log: (line: string) => void) {
    this.configuredMs = configuredMs;
    this.heartbeatMs = heartbeatMs;
    this.log = log;
  }

  /** Watch the event loop and adapt `raft`'s election timeout from now on. */
  start(raft: RaftNode): void {
    this.raft = raft;
    this.histogram = monitorEventLoopDelay({ resolution: 10 });
    this.histogram.enable();
    this.timer = setInterval(() => this.adapt(), ADAPT_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.histogram?.disable();
    this.histogram = null;
    this.raft = null;
  }

  /** A round trip of an election message (request sent → ack received), in ms. */
  observeRtt(ms: number): void {
    if (this.srtt === null || this.rttVar === null) {
      this.srtt = ms;
      this.rttVar = ms / 2;
    } else {
      this.rttVar = 0.75 * this.rttVar + 0.25 * Math.abs(this.srtt - ms);
      this.srtt = 0.875 * this.srtt + 0.125 * ms;
    }
    // A round trip far above the timeout in force cannot wait for the next adaptation.
    if (this.raft !== null && RTT_FACTOR * ms > this.raft.electionTimeoutMs) this.adapt();
  }

  /** The election timeout these measurements call for. */
  target(): number {
    const rto = this.srtt === null || this.rttVar === null ? 0 : this.srtt + 4 * this.rttVar;
    return Math.min(MAX_TIMEOUT_MS, Math.max(this.configuredMs, RTT_FACTOR * rto, LAG_FACTOR * this.recentLag));
  }

  private adapt(): void {
    const h = this.histogram;
    if (h !== null) {
      const lag = h.max / 1e6;
      h.reset();
      // The recent lag decays, so one long stall does not keep the timeout up for good.
      this.recentLag = Math.max(lag, 0.8 * this.recentLag);
      this.maxLag = Math.max(this.maxLag, lag);
    }
    const raft = this.raft;
    if (raft === null) return;
    const now = raft.electionTimeoutMs;
    const want = Math.round(this.target());
    // Up at once; down by at most a quarter per step, so timeouts do not swing with every sample.
    const next = want >= now ? want : Math.max(want, Math.round(now * 0.75));
    if (Math.abs(next - now) < 0.05 * now) return;
    try {
      raft.setElectionTimeout(next);
    } catch {
      return; // below twice the heartbeat interval: keep the one in force
    }
    if (next > now || Date.now() - this.lastLogged > 60_000) {
      this.lastLogged = Date.now();
      this.log(`election timeout ${next} ms (round trip ${this.srtt?.toFixed(0) ?? '?'} ms, event-loop lag ${this.recentLag.toFixed(0)} ms)`);
    }
  }

  /** The election's clock: timers fire after pending I/O, and an election timer overdue by more
   *  than its own length (this peer stalled) is re-armed once; heartbeat timers never wait. */
  clock(): RaftClock {
    return {
      now: () => Date.now(),
      setTimer: (ms, fn) => {
        let cancelled = false;
        let t: ReturnType<typeof setTimeout> | undefined;
        let imm: ReturnType<typeof setImmediate> | undefined;
        const arm = (wait: number, rearmed: boolean) => {
          const due = Date.now() + wait;
          t = setTimeout(() => {
            const late = Date.now() - due;
            imm = setImmediate(() => {
              if (cancelled) return;
              if (!rearmed && wait > this.heartbeatMs && late > wait) {
                this.starved++;
                arm(wait, true);
                return;
              }
              fn();
            });
          }, wait);
        };
        arm(ms, false);
        return () => {
          cancelled = true;
          clearTimeout(t);
          if (imm !== undefined) clearImmediate(imm);
        };
      },
    };
  }

  /** Measure the event loop's worst delay from now until the returned function is called (ms). */
  static lagProbe(): () => number {
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    return () => {
      h.disable();
      return h.max / 1e6;
    };
  }

  stats(): LeadershipStats {
    return {
      electionTimeoutMs: this.raft?.electionTimeoutMs ?? this.configuredMs,
      srttMs: this.srtt,
      rttVarMs: this.rttVar,
      recentLagMs: this.recentLag,
      maxLagMs: this.maxLag,
      starvedTimers: this.starved,
    };
  }
}
