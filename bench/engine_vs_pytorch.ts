// The engine benchmark in one run: for each shape, the ONNX Runtime engine's jvp, inference and
// backprop steps (and TensorFlow.js's forward and inference steps, unless --no-tfjs) from `fedforward bench`, then
// bench/pytorch_jvp.py's on the same shape, threads and batch, and the ratios the engine issue
// asks for. Every mode runs in its own process, one after the other.
//
//   node bench/engine_vs_pytorch.ts [--shapes 4x256,small] [--threads 2] [--steps 3] [--no-tfjs] [--no-pytorch] [--json]
//
// Ratios are given of the median step times and of the fastest steps: on a shared machine the
// fastest step is the one least disturbed by other work.
//
// The PyTorch side runs when a Python with torch is found ($FEDFORWARD_PYTHON, /usr/bin/python3,
// python3); OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are unset for it.
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { type BenchMode, type ModeResult, runBench } from '../src/worker/bench.ts';

const { values: o } = parseArgs({
  options: {
    shapes: { type: 'string', default: '4x256,small' },
    threads: { type: 'string', default: String(os.availableParallelism()) },
    steps: { type: 'string', default: '3' },
    'no-tfjs': { type: 'boolean', default: false },
    'no-pytorch': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});

// shape → the bench's random model, batch and sequence length (the engine issue's two shapes)
const SHAPES: Record<string, { model: string; batch: number; seq: number }> = {
  '4x256': { model: 'gpt2-4x256-random', batch: 8, seq: 64 },
  small: { model: 'gpt2-small-random', batch: 8, seq: 128 },
};

function python(): string | null {
  for (const exe of [process.env.FEDFORWARD_PYTHON, '/usr/bin/python3', 'python3'].filter((x): x is string => !!x)) {
    const r = spawnSync(exe, ['-c', 'import torch'], { stdio: 'ignore' });
    if (r.status === 0) return exe;
  }
  return null;
}

const threads = Number(o.threads);
const steps = Number(o.steps);
const py = o['no-pytorch'] ? null : python();
const report: Record<string, unknown> = { threads, steps, cores: os.availableParallelism() };
for (const shape of o.shapes!.split(',')) {
  const s = SHAPES[shape];
  if (!s) throw new Error(`unknown shape "${shape}" (shapes: ${Object.keys(SHAPES).join(', ')})`);
  const modes: BenchMode[] = ['ort-jvp', 'ort-inference', 'ort-backprop', 'ort-weights', ...(o['no-tfjs'] ? [] : (['forward', 'inference'] as BenchMode[]))];
  const ours = await runBench({ ...s, steps, layers: 'all', k: 1, backend: 'auto', threads }, modes, (r) => console.error(`  ${shape} ${r.mode}: ${(r.medianStepMs / 1000).toFixed(3)} s`));
  const by = (m: string) => ours.find((r: ModeResult) => r.mode === m)!;
  let torch: { torch: string; results: { mode: string; medianStepMs: number | null; stepMs: number[]; peakRssBytes: number }[] } | null = null;
  if (py) {
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const script = fileURLToPath(new URL('./pytorch_jvp.py', import.meta.url));
    const r = spawnSync(py, [script, '--shape', shape, '--batch', String(s.batch), '--seq', String(s.seq), '--steps', String(steps), '--threads', String(threads)], { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`pytorch_jvp.py failed: ${r.stderr.trim().split('\n').pop()}`);
    torch = JSON.parse(r.stdout);
    for (const m of torch!.results) console.error(`  ${shape} torch ${m.mode}: ${m.medianStepMs === null ? '-' : (m.medianStepMs / 1000).toFixed(3)} s`);
  }
  const pt = (m: string) => torch?.results.find((r) => r.mode === m);
  const fastest = (r: { stepMs: number[] }) => Math.min(...r.stepMs);
  const ratios: Record<string, number> = {
    'ort jvp / ort inference': by('ort-jvp').medianStepMs / by('ort-inference').medianStepMs,
    'ort jvp / ort inference (fastest steps)': fastest(by('ort-jvp')) / fastest(by('ort-inference')),
    'ort jvp working memory / ort backprop working memory': (by('ort-jvp').peakRssBytes - by('ort-weights').peakRssBytes) / (by('ort-backprop').peakRssBytes - by('ort-weights').peakRssBytes),
  };
  if (!o['no-tfjs']) {
    ratios['ort jvp / tfjs jvp'] = by('ort-jvp').medianStepMs / by('forward').medianStepMs;
    ratios['ort jvp / tfjs jvp (fastest steps)'] = fastest(by('ort-jvp')) / fastest(by('forward'));
  }
  if (torch) {
    ratios['ort jvp / pytorch jvp'] = by('ort-jvp').medianStepMs / pt('jvp')!.medianStepMs!;
    ratios['ort jvp / pytorch jvp (fastest steps)'] = fastest(by('ort-jvp')) / fastest(pt('jvp')!);
    ratios['ort inference / pytorch inference'] = by('ort-inference').medianStepMs / pt('inference')!.medianStepMs!;
    ratios['ort jvp peak RSS / pytorch jvp peak RSS'] = by('ort-jvp').peakRssBytes / pt('jvp')!.peakRssBytes;
    ratios['pytorch jvp / pytorch inference'] = pt('jvp')!.medianStepMs! / pt('inference')!.medianStepMs!;
  }
  report[shape] = { ...s, ours, pytorch: torch ?? 'no Python with torch found', ratios };
  if (!o.json) {
    console.log(`${shape} (batch ${s.batch}, seq ${s.seq}, ${threads} threads; ${by('ort-jvp').backend}${torch ? `; PyTorch ${torch.torch}` : ''})`);
    for (const [k, v] of Object.entries(ratios)) console.log(`  ${k}: ${v.toFixed(2)}`);
  }
}
if (o.json) console.log(JSON.stringify(report, null, 2));
