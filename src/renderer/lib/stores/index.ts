// The page's stores, one per concern, over the one bridge.
import { getBridge, typed } from '../bridge.ts';
import { FederationStore } from './federation.svelte.ts';
import { TrainingStore } from './training.svelte.ts';
import { MemoryStore } from './memory.svelte.ts';
import { DataStore } from './data.svelte.ts';
import { ExportStore } from './export.svelte.ts';
import { TimelineStore } from './timeline.svelte.ts';

export interface Stores {
  federation: FederationStore;
  training: TrainingStore;
  memory: MemoryStore;
  data: DataStore;
  exports: ExportStore;
  timeline: TimelineStore;
}

let stores: Stores | null = null;

export function getStores(): Stores {
  if (stores) return stores;
  const api = typed(getBridge());
  stores = {
    federation: new FederationStore(api),
    training: new TrainingStore(api),
    memory: new MemoryStore(api),
    data: new DataStore(api),
    exports: new ExportStore(api),
    timeline: new TimelineStore(api),
  };
  return stores;
}
