// Model families by Hugging Face model_type, and loading a model directory from disk. Each family is
// its IR graph (src/worker/engine/models/); the Model here runs it with TensorFlow.js ops.
import type { LoraConfig } from './lora.ts';
import type { Family, Model, Task, TensorMap } from './model.ts';
import type { IrModel } from '../engine/model.ts';
import { GPT2_DEFAULT_TARGETS, gpt2 } from '../engine/models/gpt2.ts';
import { LLAMA_DEFAULT_TARGETS, llama } from '../engine/models/llama.ts';
import { BERT_DEFAULT_TARGETS, bert } from '../engine/models/bert.ts';
import { interpretedModel } from './ir_model.ts';
import { loadHfDir } from '../io/hf_dir.ts';
import type { Tokenizer } from '../io/tokenizer.ts';

const FAMILIES: Record<string, Family> = {
  gpt2: 'gpt2',
  llama: 'llama',
  mistral: 'llama',
  bert: 'bert',
  roberta: 'bert',
};

const IR = { gpt2, llama, bert } as const;

/** The paper's adapter: LoRA r = 1, α = 1, dropout 0.1 on the attention query and value projections. */
export function defaultLora(family: Family): LoraConfig {
  const targetModules = { gpt2: GPT2_DEFAULT_TARGETS, llama: LLAMA_DEFAULT_TARGETS, bert: BERT_DEFAULT_TARGETS }[family];
  return { r: 1, alpha: 1, dropout: 0.1, targetModules };
}

export function familyOf(config: Record<string, unknown>): Family {
  const type = String(config.model_type ?? '');
  const family = FAMILIES[type];
  if (!family) throw new Error(`unsupported model_type "${type}" in config.json (supported: ${Object.keys(FAMILIES).join(', ')})`);
  return family;
}

/** The family's IR graph for a checkpoint, task and adapter (what ONNX Runtime runs). */
export function irModel(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): IrModel {
  return IR[familyOf(config)](config, tensors, task, lora);
}

export function createModel(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: Partial<LoraConfig> = {}): Model {
  const family = familyOf(config);
  const cfg = { ...defaultLora(family), ...lora };
  if (!(cfg.r >= 1 && Number.isInteger(cfg.r))) throw new Error(`LoRA rank must be a positive integer, got ${cfg.r}`);
  if (!(cfg.dropout >= 0 && cfg.dropout < 1)) throw new Error(`LoRA dropout must be in [0, 1), got ${cfg.dropout}`);
  const ir = irModel(config, tensors, task, cfg);
  const adapted = ir.trainable.filter((s) => s.name.includes('.lora_')).length;
  if (cfg.targetModules.length > 0 && adapted === 0)
    throw new Error(`no module of this ${family} model matches target_modules [${cfg.targetModules.join(', ')}]`);
  return interpretedModel(ir);
}

export interface LoadedModel {
  model: Model;
  tokenizer: Tokenizer | null;
  config: Record<string, unknown>;
  /** the checkpoint's tensors as read (Hugging Face names and layout) */
  tensors: TensorMap;
  dir: string;
}

/** Load a Hugging Face directory from disk (never downloads). */
export async function loadModel(dir: string, task: Task, lora: Partial<LoraConfig> = {}): Promise<LoadedModel> {
  const hf = await loadHfDir(dir);
  return { model: createModel(hf.config, hf.tensors, task, lora), tokenizer: hf.tokenizer, config: hf.config, tensors: hf.tensors, dir: hf.dir };
}
