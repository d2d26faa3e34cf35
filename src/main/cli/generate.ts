// `fedforward generate`: text from a loaded checkpoint, the quickest proof that it loaded right.
import type { Command } from 'commander';
import { backendOption, nonNegativeNumber, positiveInt } from './options.ts';
import { initBackend } from '../../worker/backend.ts';
import { loadModel } from '../../worker/models/index.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';
import { generate } from '../../worker/generate.ts';

export function generateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate text from a Hugging Face model directory (greedy unless --temperature > 0)')
    .option('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json), or "embedded"', 'embedded')
    .option('--prompt <text>', 'prompt text', '')
    .option('--max-new-tokens <n>', 'tokens to generate', positiveInt, 64)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', nonNegativeNumber, 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', (v) => (v === '0' ? 0 : positiveInt(v)), 0)
    .option('--seed <n>', 'seed for sampling', positiveInt, 1)
    .option('--json', 'print the result as JSON')
    .addOption(backendOption())
    .action(async (o) => {
      const backend = await initBackend(o.backend);
      const { model, tokenizer } = await loadModel(resolveModelDir(o.model), { kind: 'causal-lm' }, { targetModules: [] });
      if (!tokenizer) throw new Error(`${o.model} has no tokenizer.json`);
      const prompt = tokenizer.encode(o.prompt);
      if (prompt.length === 0) throw new Error('the prompt encodes to no tokens and the tokenizer adds no BOS: give --prompt');
      const t0 = performance.now();
      const ids = generate(model, prompt, {
        maxNewTokens: o.maxNewTokens,
        temperature: o.temperature,
        topK: o.topK,
        seed: o.seed,
        stopId: tokenizer.eosId,
      });
      const text = tokenizer.decode(ids, { skipSpecialTokens: true });
      const seconds = (performance.now() - t0) / 1000;
      if (o.json) console.log(JSON.stringify({ prompt: o.prompt, promptIds: prompt, ids, text, backend: backend.name, seconds }));
      else console.log(o.prompt + text);
      model.dispose();
    });
}
