// `fedforward generate`: text from a loaded checkpoint, the quickest proof that it loaded right;
// with --adapter, a PEFT LoRA adapter applied on top (a classification adapter prints its class
// logits instead); with --ids --json, token ids in and the ids and last prompt position's logits out,
// so any checkpoint (even without a tokenizer) can be compared with Hugging Face transformers
// (bench/check_peft.py does).
import { type Command, InvalidArgumentError } from 'commander';
import path from 'node:path';
import { backendOption, nonNegativeNumber, positiveInt } from './options.ts';
import { initBackend } from '../../worker/backend.ts';
import { loadModel } from '../../worker/models/index.ts';
import { resolveModelDir } from '../../worker/models/embedded.ts';
import { plainParams, type Model, type Task } from '../../worker/models/model.ts';
import { startRunner } from '../../worker/engine/index.ts';
import { type Decoder, argmax, generate, onEngine, onTfjs } from '../../worker/generate.ts';
import type { Weights } from '../../shared/units.ts';
import * as tf from '@tensorflow/tfjs';
import { readPeftAdapter, type PeftAdapter } from '../export/peft.ts';

function tokenIds(v: string): number[] {
  const ids = v.split(',').map((s) => Number(s.trim()));
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0)) throw new InvalidArgumentError('expected comma-separated token ids, e.g. 3,17,42');
  return ids;
}

export function generateCommand(program: Command): void {
  program
    .command('generate')
    .description('generate text from a Hugging Face model directory (greedy unless --temperature > 0)')
    .option('--model <dir>', 'model directory (config.json, model.safetensors, tokenizer.json), or "embedded" (default: the adapter\'s base_model_name_or_path, else embedded)', 'embedded')
    .option('--adapter <dir>', 'a PEFT LoRA adapter (adapter_config.json, adapter_model.safetensors) to apply; a classification (SEQ_CLS) adapter prints the class logits of the prompt')
    .option('--prompt <text>', 'prompt text', '')
    .option('--ids <list>', 'the prompt as token ids (e.g. 3,17,42) instead of --prompt; needs no tokenizer', tokenIds)
    .option('--max-new-tokens <n>', 'tokens to generate', positiveInt, 64)
    .option('--temperature <t>', 'sampling temperature; 0 = greedy', nonNegativeNumber, 0)
    .option('--top-k <k>', 'sample among the k most likely tokens (0 = all)', (v) => (v === '0' ? 0 : positiveInt(v)), 0)
    .option('--seed <n>', 'seed for sampling', positiveInt, 1)
    .option('--json', 'print the result as JSON (with --ids: also the logits of the last prompt position)')
    .addOption(backendOption())
    .action(async (o, cmd: Command) => {
      if (o.ids && o.prompt) throw new Error('give --prompt or --ids, not both');
      const backend = await initBackend(o.backend);
      const adapter = o.adapter ? await readPeftAdapter(path.resolve(o.adapter)) : null;
      const task = adapter ? adapterTask(adapter, o.adapter) : ({ kind: 'causal-lm' } as const);
      const modelDir = cmd.getOptionValueSource('model') === 'default' && adapter?.baseModel ? resolveModelDir(adapter.baseModel) : resolveModelDir(o.model);
      const { model, tokenizer, dir } = await loadModel(modelDir, task, adapter?.lora ?? { targetModules: [] });
      const values = adapter ? adapterValues(model, adapter, o.adapter) : new Map<string, Float32Array>();
      const engine = await startRunner(model, dir);
      const adapterTensors = engine.runner ? null : new Map(model.trainable.map((s) => [s.name, tf.tensor(values.get(s.name)!, s.shape, 'float32')]));
      const decoder: Decoder = engine.runner ? onEngine(engine.runner, values) : onTfjs(model, plainParams(adapterTensors!));
      const backendName = engine.runner ? engine.detail : backend.name;
      try {
        let prompt: number[];
        if (o.ids) {
          prompt = o.ids;
          const bad = prompt.find((id) => id >= model.dims.vocabSize);
          if (bad !== undefined) throw new Error(`token id ${bad} is outside the vocabulary (vocab_size ${model.dims.vocabSize})`);
        } else {
          if (!tokenizer) throw new Error(`${modelDir} has no tokenizer: give the prompt as --ids`);
          prompt = tokenizer.encode(o.prompt);
          if (prompt.length === 0) throw new Error('the prompt encodes to no tokens and the tokenizer adds no BOS: give --prompt');
        }
        if (task.kind === 'classification') {
          // a classification adapter generates nothing: its class logits are what can be checked
          const logits = Array.from(await decoder.logits(prompt));
          const labels = adapter?.labels?.length === logits.length ? adapter.labels : logits.map((_, i) => `LABEL_${i}`);
          const label = labels[argmax(logits)];
          if (o.json) console.log(JSON.stringify({ prompt: o.ids ? null : o.prompt, promptIds: prompt, logits, labels, label, backend: backendName }));
          else console.log(`${label} (${labels.map((l, i) => `${l} ${logits[i]!.toFixed(4)}`).join(', ')})`);
          return;
        }
        const t0 = performance.now();
        const ids = await generate(decoder, prompt, {
          maxNewTokens: o.maxNewTokens,
          temperature: o.temperature,
          topK: o.topK,
          seed: o.seed,
          stopId: tokenizer?.eosId ?? null,
        });
        const seconds = (performance.now() - t0) / 1000;
        const text = tokenizer ? tokenizer.decode(ids, { skipSpecialTokens: true }) : null;
        if (o.json) {
          const lastLogits = o.ids ? Array.from(await decoder.logits(prompt.slice(-model.dims.maxPositions))) : undefined;
          console.log(JSON.stringify({ prompt: o.ids ? null : o.prompt, promptIds: prompt, ids, text, lastLogits, backend: backendName, seconds }));
        } else if (text !== null) console.log(o.prompt + text);
        else console.log(ids.join(','));
      } finally {
        if (adapterTensors) tf.dispose([...adapterTensors.values()]);
        model.dispose();
      }
    });
}

/** The task an adapter was trained for: CAUSAL_LM, or SEQ_CLS with as many labels as its head has rows. */
function adapterTask(adapter: PeftAdapter, dir: string): Task {
  if (adapter.taskType === 'CAUSAL_LM') return { kind: 'causal-lm' };
  if (adapter.taskType !== 'SEQ_CLS') throw new Error(`${dir}: task_type ${adapter.taskType} is neither CAUSAL_LM nor SEQ_CLS`);
  const head = adapter.tensors.get('score.weight') ?? adapter.tensors.get('classifier.weight');
  if (!head) throw new Error(`${dir}: a SEQ_CLS adapter without its head (score.weight or classifier.weight)`);
  return { kind: 'classification', numLabels: head.shape[0]! };
}

/** The adapter's tensors as the model's trainable tensors: exactly the ones the model expects, shapes checked. */
function adapterValues(model: Model, adapter: PeftAdapter, dir: string): Weights {
  const values: Weights = new Map();
  for (const spec of model.trainable) {
    const t = adapter.tensors.get(spec.name);
    if (!t) throw new Error(`${dir}: the adapter has no tensor ${spec.name}`);
    if (t.shape.join(',') !== spec.shape.join(',')) throw new Error(`${dir}: tensor ${spec.name} has shape [${t.shape}], the model needs [${spec.shape}]`);
    values.set(spec.name, t.data);
  }
  const extra = [...adapter.tensors.keys()].find((n) => !values.has(n));
  if (extra !== undefined) throw new Error(`${dir}: the adapter's tensor ${extra} has no place in this model`);
  return values;
}
