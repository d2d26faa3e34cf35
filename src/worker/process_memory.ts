// Memory as the operating system counts it for this process. ONNX Runtime allocates outside V8 and
// outside TensorFlow.js's tensor counter, and onnxruntime-node exposes no allocator statistics (its
// binding has none, and ORT's default CPU allocator keeps none), so resident set size is the
// measure. Worker threads share their process's figures: a worker reports its whole process.
import { readFileSync, writeFileSync } from 'node:fs';

export interface ProcessMemory {
  /** resident set size now (bytes) */
  rss: number;
  /** the highest resident set size since the process started, or since restartPeak (bytes) */
  peakRss: number;
}

export function processMemory(): ProcessMemory {
  // rss first: the kernel's high-water mark, read after it, already counts it
  const rss = process.memoryUsage().rss;
  return { rss, peakRss: highWaterMark() ?? process.resourceUsage().maxRSS * 1024 };
}

/**
 * Linux's VmHWM, the high-water mark restartPeak resets; null elsewhere. Not getrusage's maxRSS:
 * the kernel folds the high-water mark into that one whenever a thread exits, where no reset
 * reaches it, so a peak from before the mark could come back in it.
 */
function highWaterMark(): number | null {
  try {
    const kb = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? null : Number(kb) * 1024;
  } catch {
    return null;
  }
}

/**
 * Starts the peak count again from the present RSS, so that peakRss covers only what runs next;
 * false where the system cannot (it is Linux's /proc/self/clear_refs), and the peak then still
 * counts from the process start. It resets the peak of the whole process: only for a process that
 * measures one thing, such as a bench child, never a peer's.
 */
export function restartPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

export interface WorkingMemory {
  /** RSS when the mark was set (bytes) */
  markRss: number;
  /** the highest RSS since the process started, the mark makes no difference to it (bytes) */
  peakRss: number;
  /** the highest RSS since the mark, less markRss: what ran after it needed (bytes); NaN where restartPeak cannot, since the peak could then be one from before the mark */
  workingRss: number;
}

/**
 * Sets a mark (say, the weights are loaded) and returns a reader of the peak RSS above it. It
 * restarts the process's peak count (see restartPeak).
 */
export function markWorkingMemory(): () => WorkingMemory {
  const earlier = processMemory().peakRss;
  // restart before reading the mark: the high-water mark then never sits below it
  const restarted = restartPeak();
  const before = processMemory();
  return () => {
    const now = processMemory();
    return { markRss: before.rss, peakRss: Math.max(earlier, now.peakRss), workingRss: restarted ? now.peakRss - before.rss : NaN };
  };
}
