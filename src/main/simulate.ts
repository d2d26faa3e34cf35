// Research mode: many virtual clients on one machine. The aggregator side (Strategy) runs here, the
// clients' local training runs on a pool of compute workers, exactly as in the federation.
import { availableParallelism } from 'node:os';
import { ComputePool } from './compute/pool.ts';
import { Strategy } from './spry/strategy.ts';
import { type HyperParams, methodSpec, perIteration } from '../shared/methods.ts';
import type { DataSpec, InitReply, LocalFinetune, ModelSpec } from '../shared/worker_protocol.ts';
import type { Weights } from '../shared/units.ts';
import type { ClientUpdate } from '../shared/update.ts';
import { Rng } from '../shared/spry/rng.ts';
import { type Collapse, describeCollapse, detectCollapse, sumCounts } from '../shared/collapse.ts';
import { processMemory } from '../worker/process_memory.ts';

export interface SimulationOptions {
  method: string;
  model: ModelSpec;
  data: DataSpec;
  /** clients sampled per round (default: enough for two per unit under Spry's split, at most all) */
  perRound?: number;
  rounds: number;
  seed: number;
  hp: HyperParams;
  workers?: number;
  /** after the last round, also the paper's "accuracy after local finetuning" (see LocalFinetune) */
  personalized?: boolean;
}

export interface RoundMetrics {
  round: number;
  clients: string[];
  trainLoss: number;
  /** generalized accuracy: correct / total over all clients' local test splits */
  accuracy: number | null;
  testLoss: number;
  wallMs: number;
  /**
   * The simulator's RSS at the round's end and its peak since it started (bytes): one process for
   * every worker, ONNX Runtime's buffers included, so no one method's figure when one process runs
   * several (src/main/training_memory.ts measures a method on its own)
   */
  rss: number;
  peakRss: number;
  bytesDown: number;
  bytesUp: number;
  /** classification: test predictions per class, summed over clients */
  predicted: number[] | null;
  /** a one-line warning when the adapter collapses to one class or does worse than round 0 */
  warning: string | null;
}

export interface SimulationResult {
  method: string;
  init: InitReply;
  initial: Omit<RoundMetrics, 'round' | 'clients' | 'trainLoss' | 'wallMs' | 'bytesDown' | 'bytesUp' | 'warning'>;
  rounds: RoundMetrics[];
  final: Weights;
  /** the final adapter after each client's own local training, on its test split */
  personalized?: { accuracy: number | null; testLoss: number };
}

export type SimulationEvent =
  | { type: 'ready'; init: InitReply }
  | { type: 'round'; metrics: RoundMetrics }
  | { type: 'progress'; round: number; client: string; step: number; steps: number };

/**
 * Clients per round when none is given: two per unit, so that every unit's update under Spry's split
 * is an average over two clients' noise rather than one client's (the paper samples 10 a round),
 * and at most every client.
 */
export const defaultPerRound = (clients: number, units: number) => Math.min(clients, 2 * units);

const warningOf = (c: Collapse | null) => (c ? describeCollapse(c) : null);
const bytesOf = (w: Weights) => [...w.values()].reduce((s, a) => s + a.byteLength, 0);

export async function simulate(opts: SimulationOptions, onEvent: (e: SimulationEvent) => void = () => {}): Promise<SimulationResult> {
  const method = methodSpec(opts.method);
  const pool = new ComputePool(Math.min(opts.workers ?? availableParallelism(), opts.perRound ?? Infinity));
  try {
    const init = await pool.init(opts.model, opts.data);
    onEvent({ type: 'ready', init });
    const perRound = opts.perRound ?? defaultPerRound(init.clients.length, init.units.length);
    if (perRound > init.clients.length) throw new Error(`--per-round ${perRound} exceeds the ${init.clients.length} clients`);
    const strategy = new Strategy(method, opts.hp, init.specs, init.units, opts.seed);
    let globals = init.initial;

    const evaluateAll = async (finetune?: LocalFinetune) => {
      const results = await Promise.all(init.clients.map((c) => pool.run<'evaluate'>({ type: 'evaluate', client: c.id, globals, batchSize: 32, finetune })));
      const total = results.reduce((s, r) => s + r.result.total, 0);
      const correct = results.reduce((s, r) => s + r.result.correct, 0);
      return {
        accuracy: init.labels.length > 0 ? correct / total : null,
        testLoss: results.reduce((s, r) => s + r.result.loss * r.result.total, 0) / total,
        counts: sumCounts(results.map((r) => r.result)),
      };
    };

    const { counts: initialCounts, ...ev0 } = await evaluateAll();
    const initial = { ...ev0, ...processMemory(), predicted: initialCounts?.predicted ?? null };
    const rounds: RoundMetrics[] = [];
    for (let round = 1; round <= opts.rounds; round++) {
      const t0 = performance.now();
      const sampled = new Rng(opts.seed, round).shuffle(init.clients.map((c) => c.id)).slice(0, perRound).sort();
      const plan = strategy.configure(round, sampled);
      const replies = await Promise.all(
        sampled.map((client) =>
          pool.run<'train'>(
            { type: 'train', client, roundSeed: plan.seed, method: method.name, hp: opts.hp, units: plan.assignment.get(client)!, globals },
            (p) => onEvent({ type: 'progress', round, client, step: p.step, steps: p.steps }),
          ),
        ),
      );
      const updates: ClientUpdate[] = replies.map((r) => r.result);
      globals = strategy.aggregate(plan, globals, updates);
      const ev = await evaluateAll();
      const examples = updates.reduce((s, u) => s + u.numExamples, 0);
      const metrics: RoundMetrics = {
        round,
        clients: sampled,
        trainLoss: updates.reduce((s, u) => s + u.loss * u.numExamples, 0) / examples,
        accuracy: ev.accuracy,
        testLoss: ev.testLoss,
        wallMs: performance.now() - t0,
        ...processMemory(),
        // down: the whole adapter to every sampled client; up: its assigned tensors, or K scalars
        bytesDown: sampled.length * bytesOf(globals),
        bytesUp: updates.reduce((s, u) => s + (perIteration(method, opts.hp) ? 4 * (u.jvp?.length ?? 0) : u.weights ? bytesOf(u.weights) : 0), 0),
        predicted: ev.counts?.predicted ?? null,
        warning: warningOf(detectCollapse(round, ev.testLoss, initial.testLoss, ev.counts, init.labels)),
      };
      rounds.push(metrics);
      onEvent({ type: 'round', metrics });
    }
    const result: SimulationResult = { method: method.name, init, initial, rounds, final: globals };
    if (opts.personalized) {
      const ev = await evaluateAll({ method: method.name, hp: opts.hp, seed: `${opts.seed}/personalized` });
      result.personalized = { accuracy: ev.accuracy, testLoss: ev.testLoss };
    }
    return result;
  } finally {
    await pool.close();
  }
}

