// Aggregator election, Raft-style (leader election only, no log replication).
//
// Safety rules, as in Raft: terms only grow; a node casts at most one vote per term and persists
// {term, votedFor} before the vote leaves the node; a candidate needs votes from a majority of the
// current members; any message with a higher term turns the receiver into a follower of that term.
// Hence at most one leader per term. On top of Raft:
// - Rounds stand in for Raft's log. A member first *stages* a round's checkpoint (on the leader's
//   commit-request); the round is committed once a majority (leader included) staged it, and a
//   member promotes its staged copy to committed only when it learns that (heartbeat or announce).
//   Raft's last log entry is a node's newest round, staged or committed, with the term it was
//   staged in: candidates send (lastTerm, lastRound) and voters refuse a candidate behind their
//   own, compared term first, as in Raft. A committed round is staged or committed at a majority,
//   so every winning candidate holds it (and, holding it only staged, commits it again first).
// - Heartbeats carry the leader's newest committed round with its sha256 and term (followers learn
//   it) and the member list with a version; followers adopt a newer version. Change one member at
//   a time.
// - Pre-vote (optional): a node whose election timeout fires first asks "would you vote for me in
//   term + 1?" without raising its term; it stands only when a majority would. A voter says yes
//   only when it has not heard from a leader for an election timeout, so a member coming back from
//   a partition does not depose a working leader by raising the term.
// - Capacity preference: a node with more capacity draws its election timeout from an earlier range,
//   so it usually times out first and wins. It changes no safety rule.
// - Check quorum: a leader that has not heard from a majority for one election timeout steps down,
//   so a leader cut off in a minority stops acting as aggregator.
//
// Everything outside is injected (clock and timers, transport, randomness, persistence), so the node
// is deterministic in tests. Messages are trusted to have been schema-checked and their `from` to be
// authenticated by the transport (libp2p's remote peer id).
import type { Heartbeat, HeartbeatResponse, RaftMessage, VoteRequest, VoteResponse } from '../../shared/messages.ts';

export type RaftRole = 'follower' | 'candidate' | 'leader';

/** What must survive a restart, written before any vote or candidacy leaves the node. */
export interface RaftPersistentState {
  term: number;
  votedFor: string | null;
}

export interface RaftClock {
  now(): number;
  /** Call fn after ms; returns a function that cancels the timer. */
  setTimer(ms: number, fn: () => void): () => void;
}

export interface RaftTransport {
  /** Fire and forget; delivery may fail, be late, or be duplicated. */
  send(to: string, msg: RaftMessage): void;
}

export interface RaftStatus {
  id: string;
  role: RaftRole;
  term: number;
  leaderId: string | null;
  votedFor: string | null;
  committedRound: number;
  /** The newest committed round the current leader reported (own round when leader). */
  leaderCommittedRound: number;
  members: readonly string[];
  membershipVersion: number;
}

export interface RaftConfig {
  /** This node's id (its peer id string). */
  id: string;
  /** Initial members (this node included); replaced by newer lists from leaders. */
  members: readonly string[];
  membershipVersion?: number;
  /** Relative compute capacity ≥ 0 (0 = none preferred). Higher → earlier timeouts → likelier leader. */
  capacity?: number;
  /** Base election timeout T in ms (default 1000); timeouts fall in [T, 2.5 T]. */
  electionTimeoutMs?: number;
  /** Heartbeat interval (default T / 5; must be below T / 2). */
  heartbeatIntervalMs?: number;
  /** Step down as leader without a majority heard from within T (default true). */
  checkQuorum?: boolean;
  /** Newest round committed in this node's storage. */
  committedRound?: number;
  /** The term that round was committed in (default 0). */
  committedTerm?: number;
  /** sha256 of that round's checkpoint (heartbeats carry it). */
  committedSha256?: string;
  /** A staged round newer than the committed one, and its term (default: none). */
  stagedRound?: number;
  stagedTerm?: number;
  /** Ask a pre-vote round before standing (default false). */
  preVote?: boolean;
  /** State persisted by a previous run. */
  initial?: RaftPersistentState;
  clock: RaftClock;
  transport: RaftTransport;
  /** Uniform in [0, 1). */
  random: () => number;
  /** Store {term, votedFor} durably; the node waits for it before sending what depends on it. */
  persist: (state: RaftPersistentState) => void | Promise<void>;
  /** Role, term or leader changed. */
  onChange?: (status: RaftStatus) => void;
  /** The leader reported a newer committed round than seen before (with its sha256 and term). */
  onLeaderCommittedRound?: (round: number, leaderId: string, sha256?: string, term?: number) => void;
  /** A newer member list was adopted (or set, on the leader). */
  onMembersChange?: (members: readonly string[], version: number) => void;
  /** Persistence failed, or a safety invariant was violated by a peer; the node stays up. */
  onError?: (err: Error) => void;
}

/** The election-timeout range [lo, hi) of a node with this capacity, for base timeout T. */
export function electionTimeoutRange(baseMs: number, capacity: number): [number, number] {
  const c = Number.isFinite(capacity) && capacity > 0 ? capacity : 0;
  const lo = baseMs * (1 + 1 / (1 + c));
  return [lo, lo + baseMs / 2];
}

const DEPARTING_HEARTBEATS = 10;

function isPromise(x: unknown): x is Promise<unknown> {
  return typeof x === 'object' && x !== null && typeof (x as { then?: unknown }).then === 'function';
}

export class RaftNode {
  readonly id: string;
  private readonly config: RaftConfig;
  private baseTimeout: number;
  private readonly heartbeatInterval: number;
  private timeoutRange: [number, number];
  private readonly checkQuorum: boolean;

  private roleValue: RaftRole = 'follower';
  private termValue: number;
  private votedForValue: string | null;
  private leaderIdValue: string | null = null;
  private committedRoundValue: number;
  private committedTermValue: number;
  private committedShaValue: string | undefined;
  private stagedRoundValue = 0;
  private stagedTermValue = 0;
  private leaderCommittedRoundValue = 0;
  private readonly preVoteEnabled: boolean;
  /** Pre-vote in progress: the term it asks about and who said yes. */
  private preVoteTerm: number | null = null;
  private preVotes = new Set<string>();
  /** When this node last heard from a leader of its term (for refusing pre-votes). */
  private lastLeaderContact = -Infinity;
  private membersValue: string[];
  private membershipVersionValue: number;

  private votes = new Set<string>();
  /** Leader only: when each member last answered a heartbeat in this term. */
  private lastHeard = new Map<string, number>();
  /** Leader only: the committed round each follower reported. */
  private followerRounds = new Map<string, number>();
  private leaderSince = 0;
  /** Leader only: recently removed members, with how many more heartbeats they get. */
  private departing = new Map<string, number>();

  private cancelElectionTimer: (() => void) | null = null;
  private cancelHeartbeatTimer: (() => void) | null = null;
  private running = false;
  /** Pending persistence: sends queued behind it go out only after it succeeded. */
  private durable: Promise<boolean> | null = null;

  constructor(config: RaftConfig) {
    this.config = config;
    this.id = config.id;
    this.baseTimeout = config.electionTimeoutMs ?? 1000;
    this.heartbeatInterval = config.heartbeatIntervalMs ?? this.baseTimeout / 5;
    if (!(this.heartbeatInterval > 0 && this.heartbeatInterval < this.baseTimeout / 2)) {
      throw new Error('heartbeat interval must be positive and below half the election timeout');
    }
    this.timeoutRange = electionTimeoutRange(this.baseTimeout, config.capacity ?? 0);
    this.checkQuorum = config.checkQuorum ?? true;
    this.termValue = config.initial?.term ?? 0;
    this.votedForValue = config.initial?.votedFor ?? null;
    this.committedRoundValue = config.committedRound ?? 0;
    this.committedTermValue = config.committedTerm ?? 0;
    this.committedShaValue = config.committedSha256;
    if (config.stagedRound !== undefined && config.stagedRound > this.committedRoundValue) {
      this.stagedRoundValue = config.stagedRound;
      this.stagedTermValue = config.stagedTerm ?? 0;
    }
    this.preVoteEnabled = config.preVote ?? false;
    this.membersValue = [...new Set(config.members)];
    this.membershipVersionValue = config.membershipVersion ?? 0;
  }

  get role(): RaftRole {
    return this.roleValue;
  }
  get term(): number {
    return this.termValue;
  }
  get leaderId(): string | null {
    return this.leaderIdValue;
  }
  get isLeader(): boolean {
    return this.roleValue === 'leader';
  }
  get committedRound(): number {
    return this.committedRoundValue;
  }
  get members(): readonly string[] {
    return this.membersValue;
  }

  status(): RaftStatus {
    return {
      id: this.id,
      role: this.roleValue,
      term: this.termValue,
      leaderId: this.leaderIdValue,
      votedFor: this.votedForValue,
      committedRound: this.committedRoundValue,
      leaderCommittedRound: this.roleValue === 'leader' ? this.committedRoundValue : this.leaderCommittedRoundValue,
      members: [...this.membersValue],
      membershipVersion: this.membershipVersionValue,
    };
  }

  /** Leader only: the committed round each follower last reported. */
  followerCommittedRounds(): ReadonlyMap<string, number> {
    return new Map(this.followerRounds);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.resetElectionTimer();
  }

  /** Stop all timers and ignore further input (a crash, or shutdown). */
  stop(): void {
    this.running = false;
    this.cancelElectionTimer?.();
    this.cancelElectionTimer = null;
    this.cancelHeartbeatTimer?.();
    this.cancelHeartbeatTimer = null;
  }

  /** A newer round has been committed to this node's storage (sha256 and term when known). */
  setCommittedRound(round: number, sha256?: string, term?: number): void {
    if (round > this.committedRoundValue) {
      this.committedRoundValue = round;
      this.committedShaValue = sha256;
      if (term !== undefined) this.committedTermValue = term;
    }
  }

  /** This node staged `round` (received in `term`): it counts in the election as Raft's last entry. */
  setStaged(round: number, term: number): void {
    this.stagedRoundValue = round;
    this.stagedTermValue = term;
  }

  /** Raft's last log entry: the newest round staged or committed here, with its term. */
  lastEntry(): { term: number; round: number } {
    return this.stagedRoundValue > this.committedRoundValue
      ? { term: this.stagedTermValue, round: this.stagedRoundValue }
      : { term: this.committedTermValue, round: this.committedRoundValue };
  }

  /** A candidate whose last entry is (term, round) is at least as up to date as this node. */
  private upToDate(term: number, round: number): boolean {
    const mine = this.lastEntry();
    return term > mine.term || (term === mine.term && round >= mine.round);
  }

  /**
   * Leader only: replace the member list (add or remove one member at a time) and push it out.
   * Returns false when this node is not the leader.
   */
  setMembers(members: readonly string[]): boolean {
    if (!this.running || this.roleValue !== 'leader') return false;
    const next = [...new Set(members)];
    if (next.length === 0) return false;
    // Removed members get the new list in the next heartbeats too, so they learn it and stop standing.
    for (const m of this.membersValue) if (!next.includes(m) && m !== this.id) this.departing.set(m, DEPARTING_HEARTBEATS);
    for (const m of next) this.departing.delete(m);
    // A newcomer counts as heard at the moment it is added: check-quorum must not depose the leader
    // before the newcomer had a chance to answer its first heartbeat.
    const now = this.config.clock.now();
    for (const m of next) if (!this.membersValue.includes(m) && m !== this.id) this.lastHeard.set(m, now);
    this.membersValue = next;
    this.membershipVersionValue += 1;
    this.config.onMembersChange?.(this.membersValue, this.membershipVersionValue);
    if (!this.membersValue.includes(this.id)) {
      // Removed itself: hand over by stepping down.
      this.becomeFollower(this.termValue, null);
      return true;
    }
    this.broadcastHeartbeat();
    return true;
  }

  receive(from: string, msg: RaftMessage): void {
    if (!this.running || from === this.id) return;
    // A non-member (a removed peer that has not heard yet) must not disrupt the federation by
    // raising terms. Ignoring a message is always safe: it is the same as losing it.
    if (msg.type === 'vote-request' && !this.membersValue.includes(from)) return;
    // A pre-vote request, or a yes to one, carries a term nobody has entered yet: no term change.
    const preVote = (msg.type === 'vote-request' || msg.type === 'vote-response') && msg.preVote === true;
    if (preVote && msg.type === 'vote-request') {
      this.onPreVoteRequest(from, msg);
      return;
    }
    if (preVote && msg.type === 'vote-response' && msg.granted) {
      this.onPreVoteResponse(from, msg);
      return;
    }
    if (msg.term > this.termValue) {
      this.becomeFollower(msg.term, null);
    }
    switch (msg.type) {
      case 'vote-request':
        this.onVoteRequest(from, msg);
        break;
      case 'vote-response':
        this.onVoteResponse(from, msg);
        break;
      case 'heartbeat':
        this.onHeartbeat(from, msg);
        break;
      case 'heartbeat-response':
        this.onHeartbeatResponse(from, msg);
        break;
    }
  }

  // ---- handlers -------------------------------------------------------------------------------

  private onVoteRequest(from: string, msg: VoteRequest): void {
    const grant =
      msg.term === this.termValue &&
      (this.votedForValue === null || this.votedForValue === from) &&
      this.upToDate(msg.lastTerm ?? 0, msg.lastRound ?? msg.committedRound) &&
      this.roleValue !== 'leader';
    if (grant) {
      this.votedForValue = from;
      this.resetElectionTimer();
      const term = this.termValue;
      this.afterPersist(() => this.config.transport.send(from, { type: 'vote-response', term, granted: true }));
    } else {
      const term = this.termValue;
      this.afterPersist(() => this.config.transport.send(from, { type: 'vote-response', term, granted: false }));
    }
  }

  private onPreVoteRequest(from: string, msg: VoteRequest): void {
    // Yes only for a later term, an up-to-date candidate, and no leader heard from lately (a
    // leader that is heard from keeps its followers out of needless elections).
    const leaderFresh = this.roleValue === 'leader' || this.config.clock.now() - this.lastLeaderContact < this.baseTimeout;
    const granted = msg.term > this.termValue && !leaderFresh && this.upToDate(msg.lastTerm ?? 0, msg.lastRound ?? msg.committedRound);
    // A yes echoes the asked term (the asker checks it); a no says our own term (it may be newer).
    const reply: VoteResponse = { type: 'vote-response', term: granted ? msg.term : this.termValue, granted, preVote: true };
    this.config.transport.send(from, reply);
  }

  private onPreVoteResponse(from: string, msg: VoteResponse): void {
    if (this.preVoteTerm === null || msg.term !== this.preVoteTerm || this.roleValue === 'leader') return;
    if (!this.membersValue.includes(from)) return;
    this.preVotes.add(from);
    if (this.hasMajority(this.preVotes)) {
      this.preVoteTerm = null;
      this.preVotes.clear();
      this.startElection();
    }
  }

  private onVoteResponse(from: string, msg: VoteResponse): void {
    if (this.roleValue !== 'candidate' || msg.term !== this.termValue || !msg.granted) return;
    if (!this.membersValue.includes(from)) return;
    this.votes.add(from);
    if (this.hasMajority(this.votes)) this.becomeLeader();
  }

  private onHeartbeat(from: string, msg: Heartbeat): void {
    if (msg.term < this.termValue) {
      const reply: HeartbeatResponse = { type: 'heartbeat-response', term: this.termValue, ok: false, committedRound: this.committedRoundValue };
      this.afterPersist(() => this.config.transport.send(from, reply));
      return;
    }
    // msg.term === this.term here.
    if (this.roleValue === 'leader') {
      this.config.onError?.(new Error(`two leaders in term ${msg.term}: ${this.id} and ${from}`));
      return;
    }
    const changed = this.roleValue !== 'follower' || this.leaderIdValue !== from;
    this.roleValue = 'follower';
    this.leaderIdValue = from;
    this.votes.clear();
    this.lastLeaderContact = this.config.clock.now();
    this.preVoteTerm = null;
    this.preVotes.clear();
    this.resetElectionTimer();
    if (msg.membershipVersion > this.membershipVersionValue) {
      this.membersValue = [...new Set(msg.members)];
      this.membershipVersionValue = msg.membershipVersion;
      this.config.onMembersChange?.(this.membersValue, this.membershipVersionValue);
    }
    if (changed) this.emitChange();
    if (msg.committedRound > this.leaderCommittedRoundValue) {
      this.leaderCommittedRoundValue = msg.committedRound;
      this.config.onLeaderCommittedRound?.(msg.committedRound, from, msg.committedSha256, msg.committedTerm);
    }
    const reply: HeartbeatResponse = { type: 'heartbeat-response', term: this.termValue, ok: true, committedRound: this.committedRoundValue };
    this.afterPersist(() => this.config.transport.send(from, reply));
  }

  private onHeartbeatResponse(from: string, msg: HeartbeatResponse): void {
    if (this.roleValue !== 'leader' || msg.term !== this.termValue || !msg.ok) return;
    this.lastHeard.set(from, this.config.clock.now());
    this.followerRounds.set(from, msg.committedRound);
  }

  // ---- transitions ----------------------------------------------------------------------------

  private becomeFollower(term: number, leaderId: string | null): void {
    const wasLeader = this.roleValue === 'leader';
    const changed = this.roleValue !== 'follower' || term !== this.termValue || leaderId !== this.leaderIdValue;
    if (term > this.termValue) {
      this.termValue = term;
      this.votedForValue = null;
    }
    this.roleValue = 'follower';
    this.leaderIdValue = leaderId;
    this.votes.clear();
    this.preVoteTerm = null;
    this.preVotes.clear();
    if (wasLeader) {
      this.cancelHeartbeatTimer?.();
      this.cancelHeartbeatTimer = null;
      this.lastHeard.clear();
      this.followerRounds.clear();
      this.departing.clear();
    }
    // Only a former leader needs a fresh timer. Discovering a higher term must not postpone a
    // running timeout, or a stale candidate that keeps raising the term (one that can never win,
    // being behind on rounds) would keep everyone else from ever standing.
    if (this.cancelElectionTimer === null) this.resetElectionTimer();
    this.persistNow();
    if (changed) this.emitChange();
  }

  private startElection(): void {
    this.termValue += 1;
    this.roleValue = 'candidate';
    this.votedForValue = this.id;
    this.leaderIdValue = null;
    this.votes = new Set([this.id]);
    this.resetElectionTimer(); // retry with a fresh timeout after a split vote
    this.emitChange();
    const term = this.termValue;
    const last = this.lastEntry();
    const request: VoteRequest = { type: 'vote-request', term, committedRound: this.committedRoundValue, lastRound: last.round, lastTerm: last.term };
    this.afterPersist(() => {
      // The state may have moved on while persisting.
      if (this.roleValue !== 'candidate' || this.termValue !== term) return;
      if (this.hasMajority(this.votes)) {
        this.becomeLeader();
        return;
      }
      for (const peer of this.membersValue) if (peer !== this.id) this.config.transport.send(peer, request);
    });
  }

  private becomeLeader(): void {
    this.roleValue = 'leader';
    this.leaderIdValue = this.id;
    this.votes.clear();
    this.lastHeard.clear();
    this.followerRounds.clear();
    this.leaderSince = this.config.clock.now();
    this.cancelElectionTimer?.();
    this.cancelElectionTimer = null;
    this.emitChange();
    this.broadcastHeartbeat();
  }

  private broadcastHeartbeat(): void {
    this.cancelHeartbeatTimer?.();
    this.cancelHeartbeatTimer = null;
    if (!this.running || this.roleValue !== 'leader') return;
    if (this.checkQuorum && !this.quorumAlive()) {
      this.becomeFollower(this.termValue, null);
      return;
    }
    const hb: Heartbeat = {
      type: 'heartbeat',
      term: this.termValue,
      committedRound: this.committedRoundValue,
      ...(this.committedShaValue !== undefined ? { committedSha256: this.committedShaValue } : {}),
      committedTerm: this.committedTermValue,
      members: [...this.membersValue],
      membershipVersion: this.membershipVersionValue,
    };
    const targets = this.membersValue.filter((p) => p !== this.id);
    for (const [peer, left] of this.departing) {
      targets.push(peer);
      if (left <= 1) this.departing.delete(peer);
      else this.departing.set(peer, left - 1);
    }
    this.afterPersist(() => {
      if (this.roleValue !== 'leader' || this.termValue !== hb.term) return;
      for (const peer of targets) this.config.transport.send(peer, hb);
    });
    this.cancelHeartbeatTimer = this.config.clock.setTimer(this.heartbeatInterval, () => this.broadcastHeartbeat());
  }

  /** A majority (self included) answered within the last election timeout, or we just won. */
  private quorumAlive(): boolean {
    const now = this.config.clock.now();
    if (now - this.leaderSince < this.baseTimeout) return true;
    const heard = new Set<string>([this.id]);
    for (const [peer, at] of this.lastHeard) if (now - at <= this.baseTimeout) heard.add(peer);
    return this.hasMajority(heard);
  }

  private hasMajority(voters: ReadonlySet<string>): boolean {
    let n = 0;
    for (const m of this.membersValue) if (voters.has(m)) n++;
    return n >= Math.floor(this.membersValue.length / 2) + 1;
  }

  /**
   * Change the base election timeout T (the peer adapts it to measured round trips and event-loop
   * lag); the heartbeat interval stays, so T must stay above twice it. The running timer keeps its
   * deadline; the next one is drawn from the new range.
   */
  setElectionTimeout(ms: number): void {
    if (!(ms > 2 * this.heartbeatInterval)) throw new Error('election timeout must stay above twice the heartbeat interval');
    this.baseTimeout = ms;
    this.timeoutRange = electionTimeoutRange(ms, this.config.capacity ?? 0);
  }

  get electionTimeoutMs(): number {
    return this.baseTimeout;
  }

  private resetElectionTimer(): void {
    this.cancelElectionTimer?.();
    this.cancelElectionTimer = null;
    if (!this.running || this.roleValue === 'leader') return;
    const [lo, hi] = this.timeoutRange;
    const ms = lo + this.config.random() * (hi - lo);
    this.cancelElectionTimer = this.config.clock.setTimer(ms, () => {
      this.cancelElectionTimer = null;
      if (!this.running || this.roleValue === 'leader') return;
      if (!this.membersValue.includes(this.id)) {
        // Not (or no longer) a member: never stand, keep listening.
        this.resetElectionTimer();
        return;
      }
      if (this.preVoteEnabled) this.startPreVote();
      else this.startElection();
    });
  }

  /** Ask the others whether they would vote for us in term + 1; our term stays as it is. */
  private startPreVote(): void {
    const term = this.termValue + 1;
    this.preVoteTerm = term;
    this.preVotes = new Set([this.id]);
    this.resetElectionTimer(); // ask again after a fresh timeout if no majority says yes
    if (this.hasMajority(this.preVotes)) {
      this.preVoteTerm = null;
      this.startElection();
      return;
    }
    const last = this.lastEntry();
    const request: VoteRequest = { type: 'vote-request', term, committedRound: this.committedRoundValue, lastRound: last.round, lastTerm: last.term, preVote: true };
    for (const peer of this.membersValue) if (peer !== this.id) this.config.transport.send(peer, request);
  }

  // ---- durability -----------------------------------------------------------------------------

  private snapshot(): RaftPersistentState {
    return { term: this.termValue, votedFor: this.votedForValue };
  }

  /** Persist the current state; what is queued with afterPersist waits for it. */
  private persistNow(): void {
    this.enqueue(this.snapshot(), null);
  }

  /** Persist the current state, then run `send` if that succeeded. */
  private afterPersist(send: () => void): void {
    this.enqueue(this.snapshot(), send);
  }

  private lastPersisted: RaftPersistentState | null = null;

  private enqueue(state: RaftPersistentState, send: (() => void) | null): void {
    const step = (): boolean | Promise<boolean> => {
      if (this.lastPersisted !== null && this.lastPersisted.term === state.term && this.lastPersisted.votedFor === state.votedFor) {
        return true;
      }
      let result: void | Promise<void>;
      try {
        result = this.config.persist(state);
      } catch (err) {
        this.persistFailed(err);
        return false;
      }
      if (isPromise(result)) {
        return result.then(
          () => {
            this.lastPersisted = state;
            return true;
          },
          (err: unknown) => {
            this.persistFailed(err);
            return false;
          },
        );
      }
      this.lastPersisted = state;
      return true;
    };
    const finish = (ok: boolean): boolean => {
      if (ok && send !== null && this.running) send();
      return ok;
    };
    if (this.durable === null) {
      const r = step();
      if (!isPromise(r)) {
        finish(r);
        return;
      }
      const p: Promise<boolean> = r.then(finish);
      this.durable = p;
      void p.then(() => {
        if (this.durable === p) this.durable = null;
      });
      return;
    }
    const p: Promise<boolean> = this.durable.then(() => step()).then(finish);
    this.durable = p;
    void p.then(() => {
      if (this.durable === p) this.durable = null;
    });
  }

  private persistFailed(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    this.config.onError?.(new Error(`cannot persist election state: ${e.message.split('\n')[0]}`));
  }

  private emitChange(): void {
    this.config.onChange?.(this.status());
  }
}

export function createRaftNode(config: RaftConfig): RaftNode {
  return new RaftNode(config);
}
