#!/usr/bin/env node
// The `fedforward` command line: one subcommand per file, each with --help; figures with --json.
import { Command } from 'commander';
import { generateCommand } from './generate.ts';
import { benchCommand } from './bench.ts';
import { simulateCommand } from './simulate.ts';
import { demoCommand } from './demo.ts';
import { serveCommand } from './serve.ts';
import { federationCommands } from './federation_commands.ts';
import { exportCommand } from './export.ts';

const program = new Command()
  .name('fedforward')
  .description('Federated finetuning of language models with forward-mode gradients (Spry)')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)');

generateCommand(program);
benchCommand(program);
simulateCommand(program);
demoCommand(program);
serveCommand(program);
federationCommands(program);
exportCommand(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  // one line, never a stack trace: bad input is the user's to fix, and the line says what
  const msg = e instanceof Error ? e.message : String(e);
  console.error(`fedforward: ${msg.split('\n')[0]}`);
  process.exit(1);
});
