// `fedforward demo`: the main job on the embedded default. Three organisations, each holding one
// domain of the UCI sentiment sentences (IMDb, Yelp, Amazon reviews) as private data, finetune the
// embedded model with Spry; progress, a summary, and the exported PEFT adapter.
import type { Command } from 'commander';
import path from 'node:path';
import { backendOption, positiveInt } from './options.ts';
import { simulate } from '../simulate.ts';
import { exportPeftAdapter } from '../export/peft.ts';
import { HyperParams } from '../../shared/methods.ts';

const MB = 1024 * 1024;
const pct = (a: number | null) => (a === null ? 'n/a' : `${(100 * a).toFixed(1)}%`);

export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description('three organisations (IMDb, Yelp, Amazon review sentences) finetune the embedded model with Spry')
    .option('--rounds <n>', 'rounds', positiveInt, 5)
    .option('--model <dir>', 'model directory, or "embedded"', 'embedded')
    .option('--out <dir>', 'where to export the adapter', 'fedforward-demo')
    .option('--max-local-steps <n>', 'local steps per round per organisation', positiveInt, 25)
    .option('--json', 'print the summary as JSON')
    .addOption(backendOption())
    .action(async (o) => {
      const hp = HyperParams.parse({ lr: 1e-3, maxLocalSteps: o.maxLocalSteps, batchSize: 8, maxLength: 48 });
      const log = (s: string) => !o.json && console.log(s);
      log('FedForward demo: 3 organisations, each with one domain of review sentences, train one adapter with Spry.');
      const result = await simulate(
        {
          method: 'spry',
          model: { model: o.model, lora: {}, backend: o.backend, maxLength: hp.maxLength, initSeed: 0 },
          data: { source: 'sentiment', split: { kind: 'domain' }, seed: 0, trainFraction: 0.8, limit: 0 },
          perRound: 3,
          rounds: o.rounds,
          seed: 0,
          hp,
        },
        (e) => {
          if (e.type === 'ready')
            log(`model: ${o.model} (${e.init.family}, ${e.init.units.length} trainable units), backend ${e.init.backend}; organisations: ${e.init.clients.map((c) => `${c.id} ${c.train} train / ${c.test} test`).join(', ')}`);
          if (e.type === 'round') {
            const m = e.metrics;
            log(`round ${m.round}/${o.rounds}: train loss ${m.trainLoss.toFixed(4)}, accuracy ${pct(m.accuracy)}, ${(m.wallMs / 1000).toFixed(1)} s, peak tensors ${(m.peakTensorBytes / MB).toFixed(1)} MB`);
          }
        },
      );
      const { init } = result;
      const dir = path.resolve(o.out, 'adapter');
      await exportPeftAdapter(dir, { family: init.family, task: 'classification', ...init.lora, baseModel: o.model, labels: init.labels }, init.specs, result.final);
      const last = result.rounds.at(-1)!;
      const summary = {
        rounds: result.rounds.length,
        accuracyBefore: result.initial.accuracy,
        accuracyAfter: last.accuracy,
        peakTensorBytes: Math.max(...result.rounds.map((r) => r.peakTensorBytes)),
        peakRssBytes: Math.max(...result.rounds.map((r) => r.peakRss)),
        bytesUp: result.rounds.reduce((s, r) => s + r.bytesUp, 0),
        bytesDown: result.rounds.reduce((s, r) => s + r.bytesDown, 0),
        adapter: dir,
      };
      if (o.json) return console.log(JSON.stringify(summary, null, 2));
      console.log(`\ngeneralized accuracy ${pct(summary.accuracyBefore)} → ${pct(summary.accuracyAfter)} after ${summary.rounds} rounds`);
      console.log(`peak tensor memory per organisation ${(summary.peakTensorBytes / MB).toFixed(1)} MB, peak RSS ${(summary.peakRssBytes / MB).toFixed(0)} MB`);
      console.log(`sent ${(summary.bytesUp / 1024).toFixed(1)} KiB up, ${(summary.bytesDown / 1024).toFixed(1)} KiB down`);
      console.log(`adapter (PEFT LoRA): ${dir}`);
    });
}
