// Reproduction of the Spry paper's relative claims on the embedded model:
//   npm run reproduce -- [--rounds 10] [--tasks sentiment,brown-genre] [--alphas 1,0.1] [--out bench/results]
// Runs every method with the same budget (clients, rounds, local steps), then writes results.json,
// (after each run, so an interrupted reproduction goes on where it stopped when run again with the
// same budget; --fresh starts over),
// and first a reference: what finetuning can reach on the model at all (backprop on the pooled
// sentiment data, a larger LoRA, a few epochs), so the federated results can be read against it;
// a Markdown report with each claim's verdict and figures, and PNG plots of accuracy against rounds
// and against wall time (Chart.js rendered in Chromium, when /usr/bin/chromium exists).
import { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { simulate, type RoundMetrics } from '../src/main/simulate.ts';
import { HyperParams, METHODS, type MethodName } from '../src/shared/methods.ts';
import { writeFileAtomic } from '../src/shared/atomic_write.ts';

const COMPARED = ['spry', 'fedavg', 'fedyogi', 'fedfgd', 'fedavgsplit', 'fedmezo'] as const;

interface Run {
  task: string;
  alpha: number;
  method: string;
  initialAccuracy: number;
  rounds: RoundMetrics[];
  /** the paper's own metric: the final adapter after each client's local finetuning (runs since it was added) */
  personalizedAccuracy?: number | null;
  /** the compute backend the run trained on (runs since it was recorded) */
  backend?: string;
}

/** Centralized finetuning with backprop: the headroom of the model on the task. */
interface Reference {
  task: string;
  epochs: number;
  lora: { r: number; alpha: number; dropout: number; targetModules: string[] };
  lr: number;
  batchSize: number;
  initialAccuracy: number;
  rounds: RoundMetrics[];
}

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
  .option('--report-only', 'rewrite report.md and the plots from the runs already in results.json')
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
  const resultsFile = path.join(o.out, 'results.json');
  const readResults = () => JSON.parse(readFileSync(resultsFile, 'utf8')) as { options: typeof o; runs: Run[]; reference?: Reference };
  if (o.reportOnly) {
    const stored = readResults();
    Object.assign(o, { ...stored.options, out: o.out });
    runs.push(...stored.runs);
    reference = stored.reference ?? null;
    await writeFileAtomic(path.join(o.out, 'report.md'), report(runs, reference));
    await plots(runs);
    return;
  }
  if (!o.fresh && existsSync(resultsFile)) {
    const stored = readResults();
    const budget = ['rounds', 'clients', 'perRound', 'maxLocalSteps', 'limit', 'model'] as const;
    if (budget.every((k) => stored.options[k] === o[k])) {
      runs.push(...stored.runs);
      reference = stored.reference ?? null;
    } else console.log(`${resultsFile} has runs with another budget; starting over`);
  }
  const save = () => writeFileAtomic(resultsFile, JSON.stringify({ options: o, reference, runs }, null, 2));
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
        console.log(`${task} α=${alpha} ${method}: ${pct(res.initial.accuracy)} → ${pct(last.accuracy)}, ${(sum(res.rounds.map((r) => r.wallMs)) / 1000).toFixed(0)} s, peak ${(peak(res.rounds) / 2 ** 20).toFixed(1)} MB`);
        runs.push({ task, alpha, method, initialAccuracy: res.initial.accuracy ?? 0, rounds: res.rounds, personalizedAccuracy: res.personalized?.accuracy ?? null, backend: res.init.backend });
        await save();
      }
  await writeFileAtomic(path.join(o.out, 'report.md'), report(runs, reference));
  await plots(runs);
  console.log(`report: ${path.join(o.out, 'report.md')}`);
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

/** Final accuracy this far above the untrained head's counts as having learned something. */
const LEARNED = 0.02;
const sum = (a: number[]) => a.reduce((s, x) => s + x, 0);
const max = (a: number[]) => Math.max(...a);
const pct = (a: number | null) => (a === null ? 'n/a' : `${(100 * a).toFixed(1)}%`);
const finalAcc = (r: Run) => r.rounds.at(-1)!.accuracy ?? 0;
/** Mean accuracy over the last SETTLE rounds: the claims compare this, since one round's accuracy swings by points. */
const SETTLE = 3;
const settledAcc = (r: Run) => sum(r.rounds.slice(-SETTLE).map((m) => m.accuracy ?? 0)) / Math.min(SETTLE, r.rounds.length);
const bestAcc = (r: Run) => max(r.rounds.map((m) => m.accuracy ?? 0));
const wall = (r: Run) => sum(r.rounds.map((m) => m.wallMs)) / 1000;
/** Peak training tensor memory (bytes) over a run's rounds. */
const peak = (rounds: RoundMetrics[]) => max(rounds.map((m) => m.peakTensorBytes));
/** TensorFlow.js's tensor peak is training memory only where training ran on TensorFlow.js */
const tensorPeakIsTraining = (r: Run) => !r.backend?.includes('onnxruntime');
const peakCell = (r: Run) => (tensorPeakIsTraining(r) ? (peak(r.rounds) / 2 ** 20).toFixed(1) : 'n/a (ONNX Runtime)');
/** Wall time (s) until a run first reaches `target` accuracy, or null. */
function timeTo(r: Run, target: number): number | null {
  let t = 0;
  for (const m of r.rounds) {
    t += m.wallMs / 1000;
    if ((m.accuracy ?? 0) >= target) return t;
  }
  return null;
}

function report(runs: Run[], reference: Reference | null): string {
  const lines = [
    '# Reproduction of the Spry paper\'s claims on the embedded model',
    '',
    `Generated by \`npm run reproduce\` (${o.rounds} rounds, ${o.clients} clients, ${o.perRound} per round, ${o.maxLocalSteps} local steps${o.limit > 0 ? `, at most ${o.limit} examples per client` : ''}, model ${o.model}).`,
    `Every run: the paper's adapter (LoRA r 1 on the attention projections, plus the head), batch 8, 64 tokens, local AdamW. Per method, ${[...new Set(runs.map((r) => r.method))]
      .map((m) => {
        const hp = hpFor(m);
        const server = METHODS[m as MethodName].server;
        return `${m}: lr ${hp.lr}, server ${server}${server === 'fedavg' ? '' : ` (η ${hp.serverLr}, τ ${hp.serverTau})`}`;
      })
      .join('; ')}.`,
    'Accuracy is generalized accuracy: the global adapter on every client\'s local test split, weighted by examples. "After local finetuning" is the paper\'s own metric: each client first trains the final adapter on its own data with the method\'s local training (— for runs made before it was recorded).',
    `The claims compare the mean accuracy of the last ${SETTLE} rounds (one round's accuracy swings by several points); "clearly below" means by at least 2 points; a claim measured against a baseline that gained less than ${100 * LEARNED} points over its untrained head reads n/a.`,
    '',
  ];
  if (reference) {
    const l = reference.lora;
    lines.push(
      `## Reference: what finetuning reaches on this model (${reference.task})`,
      '',
      `Backprop on all the training examples pooled in one client (no federation), LoRA r = ${l.r}, α = ${l.alpha} on ${l.targetModules.join(', ')} plus the head, AdamW lr ${reference.lr}, batch ${reference.batchSize}, ${reference.epochs} epochs; accuracy on a held-out 20 % of the examples (the federated runs hold out 20 % of each client's).`,
      '',
      '| | untrained head | ' + reference.rounds.map((r) => `epoch ${r.round}`).join(' | ') + ' |',
      '|---|---|' + reference.rounds.map(() => '---|').join(''),
      `| accuracy | ${pct(reference.initialAccuracy)} | ${reference.rounds.map((r) => pct(r.accuracy)).join(' | ')} |`,
      `| test loss | | ${reference.rounds.map((r) => r.testLoss.toFixed(4)).join(' | ')} |`,
      '',
    );
  }
  for (const task of new Set(runs.map((r) => r.task)))
    for (const alpha of new Set(runs.map((r) => r.alpha))) {
      const group = runs.filter((r) => r.task === task && r.alpha === alpha);
      if (group.length === 0) continue;
      const by = new Map(group.map((r) => [r.method, r]));
      lines.push(`## ${task}, α = ${alpha}`, '', `| method | initial | final | mean of the last ${SETTLE} rounds | best | after local finetuning | wall time (s) | peak tensor memory (MB) | bytes up per round |`, '|---|---|---|---|---|---|---|---|---|');
      for (const r of group)
        lines.push(`| ${r.method} | ${pct(r.initialAccuracy)} | ${pct(finalAcc(r))} | ${pct(settledAcc(r))} | ${pct(bestAcc(r))} | ${r.personalizedAccuracy == null ? '—' : pct(r.personalizedAccuracy)} | ${wall(r).toFixed(0)} | ${peakCell(r)} | ${Math.round(sum(r.rounds.map((m) => m.bytesUp)) / r.rounds.length)} |`);
      lines.push('', '| claim | holds? | figures |', '|---|---|---|');
      const claim = (name: string, ok: boolean | null, figures: string) => lines.push(`| ${name} | ${ok === null ? 'n/a' : ok ? 'yes' : 'no'} | ${figures} |`);
      const s = by.get('spry'), a = by.get('fedavg'), z = by.get('fedmezo'), f = by.get('fedfgd'), as = by.get('fedavgsplit');
      // a comparison with a baseline that never left its untrained accuracy says nothing either way
      const stuck = (r: Run) => settledAcc(r) - r.initialAccuracy < LEARNED;
      const noGain = (r: Run) => `${r.method} gained ${(100 * (settledAcc(r) - r.initialAccuracy)).toFixed(1)} points over its untrained head`;
      if (s && a) claim('Spry within 6 points of FedAvg', stuck(a) ? null : settledAcc(a) - settledAcc(s) <= 0.06, `Spry ${pct(settledAcc(s))}, FedAvg ${pct(settledAcc(a))}${stuck(a) ? `; ${noGain(a)}` : ''}`);
      if (s && z) {
        claim('Spry ≥ 5 points above FedMeZO at the same rounds', settledAcc(s) - settledAcc(z) >= 0.05, `Spry ${pct(settledAcc(s))}, FedMeZO ${pct(settledAcc(z))}`);
        const ts = timeTo(s, settledAcc(z));
        claim("Spry reaches FedMeZO's final accuracy in ≤ half its wall time", stuck(z) ? null : ts === null ? false : ts <= wall(z) / 2, `Spry ${ts === null ? 'never' : `${ts.toFixed(0)} s`}, FedMeZO ${wall(z).toFixed(0)} s${stuck(z) ? `; ${noGain(z)}` : ''}`);
      }
      if (s && f) claim('FedFgd (no split) clearly below Spry', settledAcc(s) - settledAcc(f) >= 0.02, `Spry ${pct(settledAcc(s))}, FedFgd ${pct(settledAcc(f))}`);
      if (a && as) claim('FedAvgSplit clearly below FedAvg', settledAcc(a) - settledAcc(as) >= 0.02, `FedAvg ${pct(settledAcc(a))}, FedAvgSplit ${pct(settledAcc(as))}`);
      if (s && a) {
        const ps = peak(s.rounds), pa = peak(a.rounds);
        if (tensorPeakIsTraining(s) && tensorPeakIsTraining(a))
          claim("Spry's peak training memory ≤ 1/3 of FedAvg's", ps * 3 <= pa, `Spry ${(ps / 2 ** 20).toFixed(1)} MB, FedAvg ${(pa / 2 ** 20).toFixed(1)} MB (${(pa / ps).toFixed(2)}×)`);
        else claim("Spry's peak training memory ≤ 1/3 of FedAvg's", null, 'trained on ONNX Runtime, whose memory `fedforward bench` measures per mode in its own process (ort-jvp, ort-backprop)');
      }
      lines.push('', `![accuracy vs rounds](${slug(task, alpha)}-rounds.png) ![accuracy vs wall time](${slug(task, alpha)}-time.png)`, '');
    }
  return lines.join('\n') + '\n';
}

const slug = (task: string, alpha: number) => `${task}-alpha${alpha}`;

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
