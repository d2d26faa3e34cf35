// Spry step 1, "Assign": the trainable units (one LoRA pair per adapted module, the head as one unit)
// are split among the round's sampled clients, so each client perturbs only about U/M of them.
import { Rng } from '../../shared/spry/rng.ts';
import type { Unit } from '../../shared/units.ts';

/** The Philox stream of the round's client order (apart from the streams of the round's steps). */
const ORDER_STREAM = 0x5eed;

/**
 * The order in which the round's clients take units: a shuffle seeded by the round seed, as the
 * reference inherits Flower's random sampling order. A sorted list would give the same units to the
 * same clients round after round; sorting before the shuffle makes every peer agree whatever order
 * it learnt the clients in.
 */
export function roundOrder(clients: string[], roundSeed: string): string[] {
  return new Rng(roundSeed, ORDER_STREAM).shuffle([...clients].sort());
}

/**
 * Unit names per client, for one round.
 *  M ≤ U: unit i goes to client i mod M (strided over depth; each client gets ⌊U/M⌋ or ⌈U/M⌉ units).
 *  M > U (a Decision of this product; the public code crashes there): client j trains unit j mod U,
 *         so every unit gets ⌊M/U⌋ or ⌈M/U⌉ clients, whose results are averaged.
 * Without the split (FedAvg, FedFgd...), every client gets every unit.
 */
export function assignUnits(units: Unit[], clients: string[], split: boolean): Map<string, string[]> {
  if (units.length === 0) throw new Error('nothing to train: the model has no trainable units');
  if (clients.length === 0) throw new Error('a round needs at least one client');
  const out = new Map<string, string[]>(clients.map((c) => [c, []]));
  if (!split) {
    for (const c of clients) out.set(c, units.map((u) => u.name));
    return out;
  }
  const m = clients.length;
  if (m <= units.length) units.forEach((u, i) => out.get(clients[i % m])!.push(u.name));
  else clients.forEach((c, j) => out.get(c)!.push(units[j % units.length].name));
  return out;
}
