// `fedforward bench`: peak memory and step time of forward mode vs backprop vs zero order vs
// inference, measured in one run on one model, batch and sequence length.
import type { Command } from 'commander';
import { backendOption, positiveInt } from './options.ts';
import { BENCH_MODES, type BenchMode, type ModeResult, runBench } from '../../worker/bench.ts';

const MB = 1024 * 1024;

export function benchCommand(program: Command): void {
  program
    .command('bench')
    .description('measure peak memory and step time: forward mode vs backprop vs zero order vs inference')
    .option('--model <dir>', 'model directory, or gpt2-small-random (GPT-2 small shape, random weights)', 'gpt2-small-random')
    .option('--batch <n>', 'batch size', positiveInt, 8)
    .option('--seq <n>', 'sequence length', positiveInt, 128)
    .option('--steps <n>', 'measured steps per mode (median reported)', positiveInt, 3)
    .option('--layers <range>', 'adapted layers to train: all, or a range like 8-11', 'all')
    .option('--k <n>', 'tangents per forward-mode pass', positiveInt, 1)
    .option('--modes <list>', `comma-separated subset of ${BENCH_MODES.join(',')}`, BENCH_MODES.join(','))
    .option('--json', 'print the measurements as JSON')
    .addOption(backendOption())
    .action(async (o) => {
      const modes = String(o.modes).split(',') as BenchMode[];
      for (const m of modes) if (!BENCH_MODES.includes(m)) throw new Error(`unknown mode "${m}" (modes: ${BENCH_MODES.join(', ')})`);
      const args = { model: o.model, batch: o.batch, seq: o.seq, steps: o.steps, layers: o.layers, k: o.k, backend: o.backend };
      const results = await runBench(args, modes, (r) => {
        if (!o.json) console.error(`  ${r.mode.padEnd(10)} done: ${(r.medianStepMs / 1000).toFixed(2)} s/step`);
      });
      const ratios = ratiosOf(results);
      if (o.json) {
        console.log(JSON.stringify({ args, results, ratios }, null, 2));
        return;
      }
      console.log(`model ${args.model}, batch ${args.batch}, seq ${args.seq}, backend ${results[0]?.backend}`);
      console.log('mode        step tensors  peak tensors  peak RSS   median step');
      for (const r of results)
        console.log(`${r.mode.padEnd(10)}  ${(r.stepTensorBytes / MB).toFixed(1).padStart(9)} MB  ${(r.peakTensorBytes / MB).toFixed(1).padStart(9)} MB  ${(r.peakRssBytes / MB).toFixed(0).padStart(6)} MB  ${(r.medianStepMs / 1000).toFixed(2).padStart(8)} s`);
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
  return out;
}
