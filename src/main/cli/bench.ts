// `fedforward bench`: peak memory and step time of forward mode vs backprop vs zero order vs
// inference, on TensorFlow.js and on the ONNX Runtime engine (ort-*), measured in one run on one
// model, batch and sequence length.
import type { Command } from 'commander';
import { Option } from 'commander';
import { backendOption, positiveInt } from './options.ts';
import { BENCH_MODES, type BenchMode, type ModeResult, RANDOM, runBench } from '../../worker/bench.ts';

const MB = 1024 * 1024;

export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure peak memory and step time: forward mode vs backprop vs zero order vs inference')
    .option('--model <dir>', `model directory, or ${Object.keys(RANDOM).join(' / ')} (random weights)`, 'gpt2-small-random')
    .addOption(new Option('--task <task>', 'the 2-class head, or next-token prediction with the LM head').choices(['classification', 'lm']).default('classification'))
    .option('--batch <n>', 'batch size', positiveInt, 8)
    .option('--seq <n>', 'sequence length', positiveInt, 128)
    .option('--steps <n>', 'measured steps per mode (median reported)', positiveInt, 3)
    .option('--layers <range>', 'adapted layers to train: all, or a range like 8-11', 'all')
    .option('--k <n>', 'tangents per forward-mode pass', positiveInt, 1)
    .option('--modes <list>', `comma-separated subset of ${BENCH_MODES.join(',')}`, BENCH_MODES.join(','))
    .option('--threads <n>', 'ONNX Runtime intra-op threads (default: all cores)', positiveInt)
    .option('--clients <n>', 'ort-jvp-assignments: clients of the Spry round that split the units (default: one per unit)', positiveInt)
    .option('--json', 'print the measurements as JSON')
    .addOption(backendOption())
    .action(async (o) => {
      const modes = String(o.modes).split(',') as BenchMode[];
      for (const m of modes) if (!BENCH_MODES.includes(m)) throw new Error(`unknown mode "${m}" (modes: ${BENCH_MODES.join(', ')})`);
      const args = { model: o.model, batch: o.batch, seq: o.seq, steps: o.steps, layers: o.layers, k: o.k, backend: o.backend, threads: o.threads, task: o.task, clients: o.clients };
      const results = await runBench(args, modes, (r) => {
        if (!o.json) console.error(`  ${r.mode.padEnd(13)} done`);
      });
      const ratios = ratiosOf(results);
      if (o.json) {
        console.log(JSON.stringify({ args, results, ratios }, null, 2));
        return;
      }
      console.log(`model ${args.model}, batch ${args.batch}, seq ${args.seq}, backends: ${[...new Set(results.map((r) => r.backend))].join('; ')}`);
      console.log('mode           step tensors  peak tensors  peak RSS  working RSS  median step');
      // NaN (JSON null): not measured in that mode
      const none = (x: number | null) => x === null || Number.isNaN(x);
      const mb = (x: number) => (none(x) ? '-' : (x / MB).toFixed(1)).padStart(9);
      const sec = (x: number) => (none(x) ? '-' : (x / 1000).toFixed(2)).padStart(8);
      for (const r of results)
        console.log(`${r.mode.padEnd(13)}  ${mb(r.stepTensorBytes)} MB  ${mb(r.peakTensorBytes)} MB  ${(r.peakRssBytes / MB).toFixed(0).padStart(6)} MB  ${mb(r.workingRssBytes)} MB  ${sec(r.medianStepMs)} s`);
      for (const c of results.flatMap((r) => r.clients ?? []))
        console.log(`  client from ${c.first} (${c.units} unit${c.units === 1 ? '' : 's'}): ${(c.medianStepMs / 1000).toFixed(2)} s`);
      for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}×`);
    });
}

/** Backprop relative to forward mode (and zero order), the figures the paper reports. */
export function ratiosOf(results: ModeResult[]): Record<string, number> {
  const by = new Map(results.map((r) => [r.mode, r]));
  const out: Record<string, number> = {};
  const f = by.get('forward');
  const b = by.get('backprop');
  if (f && b) {
    out['backprop / forward, step tensor memory'] = b.stepTensorBytes / f.stepTensorBytes;
    out['backprop / forward, peak tensor memory'] = b.peakTensorBytes / f.peakTensorBytes;
    out['backprop / forward, peak RSS'] = b.peakRssBytes / f.peakRssBytes;
    out['backprop / forward, step time'] = b.medianStepMs / f.medianStepMs;
  }
  const z = by.get('zero-order');
  if (f && z) out['zero-order / forward, step time'] = z.medianStepMs / f.medianStepMs;
  const oj = by.get('ort-jvp');
  const oi = by.get('ort-inference');
  const ob = by.get('ort-backprop');
  const ow = by.get('ort-weights');
  if (oj && oi) out['ort jvp / ort inference, step time'] = oj.medianStepMs / oi.medianStepMs;
  if (oj && f) out['ort jvp / tfjs forward, step time'] = oj.medianStepMs / f.medianStepMs;
  if (oj && ob) out['ort backprop / ort jvp, step time'] = ob.medianStepMs / oj.medianStepMs;
  // working memory: peak RSS above the process that only holds the weights and a session
  if (oj && ob && ow) out['ort jvp / ort backprop, working memory'] = (oj.peakRssBytes - ow.peakRssBytes) / (ob.peakRssBytes - ow.peakRssBytes);
  // both timed in the assignments' own process
  const oa = by.get('ort-jvp-assignments');
  if (oa?.inferenceMs) out['ort jvp over Spry assignments (mean) / ort inference, step time'] = oa.medianStepMs / oa.inferenceMs;
  return out;
}
