// The reproduction report's training memory: each method's column and the memory claim come from
// the per-process measurement (forward mode for Spry, backprop for FedAvg), never from the
// simulator's own RSS, which one process shares among every method it runs.
import { describe, expect, it } from 'vitest';
import { type MemoryMeasurement, type Run, report } from '../../bench/reproduce_report.ts';
import { HyperParams } from '../../src/shared/methods.ts';

const MB = 2 ** 20;
const options = { rounds: 2, clients: 4, perRound: 2, maxLocalSteps: 2, limit: 0, model: 'embedded' };
const hpFor = () => HyperParams.parse({ lr: 1e-3, batchSize: 8, maxLength: 64 });

function run(method: string, accuracies: number[]): Run {
  return {
    task: 'sentiment',
    alpha: 1,
    method,
    initialAccuracy: 0.5,
    rounds: accuracies.map((accuracy, i) => ({ round: i + 1, accuracy, testLoss: 0.6, wallMs: 1000, bytesUp: 100 })),
    backend: 'onnxruntime-node 1.30.0 (cpu, 2 threads); wasm for the rest',
  };
}
const runs = [run('spry', [0.6, 0.62]), run('fedavg', [0.62, 0.64]), run('fedmezo', [0.55, 0.56])];

function measured(forwardMB: number, backpropMB: number | null): MemoryMeasurement {
  return {
    model: 'embedded', batch: 8, seq: 64, k: 1, engine: 'onnxruntime-node 1.30.0 (cpu, 2 threads)',
    forward: { peakRssBytes: 200 * MB, workingRssBytes: forwardMB * MB, medianStepMs: 100 },
    backprop: { peakRssBytes: 230 * MB, workingRssBytes: backpropMB === null ? null : backpropMB * MB, medianStepMs: 150 },
  };
}

/** The row of a method in the results table, as cells. */
const row = (md: string, method: string) => md.split('\n').find((l) => l.startsWith(`| ${method} |`))!.split('|').map((c) => c.trim());
const claim = (md: string) => md.split('\n').find((l) => l.includes("Spry's training memory ≤ 1/3 of FedAvg's"))!;

describe('the reproduction report’s training memory', () => {
  it('puts each method’s measured working memory and process peak in its column', () => {
    const md = report({ options, hpFor, runs, reference: null, memory: measured(10, 40) });
    const header = row(md, 'method');
    const col = header.indexOf('training memory');
    expect(col).toBeGreaterThan(0);
    expect(row(md, 'spry')[col]).toBe('10.0 MB (peak 200.0 MB)');
    expect(row(md, 'fedavg')[col]).toBe('40.0 MB (peak 230.0 MB)');
    // zero order has no per-process measurement
    expect(row(md, 'fedmezo')[col]).toBe('—');
    expect(md).toContain('in a process of its own on onnxruntime-node 1.30.0 (cpu, 2 threads)');
  });

  it('holds the memory claim when forward mode needs at most a third of backprop’s working memory', () => {
    const yes = claim(report({ options, hpFor, runs, reference: null, memory: measured(10, 30) }));
    expect(yes).toContain('| yes |');
    expect(yes).toContain('backprop 3.00× forward mode');
    const no = claim(report({ options, hpFor, runs, reference: null, memory: measured(10.5, 30) }));
    expect(no).toContain('| no |');
    expect(no).toContain('backprop 2.86× forward mode');
  });

  it('reads n/a without a measurement, or where the working memory could not be measured', () => {
    for (const memory of [null, measured(10, null)]) {
      const md = report({ options, hpFor, runs, reference: null, memory });
      expect(claim(md)).toContain('| n/a |');
    }
    const md = report({ options, hpFor, runs, reference: null, memory: null });
    expect(row(md, 'spry')[row(md, 'method').indexOf('training memory')]).toBe('—');
  });
});
