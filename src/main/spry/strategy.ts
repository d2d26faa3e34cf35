// A federated method as the aggregator runs it, one round at a time, in the shape of Flower's
// Strategy: configure the round (assignment, seed), then aggregate the updates that came back.
// Plain float32 arithmetic over Weights, so the simulation and every peer compute the same bits.
import { assignUnits, roundOrder } from './assignment.ts';
import { aggregateJvp, aggregateWeights } from './aggregate.ts';
import { type ServerOptState, emptyServerState, serverStep } from './server_optimizer.ts';
import { type HyperParams, type MethodSpec, perIteration } from '../../shared/methods.ts';
import { roundSeed } from '../../shared/spry/seeds.ts';
import type { TensorSpec, Unit, Weights } from '../../shared/units.ts';
import type { ClientUpdate } from '../../shared/update.ts';

export interface RoundPlan {
  round: number;
  seed: string;
  /** unit names per client */
  assignment: Map<string, string[]>;
}

export class Strategy {
  readonly method: MethodSpec;
  readonly hp: HyperParams;
  readonly specs: TensorSpec[];
  readonly units: Unit[];
  readonly seed: string;
  server: ServerOptState;

  constructor(method: MethodSpec, hp: HyperParams, specs: TensorSpec[], units: Unit[], seed: string | number, server: ServerOptState = emptyServerState()) {
    this.method = method;
    this.hp = hp;
    this.specs = specs;
    this.units = units;
    this.seed = String(seed);
    this.server = server;
  }

  /** Step 1, Assign (recomputed each round over that round's clients, in the round's shuffled order). */
  configure(round: number, clients: string[]): RoundPlan {
    const seed = roundSeed(this.seed, round);
    return { round, seed, assignment: assignUnits(this.units, roundOrder(clients, seed), this.method.split) };
  }

  /** Step 5, Aggregate per unit over the clients that trained it, then the server optimizer step. */
  aggregate(plan: RoundPlan, globals: Weights, updates: ClientUpdate[]): Weights {
    for (const u of updates) {
      const assigned = plan.assignment.get(u.client);
      if (!assigned || assigned.join() !== u.units.join()) throw new Error(`update from ${u.client} does not match its assignment this round`);
    }
    const delta = perIteration(this.method, this.hp)
      ? aggregateJvp(this.specs, this.units, updates, plan.seed, this.hp.lr)
      : aggregateWeights(globals, this.units, updates);
    const name = this.hp.server ?? this.method.server;
    return serverStep({ name, lr: this.hp.serverLr, beta1: this.hp.serverBeta1, beta2: this.hp.serverBeta2, tau: this.hp.serverTau }, this.server, globals, delta);
  }
}
