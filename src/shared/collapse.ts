// Signs that finetuning is going wrong, checked after every evaluation: an adapter that predicts
// (almost) one class for every test example, or a test loss above the untrained adapter's. Shown
// as one line in simulate, demo and the peer's log, and as an event in the app.
import type { EvalCounts } from './worker_protocol.ts';

/** Share of predictions in one class from which the adapter is said to predict one class. */
const ONE_CLASS_SHARE = 0.95;

export type Collapse =
  | { kind: 'one-class'; round: number; label: string; share: number }
  | { kind: 'worse-than-untrained'; round: number; testLoss: number; baseline: number };

export interface ClassCounts {
  predicted: number[];
  actual: number[];
}

/** Per-class counts summed over clients' evaluations (the federation's view of one round). */
export function sumCounts(results: EvalCounts[]): ClassCounts | null {
  const first = results.find((r) => r.predicted && r.actual);
  if (!first) return null;
  const n = first.predicted!.length;
  const predicted = new Array<number>(n).fill(0);
  const actual = new Array<number>(n).fill(0);
  for (const r of results) r.predicted?.forEach((c, i) => ((predicted[i] += c), (actual[i] += r.actual![i])));
  return { predicted, actual };
}

/**
 * What went wrong in `round`, or null. `baseline` is round 0's test loss (the untrained adapter);
 * `labels` names the classes. One class: at least 95 % of the predictions fall in one class while
 * the test labels are not that skewed.
 */
export function detectCollapse(round: number, testLoss: number, baseline: number | null, counts: ClassCounts | null, labels: string[] = []): Collapse | null {
  if (counts && counts.predicted.length > 1) {
    const total = counts.predicted.reduce((a, b) => a + b, 0);
    const top = counts.predicted.indexOf(Math.max(...counts.predicted));
    const share = total > 0 ? counts.predicted[top] / total : 0;
    const trueShare = total > 0 ? Math.max(...counts.actual) / total : 1;
    if (share >= ONE_CLASS_SHARE && trueShare < ONE_CLASS_SHARE) return { kind: 'one-class', round, label: labels[top] ?? String(top), share };
  }
  if (baseline !== null && Number.isFinite(baseline) && testLoss > baseline) return { kind: 'worse-than-untrained', round, testLoss, baseline };
  return null;
}

/** The one-line warning. */
export function describeCollapse(c: Collapse): string {
  return c.kind === 'one-class'
    ? `round ${c.round}: the adapter predicts one class ("${c.label}") for ${(100 * c.share).toFixed(0)} % of the test examples (it does not tell the classes apart)`
    : `round ${c.round}: test loss ${c.testLoss.toFixed(4)} is above the untrained adapter's ${c.baseline.toFixed(4)} (the adapter is getting worse)`;
}
