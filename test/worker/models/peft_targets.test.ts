// target_modules means what PEFT means by it: the modules FedForward adapts, and the ones the exported
// adapter_config.json makes PEFT adapt, are the ones PEFT's rule selects on Hugging Face's module
// names. The oracle is peft/targets.json, written by peft/make_targets.py from PEFT's rule in Python.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import { adaptedModules, targetMatches } from '../../../src/worker/models/lora.ts';
import { randomCheckpoint, type RandomShape } from '../../../src/worker/models/random.ts';
import type { Task } from '../../../src/worker/models/model.ts';
import { adapterConfig } from '../../../src/main/export/peft.ts';

interface Case {
  target_modules: string[] | string;
  selected: string[];
}
const ORACLE = JSON.parse(readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'peft', 'targets.json'), 'utf8')) as {
  layers: number;
  families: Record<'gpt2' | 'llama' | 'bert', { modules: { name: string; kind: string }[]; cases: Case[] }>;
};

const L = ORACLE.layers;
const SHAPES: Record<'gpt2' | 'llama' | 'bert', RandomShape> = {
  gpt2: { family: 'gpt2', layers: L, hidden: 8, heads: 2, vocab: 16, positions: 8, intermediate: 12 },
  llama: { family: 'llama', layers: L, hidden: 8, heads: 2, kvHeads: 1, vocab: 16, positions: 8, intermediate: 12 },
  bert: { family: 'bert', layers: L, hidden: 8, heads: 2, vocab: 16, positions: 8, intermediate: 12 },
};
// the oracle's module lists are GPT2ForSequenceClassification, LlamaForCausalLM, BertForSequenceClassification
const TASKS: Record<string, Task> = { gpt2: { kind: 'classification', numLabels: 2 }, llama: { kind: 'causal-lm' }, bert: { kind: 'classification', numLabels: 2 } };

beforeAll(async () => {
  await initBackend('cpu');
});

describe.each(['gpt2', 'llama', 'bert'] as const)('%s: target_modules as PEFT matches them', (family) => {
  const { modules, cases } = ORACLE.families[family];
  const { config, tensors } = randomCheckpoint(SHAPES[family], 1);
  // FedForward's BERT has no pooler (bert.ts): it cannot adapt bert.pooler.dense, which PEFT's
  // ["dense"] also selects on BertForSequenceClassification; the exported full names keep PEFT off it.
  const ours = (c: Case) => c.selected.filter((m) => m !== 'bert.pooler.dense');

  it.each(cases.filter((c) => Array.isArray(c.target_modules)).map((c) => [JSON.stringify(c.target_modules), c] as const))(
    '%s: the adapted modules, and the exported target_modules, are the ones PEFT selects',
    (_, c) => {
      const model = createModel(config, tensors, TASKS[family], { targetModules: c.target_modules as string[] });
      try {
        expect(adaptedModules(model.trainable)).toEqual(ours(c));
        const info = { family, task: model.task.kind, r: 1, alpha: 1, dropout: 0, targetModules: c.target_modules as string[], baseModel: '/m' } as const;
        const exported = adapterConfig(info, model.trainable).target_modules as string[];
        // a full name selects itself only: no module's name ends in "." + another's full name
        const peftSelects = modules.filter((m) => m.kind === 'linear' && exported.some((t) => m.name === t || m.name.endsWith(`.${t}`))).map((m) => m.name);
        expect(peftSelects).toEqual(ours(c));
      } finally {
        model.dispose();
      }
    },
  );

  it('a regular expression must match the whole name (re.fullmatch)', () => {
    for (const c of cases.filter((c) => typeof c.target_modules === 'string'))
      expect(modules.filter((m) => m.kind === 'linear' && targetMatches(c.target_modules, m.name)).map((m) => m.name)).toEqual(c.selected);
  });
});

describe('targets FedForward cannot adapt are refused, not skipped', () => {
  it('an embedding or the head', () => {
    const gpt2 = randomCheckpoint(SHAPES.gpt2, 1);
    expect(() => createModel(gpt2.config, gpt2.tensors, TASKS.gpt2, { targetModules: ['c_attn', 'wte'] })).toThrow(/^target_modules \[c_attn, wte\] selects transformer\.wte, which FedForward does not adapt/);
    const llama = randomCheckpoint(SHAPES.llama, 1);
    expect(() => createModel(llama.config, llama.tensors, TASKS.llama, { targetModules: ['lm_head'] })).toThrow(/selects lm_head/);
    expect(() => createModel(llama.config, llama.tensors, TASKS.llama, { targetModules: ['proj'] })).toThrow(/^no module of this llama model matches target_modules \[proj\]/);
  });
});
