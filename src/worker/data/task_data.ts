// From a DataSpec to the clients' train and test examples: a built-in task or a local file, then the
// paper's Dirichlet split, the natural-domain split, or this peer's own data.
import { type Dataset, type Example, loadDataFile } from './examples.ts';
import { BUILTIN_TASKS, isBuiltinTask, loadBuiltinTask } from './builtin.ts';
import { type ClientData, dirichletSplit, domainSplit } from './split.ts';
import type { DataSpec } from '../../shared/worker_protocol.ts';

export interface TaskData {
  /** label names; empty for language modelling */
  labels: string[];
  clients: ClientData[];
}

export async function loadDataset(source: string): Promise<Dataset> {
  if (isBuiltinTask(source)) return loadBuiltinTask(source);
  if (!/\.(jsonl|csv)$/i.test(source)) throw new Error(`"${source}" is neither a built-in task (${BUILTIN_TASKS.map((t) => t.name).join(', ')}) nor a .jsonl or .csv file`);
  return loadDataFile(source);
}

export async function loadTaskData(spec: DataSpec): Promise<TaskData> {
  const ds = await loadDataset(spec.source);
  const { split, seed, trainFraction } = spec;
  let clients: ClientData[];
  if (split.kind === 'dirichlet') clients = dirichletSplit(ds, { clients: split.clients, alpha: split.alpha, seed, trainFraction });
  else if (split.kind === 'domain') clients = domainSplit(ds, { seed, trainFraction });
  else {
    let own = ds;
    if (split.domain) {
      if (!ds.domains) throw new Error(`"${spec.source}" has no domains to choose "${split.domain}" from`);
      const keep = ds.examples.filter((_, i) => ds.domains![i] === split.domain);
      if (keep.length === 0) throw new Error(`"${spec.source}" has no domain "${split.domain}" (domains: ${[...new Set(ds.domains)].join(', ')})`);
      own = { ...ds, examples: keep, domains: undefined };
    }
    const [one] = dirichletSplit(own, { clients: 1, alpha: 1e6, seed, trainFraction });
    clients = [{ ...one, id: split.client }];
  }
  if (spec.limit > 0) clients = clients.map((c) => limitClient(c, spec.limit, trainFraction));
  return { labels: ds.labels, clients };
}

function limitClient(c: ClientData, limit: number, trainFraction: number): ClientData {
  const nTrain = Math.max(1, Math.round(limit * trainFraction));
  const train: Example[] = c.train.slice(0, nTrain);
  const test: Example[] = c.test.slice(0, Math.max(1, limit - nTrain));
  return { ...c, train, test };
}
