// The Memory screen's figures in words.
import type { BackpropFigure, MemoryPoint } from '../../shared/api.ts';
import { bytes } from './format.ts';

/** Sentences that say what the bench's backprop and forward figures are and how they compare with the live peak. */
export function backpropWords(b: BackpropFigure | null, livePeak: number | null): string[] {
  if (b === null || b.state !== 'measured' || !b.backprop || !b.forward) return [];
  const base = b.backprop.peakTensorBytes - b.backprop.stepTensorBytes;
  const out = [
    `Peak tensors count everything alive at a step's busiest moment: what was there before the step (the model's weights and the adapter, about ${bytes(base)} here) plus the step's own working memory.`,
    `Backprop must keep every layer's activations until the backward pass: its step needs ${bytes(b.backprop.stepTensorBytes)} of working memory (${bytes(b.backprop.peakTensorBytes)} at its peak). Forward mode carries the gradient estimate along the forward pass and keeps no activations: ${bytes(b.forward.stepTensorBytes)} (${bytes(b.forward.peakTensorBytes)} at its peak).`,
    `Both were measured by the bench code in a separate process, one batch of ${b.batch} × ${b.seq} tokens, ${b.backprop.medianStepMs.toFixed(0)} ms and ${b.forward.medianStepMs.toFixed(0)} ms per step.`,
  ];
  if (livePeak !== null)
    out.push(
      `The live peak (${bytes(livePeak)}) is measured the same way, in this peer's compute worker during real training with this federation's settings (its number of directions, its data), so it need not equal the bench's one-direction forward step; backprop's working memory would come on top of the same weights.`,
    );
  return out;
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
