// The Memory screen's figures in words.
import type { BackpropFigure, MemoryPoint } from '../../shared/api.ts';
import { bytes } from './format.ts';

/** Sentences that say what the bench's backprop and forward-mode figures are and how they compare. */
export function backpropWords(b: BackpropFigure | null): string[] {
  if (b === null || b.state !== 'measured' || !b.backprop || !b.forward) return [];
  return [
    "Training working memory is what a method needs above the loaded model (sessions, activations, gradients): the peak RSS of a process running a few of its steps, less that process's RSS once the model was loaded.",
    `Backprop keeps every layer's activations until the backward pass: ${bytes(b.backprop.workingRssBytes)} (its process peaked at ${bytes(b.backprop.peakRssBytes)}). Forward mode carries the gradient estimate along the forward pass and keeps none: ${bytes(b.forward.workingRssBytes)} (peak ${bytes(b.forward.peakRssBytes)}).`,
    `Each was measured by the bench code in a process of its own${b.engine ? ` on ${b.engine}` : ''}, one batch of ${b.batch} × ${b.seq} tokens with every adapter tensor trained, ${b.backprop.medianStepMs.toFixed(0)} ms and ${b.forward.medianStepMs.toFixed(0)} ms per step.`,
    "This peer's process RSS counts everything in it at once (the runtime, the model, the network side, the training), so it is larger than either working memory.",
  ];
}

/**
 * RSS at the end of each round against the first round's end: a steady climb over many rounds
 * points at a leak, a level after the first rounds at caches filling up.
 */
export function rssByRound(samples: MemoryPoint[]): { round: number; rss: number }[] {
  const last = new Map<number, number>();
  for (const s of samples) last.set(s.round, s.rss);
  return [...last].map(([round, rss]) => ({ round, rss })).sort((a, b) => a.round - b.round);
}

/** "round 1 → 5: 265 MB → 615 MB" once at least two rounds ended, else ''. */
export function rssGrowthText(samples: MemoryPoint[]): string {
  const r = rssByRound(samples);
  if (r.length < 2) return '';
  const a = r[0]!;
  const b = r.at(-1)!;
  return `end of round ${a.round} → ${b.round}: ${bytes(a.rss)} → ${bytes(b.rss)}`;
}
