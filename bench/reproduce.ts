// Reproduction of the Spry paper's relative claims on the embedded model:
//   npm run reproduce -- [--rounds 10] [--tasks sentiment,brown-genre] [--alphas 1,0.1] [--out bench/results]
// Runs every method with the same budget (clients, rounds, local steps), then writes results.json,
// (after each run, so an interrupted reproduction goes on where it stopped when run again with the
// same budget; --fresh starts over),
// and first a reference: what finetuning can reach on the model at all (backprop on the pooled
// sentiment data, a larger LoRA, a few epochs), so the federated results can be read against it;
// then forward mode's and backprop's training memory with the runs' settings, each in a process of
// its own (the simulator's RSS is every method's in turn); a Markdown report with each claim's
// verdict and figures (reproduce_report.ts), and PNG plots of accuracy against rounds and against
// wall time (Chart.js rendered in Chromium, when /usr/bin/chromium exists).
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { simulate } from '../src/main/simulate.ts';
import { trainingMemory, trainsOnOnnxRuntime } from '../src/main/training_memory.ts';
import { HyperParams, METHODS, estimatorOf } from '../src/shared/methods.ts';
import { writeFileAtomic } from '../src/shared/atomic_write.ts';
import { type Budget, type MemoryMeasurement, type Reference, type Run, mb, pct, report, slug, sum } from './reproduce_report.ts';

const COMPARED = ['spry', 'fedavg', 'fedyogi', 'fedfgd', 'fedavgsplit', 'fedmezo'] as const;

const o = new Command()
  .option('--rounds <n>', 'rounds per run', Number, 10)
  .option('--clients <n>', 'clients', Number, 10)
  .option('--per-round <n>', 'clients per round', Number, 5)
  .option('--max-local-steps <n>', 'local steps per client per round', Number, 10)
  .option('--limit <n>', 'examples per client (0 = all; brown-genre has 5,734 per client, sentiment 300)', Number, 300)
  .option('--tasks <list>', 'tasks', 'sentiment,brown-genre')
  .option('--alphas <list>', 'Dirichlet alphas', '1,0.1')
  .option('--methods <list>', 'methods', COMPARED.join(','))
  .option('--model <dir>', 'model', 'embedded')
  .option('--out <dir>', 'output folder', 'bench/results')
  .option('--report-only', 'rewrite report.md and the plots from the runs already in results.json (measuring the training memory first if it has none)')
  .option('--fresh', 'ignore the runs already in results.json')
  .option('--reference-epochs <n>', 'epochs of the centralized backprop reference (0 = none)', Number, 3)
  .option('--reference-targets <list>', 'LoRA target modules of the reference (default: every GPT-2 linear layer)', 'c_attn,c_proj,c_fc')
  .parse()
  .opts();

// Learning rates per estimator: forward and zero-order gradients are noisier than backprop's.
const LR: Record<string, number> = { spry: 1e-4, fedfgd: 1e-4, fedmezo: 1e-4, fedavg: 1e-3, fedyogi: 1e-3, fedavgsplit: 1e-3 };

/** A method's hyperparameters in these runs: the budget's, and the method's learning rate. */
const hpFor = (method: string) => HyperParams.parse({ lr: LR[method] ?? 1e-3, maxLocalSteps: o.maxLocalSteps, batchSize: 8, maxLength: 64 });

async function main() {
  await mkdir(o.out, { recursive: true });
  const runs: Run[] = [];
  let reference: Reference | null = null;
  let memory: MemoryMeasurement | null = null;
  const resultsFile = path.join(o.out, 'results.json');
  const readResults = () => JSON.parse(readFileSync(resultsFile, 'utf8')) as { options: typeof o; runs: Run[]; reference?: Reference; memory?: MemoryMeasurement };
  const save = () => writeFileAtomic(resultsFile, JSON.stringify({ options: o, reference, runs, memory }, null, 2));
  const finish = async () => {
    if (memory === null && runs.length > 0) {
      memory = await measureMemory(runs);
      await save();
    }
    await writeFileAtomic(path.join(o.out, 'report.md'), report({ options: o as Budget, hpFor, runs, reference, memory }));
    await plots(runs);
    console.log(`report: ${path.join(o.out, 'report.md')}`);
  };
  if (o.reportOnly) {
    const stored = readResults();
    Object.assign(o, { ...stored.options, out: o.out });
    runs.push(...stored.runs);
    reference = stored.reference ?? null;
    memory = stored.memory ?? null;
    return finish();
  }
  if (!o.fresh && existsSync(resultsFile)) {
    const stored = readResults();
    const budget = ['rounds', 'clients', 'perRound', 'maxLocalSteps', 'limit', 'model'] as const;
    if (budget.every((k) => stored.options[k] === o[k])) {
      runs.push(...stored.runs);
      reference = stored.reference ?? null;
      memory = stored.memory ?? null;
    } else console.log(`${resultsFile} has runs with another budget; starting over`);
  }
  if (o.referenceEpochs > 0 && reference?.epochs !== o.referenceEpochs) {
    reference = await centralizedReference('sentiment', o.referenceEpochs, String(o.referenceTargets).split(','));
    await save();
  }
  for (const task of String(o.tasks).split(','))
    for (const alpha of String(o.alphas).split(',').map(Number))
      for (const method of String(o.methods).split(',')) {
        if (runs.some((r) => r.task === task && r.alpha === alpha && r.method === method)) {
          console.log(`${task} α=${alpha} ${method}: already in ${resultsFile}`);
          continue;
        }
        const hp = hpFor(method);
        const res = await simulate({
          method,
          model: { model: o.model, lora: {}, backend: 'auto', maxLength: 64, initSeed: 0 },
          data: { source: task, split: { kind: 'dirichlet', clients: o.clients, alpha }, seed: 0, trainFraction: 0.8, limit: o.limit },
          perRound: o.perRound,
          rounds: o.rounds,
          seed: 0,
          hp,
          personalized: true,
        });
        const last = res.rounds.at(-1)!;
        console.log(`${task} α=${alpha} ${method}: ${pct(res.initial.accuracy)} → ${pct(last.accuracy)}, ${(sum(res.rounds.map((r) => r.wallMs)) / 1000).toFixed(0)} s`);
        runs.push({ task, alpha, method, initialAccuracy: res.initial.accuracy ?? 0, rounds: res.rounds, personalizedAccuracy: res.personalized?.accuracy ?? null, backend: res.init.backend });
        await save();
      }
  await finish();
}

/**
 * Forward mode's (Spry's) and backprop's (FedAvg's) training memory with the runs' model, batch,
 * tokens and K, on the engine they trained on; null, said why, when it cannot be measured.
 */
async function measureMemory(runs: Run[]): Promise<MemoryMeasurement | null> {
  const hp = hpFor('spry');
  const est = estimatorOf(METHODS.spry, hp);
  const settings = { model: o.model, batch: hp.batchSize, seq: hp.maxLength, k: est.kind === 'forward' ? est.k : 1 };
  const onnxRuntime = runs.every((r) => r.backend !== undefined && trainsOnOnnxRuntime(r.backend));
  try {
    const { forward, backprop } = await trainingMemory({ ...settings, onnxRuntime });
    console.log(`training memory (working / peak RSS): forward mode ${mb(forward.workingRssBytes)} / ${mb(forward.peakRssBytes)}, backprop ${mb(backprop.workingRssBytes)} / ${mb(backprop.peakRssBytes)}`);
    return { ...settings, engine: forward.engine, forward, backprop };
  } catch (e) {
    console.log(`training memory not measured: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    return null;
  }
}

/** Every example in one client, LoRA on every linear layer, full epochs of backprop: the model's headroom. */
async function centralizedReference(task: string, epochs: number, targetModules: string[]): Promise<Reference> {
  const lora = { r: 8, alpha: 16, dropout: 0, targetModules };
  const lr = 1e-3, batchSize = 16;
  const res = await simulate({
    method: 'fedavg',
    model: { model: o.model, lora, backend: 'auto', maxLength: 64, initSeed: 0 },
    data: { source: task, split: { kind: 'dirichlet', clients: 1, alpha: 1 }, seed: 0, trainFraction: 0.8, limit: 0 },
    perRound: 1,
    rounds: epochs,
    seed: 0,
    hp: HyperParams.parse({ lr, batchSize, maxLength: 64 }),
  });
  console.log(`${task} reference (centralized backprop, ${epochs} epochs): ${pct(res.initial.accuracy)} → ${res.rounds.map((r) => pct(r.accuracy)).join(', ')}`);
  return { task, epochs, lora, lr, batchSize, initialAccuracy: res.initial.accuracy ?? 0, rounds: res.rounds };
}


/** Accuracy against rounds and against wall time, one PNG each per task and α. */
async function plots(runs: Run[]): Promise<void> {
  if (!existsSync('/usr/bin/chromium')) return console.log('no /usr/bin/chromium: plots skipped');
  const require = createRequire(import.meta.url);
  const { chromium } = await import('playwright-core');
  // the UMD build is not in chart.js's exports map: find it beside the package's main file
  const chartJs = readFileSync(path.join(path.dirname(require.resolve('chart.js')), 'chart.umd.js'), 'utf8');
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
  try {
    const page = await browser.newPage({ viewport: { width: 900, height: 520 } });
    for (const task of new Set(runs.map((r) => r.task)))
      for (const alpha of new Set(runs.map((r) => r.alpha))) {
        const group = runs.filter((r) => r.task === task && r.alpha === alpha);
        if (group.length === 0) continue;
        for (const axis of ['rounds', 'time'] as const) {
          const datasets = group.map((r) => {
            let t = 0;
            const pts = [{ x: 0, y: 100 * r.initialAccuracy }, ...r.rounds.map((m) => ({ x: axis === 'rounds' ? m.round : (t += m.wallMs / 1000), y: 100 * (m.accuracy ?? 0) }))];
            return { label: r.method, data: pts, showLine: true, pointRadius: 2 };
          });
          const spec = { type: 'scatter', data: { datasets }, options: { animation: false, plugins: { title: { display: true, text: `${task}, α = ${alpha}` } }, scales: { x: { title: { display: true, text: axis === 'rounds' ? 'round' : 'wall time (s)' } }, y: { title: { display: true, text: 'generalized accuracy (%)' } } } } };
          await page.setContent(`<canvas id="c" width="900" height="520"></canvas><script>${chartJs}</script><script>new Chart(document.getElementById('c'), ${JSON.stringify(spec)});</script>`);
          await page.locator('#c').screenshot({ path: path.join(o.out, `${slug(task, alpha)}-${axis}.png`) });
        }
      }
  } finally {
    await browser.close();
  }
}

await main();
