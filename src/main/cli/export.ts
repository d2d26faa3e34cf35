// `fedforward export --data-dir DIR [--round N] [--out DIR] [--merged] [--json]`: a committed
// round's adapter in PEFT format, or (--merged) a full Hugging Face checkpoint with the adapter
// folded into the base weights. Works on a stopped peer: it reads the data directory only.
import type { Command } from 'commander';
import path from 'node:path';
import { positiveInt } from './options.ts';
import { exportRound } from '../export/merge.ts';

export function exportCommand(program: Command): void {
  program
    .command('export')
    .description("export a committed round's adapter (PEFT format), or with --merged a full merged checkpoint")
    .requiredOption('--data-dir <dir>', "this peer's data directory")
    .option('--round <n>', 'a committed round (default: the newest)', positiveInt)
    .option('--out <dir>', 'destination folder, absent or empty (default: DATA_DIR/exports/…)')
    .option('--merged', 'write a full Hugging Face checkpoint with the adapter merged into the base weights')
    .option('--json', 'print {round, merged, dir, files} as JSON')
    .action(async (o) => {
      const ac = new AbortController();
      const onSignal = () => ac.abort();
      process.once('SIGINT', onSignal);
      let last = -1;
      const interactive = !o.json && process.stderr.isTTY;
      try {
        const r = await exportRound({
          dataDir: path.resolve(o.dataDir),
          ...(o.round !== undefined ? { round: o.round } : {}),
          ...(o.out ? { out: path.resolve(o.out) } : {}),
          merged: o.merged === true,
          signal: ac.signal,
          onProgress: (f, stage) => {
            const pct = Math.floor(f * 100);
            if (!interactive || pct === last) return;
            last = pct;
            process.stderr.write(`\r${String(pct).padStart(3)}% ${stage.slice(0, 70).padEnd(70)}`);
          },
        });
        if (interactive) process.stderr.write('\n');
        if (o.json) console.log(JSON.stringify({ round: r.round, merged: r.merged, family: r.family, task: r.task, dir: r.dir, files: r.files }, null, 2));
        else {
          console.log(`exported round ${r.round} (${r.merged ? 'merged checkpoint' : 'PEFT adapter'}) to ${r.dir}`);
          for (const f of r.files) console.log(`  ${path.basename(f)}`);
        }
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
}
