// `fedforward simulate`: research mode, many virtual clients on a pool of worker threads.
import type { Command } from 'commander';
import { Option } from 'commander';
import cliProgress from 'cli-progress';
import { backendOption, nonNegativeInt, nonNegativeNumber, positiveInt } from './options.ts';
import { simulate } from '../simulate.ts';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { HyperParams, METHOD_NAMES } from '../../shared/methods.ts';

const positiveNumber = (v: string) => {
  const n = nonNegativeNumber(v);
  if (n === 0) throw new Error('expected a number > 0');
  return n;
};

/** Options shared by every command that trains: the algorithm's and the adapter's settings. */
export function trainingOptions(cmd: Command): Command {
  return cmd
    .option('--lr <x>', 'local AdamW learning rate', positiveNumber, 1e-4)
    .option('--weight-decay <x>', 'local AdamW weight decay', nonNegativeNumber, 0.01)
    .option('--local-epochs <n>', 'local epochs per round', positiveInt, 1)
    .option('--max-local-steps <n>', 'cap on local steps per round (0 = full epochs)', nonNegativeInt, 0)
    .option('--batch-size <n>', 'local batch size', positiveInt, 8)
    .option('--max-length <n>', 'tokens per example', positiveInt, 64)
    .option('--k <n>', 'forward-mode perturbations per batch (Spry, FedFgd)', positiveInt)
    .addOption(new Option('--spry-mode <mode>', "Spry: upload weights per epoch, or K jvp scalars per iteration").choices(['epoch', 'iteration']).default('epoch'))
    .addOption(new Option('--server <opt>', 'server optimizer (default: the method\'s)').choices(['fedyogi', 'fedadam', 'fedavg']))
    .option('--server-lr <x>', 'server learning rate η', positiveNumber, 1e-2)
    .option('--lora-r <n>', 'LoRA rank', positiveInt, 1)
    .option('--lora-alpha <x>', 'LoRA alpha', positiveNumber, 1)
    .option('--lora-dropout <x>', 'LoRA dropout', nonNegativeNumber, 0.1)
    .option('--targets <list>', 'LoRA target modules, comma-separated (default: attention query and value)');
}

export function hyperParamsOf(o: Record<string, unknown>): HyperParams {
  return HyperParams.parse({
    lr: o.lr, weightDecay: o.weightDecay, localEpochs: o.localEpochs, maxLocalSteps: o.maxLocalSteps, batchSize: o.batchSize,
    maxLength: o.maxLength, k: o.k, spryMode: o.spryMode, server: o.server, serverLr: o.serverLr,
  });
}

export function loraOf(o: Record<string, unknown>) {
  return { r: o.loraR as number, alpha: o.loraAlpha as number, dropout: o.loraDropout as number, ...(o.targets ? { targetModules: String(o.targets).split(',') } : {}) };
}

export function simulateCommand(program: Command): void {
  const cmd = program
    .command('simulate')
    .description('simulate a federation of virtual clients (worker pool) with any method; metrics per round')
    .addOption(new Option('--method <name>', 'federated method').choices(METHOD_NAMES).default('spry'))
    .option('--task <name|file>', 'built-in task (sentiment, brown-genre, brown-lm) or a .jsonl/.csv file', 'sentiment')
    .option('--model <dir>', 'model directory, or "embedded"', 'embedded')
    .option('--clients <n>', 'number of virtual clients', positiveInt, 10)
    .option('--per-round <n>', 'clients sampled per round (default: two per trainable unit, at most --clients)', positiveInt)
    .option('--rounds <n>', 'rounds', positiveInt, 10)
    .option('--alpha <x>', 'Dirichlet concentration of the label split', positiveNumber, 1)
    .addOption(new Option('--split <kind>', 'dirichlet (the paper\'s), or domain (one client per natural domain)').choices(['dirichlet', 'domain']).default('dirichlet'))
    .option('--limit <n>', 'at most this many examples per client (0 = all)', nonNegativeInt, 0)
    .option('--seed <n>', 'seed of the split, the sampling and the perturbations', nonNegativeInt, 0)
    .option('--workers <n>', 'compute worker threads (default: cores)', positiveInt)
    .option('--personalized', 'after the last round, also the accuracy after each client finetunes the adapter locally (the paper\'s personalised metric)')
    .option('--json <file>', 'write the per-round metrics as JSON to this file')
    .addOption(backendOption());
  trainingOptions(cmd).action(async (o) => {
    const hp = hyperParamsOf(o);
    const bar = process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'round {round}/{rounds} |{bar}| {percentage}% {status}', hideCursor: true }, cliProgress.Presets.shades_classic) : null;
    let stepsDone = 0;
    const result = await simulate(
      {
        method: o.method,
        model: { model: o.model, lora: loraOf(o), backend: o.backend, maxLength: hp.maxLength, initSeed: o.seed },
        data: { source: o.task, split: o.split === 'domain' ? { kind: 'domain' } : { kind: 'dirichlet', clients: o.clients, alpha: o.alpha }, seed: o.seed, trainFraction: 0.8, limit: o.limit },
        perRound: o.perRound,
        rounds: o.rounds,
        seed: o.seed,
        hp,
        workers: o.workers,
        personalized: Boolean(o.personalized),
      },
      (e) => {
        if (e.type === 'ready') {
          console.error(`${o.method} on ${o.task}: ${e.init.clients.length} clients, ${e.init.units.length} units, ${e.init.family} model, ${e.init.backend} backend`);
          bar?.start(100, 0, { round: 1, rounds: o.rounds, status: '' });
        } else if (e.type === 'progress') {
          stepsDone++;
          bar?.update(Math.min(99, stepsDone % 100), { round: e.round, status: `${e.client} step ${e.step}/${e.steps}` });
        } else {
          const m = e.metrics;
          const line = `round ${m.round}: train loss ${m.trainLoss.toFixed(4)}, test loss ${m.testLoss.toFixed(4)}${m.accuracy === null ? '' : `, accuracy ${(100 * m.accuracy).toFixed(1)}%`}, ${(m.wallMs / 1000).toFixed(1)} s`;
          if (bar) bar.update(100, { round: m.round, status: '' });
          console.error(line);
          if (m.warning) console.error(`warning: ${m.warning}`);
        }
      },
    );
    bar?.stop();
    const { init, final: _final, ...rest } = result;
    const report = { ...rest, backend: init.backend, family: init.family, clients: init.clients, options: { ...o, hp } };
    if (o.json) await writeFileAtomic(o.json, JSON.stringify(report, null, 2));
    const last = result.rounds.at(-1)!;
    console.log(`${result.method}: accuracy ${fmt(result.initial.accuracy)} → ${fmt(last.accuracy)}, test loss ${result.initial.testLoss.toFixed(4)} → ${last.testLoss.toFixed(4)} after ${result.rounds.length} rounds`);
    if (result.personalized) console.log(`${result.method}: after local finetuning (personalised) accuracy ${fmt(result.personalized.accuracy)}, test loss ${result.personalized.testLoss.toFixed(4)}`);
  });
}

const fmt = (a: number | null) => (a === null ? 'n/a' : `${(100 * a).toFixed(1)}%`);
