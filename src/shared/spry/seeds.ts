// Seeds that several parties must derive identically (client and aggregator, every peer).

/** The seed of one local step of one client in one round. */
export const stepSeed = (roundSeed: string | number, client: string, step: number): string => `${roundSeed}/${client}/${step}`;

/** The seed a round hands out, from the federation's seed and the round number. */
export const roundSeed = (seed: string | number, round: number): string => `${seed}/round-${round}`;
