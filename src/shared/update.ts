// A client's contribution to a round, as it crosses from the worker to the peer and over the network.
import type { Weights } from './units.ts';

export interface ClientUpdate {
  client: string;
  /** units this client was assigned and trained */
  units: string[];
  numExamples: number;
  /** mean local training loss */
  loss: number;
  /** per-epoch mode: the new values of the client's assigned tensors */
  weights?: Weights;
  /** per-iteration mode: the K directional derivatives of the client's single step */
  jvp?: number[];
}
