// Federated data splits (the Spry paper's protocol): pool the task's examples; each client draws
// label proportions from Dirichlet(alpha) (alpha = 1 "homogeneous", 0.1 "heterogeneous"), receives
// an equal number of examples sampled label by label without replacement, and splits them 80 % train
// / 20 % test. Accuracy is then measured on the clients' local test splits.
// Also the natural split: one client per domain (e.g. imdb / yelp / amazon reviews).
import { Rng, type Seed } from '../../shared/spry/rng.ts';
import type { Dataset, Example } from './examples.ts';

export interface ClientData {
  /** 'client-0', 'client-1', ... */
  id: string;
  train: Example[];
  test: Example[];
  /** examples per label over train + test (length = dataset labels; empty for LM text) */
  labelCounts: number[];
  /** the natural domain, for domainSplit */
  domain?: string;
}

export interface DirichletSplitOptions {
  clients: number;
  /** Dirichlet concentration: small = skewed label mixes per client, large = near-uniform */
  alpha: number;
  seed: Seed;
  /** fraction of each client's examples for training; default 0.8 */
  trainFraction?: number;
  /** examples per client; default floor(N / clients) */
  perClient?: number;
}

export interface DomainSplitOptions {
  seed: Seed;
  trainFraction?: number;
}

// Philox streams of the split generators (kept apart from streams other code uses with the same seed).
const DIRICHLET_STREAM = 0x53504c01;
const DOMAIN_STREAM = 0x53504c02;

/**
 * The paper's non-IID split. Each client c = 0, 1, ... in turn draws p ~ Dirichlet(alpha, ..., alpha)
 * over the labels, then draws perClient examples one at a time: a label with probability p
 * renormalised over the labels that still have examples left, then a uniformly random remaining
 * example of that label (no example is given twice). Language-modelling data (no labels) is split
 * uniformly at random. Same seed, same split. Returns the examples themselves (not copies).
 */
export function dirichletSplit(ds: Dataset, opts: DirichletSplitOptions): ClientData[] {
  const { clients, alpha } = opts;
  const trainFraction = opts.trainFraction ?? 0.8;
  if (!Number.isSafeInteger(clients) || clients < 1) throw new Error(`clients must be a positive integer, got ${clients}`);
  if (!(alpha > 0) || !Number.isFinite(alpha)) throw new Error(`alpha must be a positive number, got ${alpha}`);
  checkTrainFraction(trainFraction);
  const n = ds.examples.length;
  const perClient = opts.perClient ?? Math.floor(n / clients);
  if (!Number.isSafeInteger(perClient) || perClient < 1) {
    throw new Error(`perClient must be a positive integer, got ${perClient}${opts.perClient === undefined ? ` (${n} examples for ${clients} clients)` : ''}`);
  }
  if (perClient * clients > n) {
    throw new Error(`${clients} clients x ${perClient} examples = ${perClient * clients} > the ${n} examples of "${ds.name}"`);
  }
  const numLabels = ds.labels.length;
  const classes = Math.max(1, numLabels);
  // Pools of example indices per label, each in random order so that popping from the end is a
  // uniform draw without replacement.
  const pools: number[][] = Array.from({ length: classes }, () => []);
  ds.examples.forEach((e, i) => {
    const l = numLabels === 0 ? 0 : e.label;
    if (!Number.isInteger(l) || l < 0 || l >= classes) {
      throw new Error(`"${ds.name}" example ${i} has label ${e.label}, outside 0..${classes - 1}`);
    }
    pools[l].push(i);
  });
  const rng = new Rng(opts.seed, DIRICHLET_STREAM);
  for (const pool of pools) rng.shuffle(pool);

  const out: ClientData[] = [];
  for (let c = 0; c < clients; c++) {
    const p = classes === 1 ? [1] : rng.dirichlet(new Array<number>(classes).fill(alpha));
    const picked: number[] = [];
    for (let k = 0; k < perClient; k++) {
      picked.push(pools[drawLabel(rng, p, pools)].pop()!);
    }
    out.push(makeClient(`client-${c}`, ds, picked, trainFraction, rng));
  }
  return out;
}

/** A label index with probability p[l] among labels whose pools are not empty; when those all have
 *  probability 0 (tiny alpha), in proportion to what is left. */
function drawLabel(rng: Rng, p: number[], pools: number[][]): number {
  let total = 0;
  for (let l = 0; l < p.length; l++) if (pools[l].length > 0) total += p[l];
  const byCount = !(total > 0);
  if (byCount) for (const pool of pools) total += pool.length;
  const u = rng.uniform() * total;
  let acc = 0;
  let last = -1;
  for (let l = 0; l < p.length; l++) {
    if (pools[l].length === 0) continue;
    const w = byCount ? pools[l].length : p[l];
    if (w <= 0) continue;
    last = l;
    acc += w;
    if (u < acc) return l;
  }
  if (last < 0) throw new Error('no examples left to draw'); // cannot happen: perClient * clients <= N
  return last; // rounding at the top end
}

/**
 * The natural non-IID split: one client per domain (in order of first appearance, e.g. imdb, yelp,
 * amazon for the sentiment task), each with all of its domain's examples, split train / test.
 */
export function domainSplit(ds: Dataset, opts: DomainSplitOptions): ClientData[] {
  const trainFraction = opts.trainFraction ?? 0.8;
  checkTrainFraction(trainFraction);
  const domains = ds.domains;
  if (!domains) throw new Error(`"${ds.name}" has no domains; use the Dirichlet split`);
  if (domains.length !== ds.examples.length) {
    throw new Error(`"${ds.name}" has ${domains.length} domains for ${ds.examples.length} examples`);
  }
  const groups = new Map<string, number[]>();
  domains.forEach((d, i) => {
    let g = groups.get(d);
    if (!g) groups.set(d, (g = []));
    g.push(i);
  });
  const rng = new Rng(opts.seed, DOMAIN_STREAM);
  return [...groups].map(([domain, idx], c) => ({ ...makeClient(`client-${c}`, ds, idx, trainFraction, rng), domain }));
}

/** Shuffles a client's examples and cuts them train / test: round(n * trainFraction) for training,
 *  but at least one of each when n >= 2 and trainFraction < 1. */
function makeClient(id: string, ds: Dataset, indices: number[], trainFraction: number, rng: Rng): ClientData {
  const order = rng.shuffle(indices.slice());
  const n = order.length;
  let nTrain = Math.round(n * trainFraction);
  if (trainFraction < 1 && n >= 2) nTrain = Math.min(n - 1, Math.max(1, nTrain));
  const labelCounts = new Array<number>(ds.labels.length).fill(0);
  if (ds.labels.length > 0) for (const i of order) labelCounts[ds.examples[i].label]++;
  return {
    id,
    train: order.slice(0, nTrain).map((i) => ds.examples[i]),
    test: order.slice(nTrain).map((i) => ds.examples[i]),
    labelCounts,
  };
}

function checkTrainFraction(f: number): void {
  if (!(f > 0 && f <= 1)) throw new Error(`trainFraction must be in (0, 1], got ${f}`);
}
