// Export of the global adapter in the format Hugging Face PEFT loads: adapter_config.json and
// adapter_model.safetensors with PEFT's tensor names (lora_A [r, in], lora_B [out, r]), plus
// fedforward.json beside them for what is the project's own (label names, the targets as asked),
// since PEFT takes any key it does not know as a sign of a newer PEFT and warns.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { readSafetensorsFile, serializeSafetensors } from '../../worker/io/safetensors.ts';
import { type LoraConfig, adaptedModules, targetMatches } from '../../worker/models/lora.ts';
import type { TensorSpec, Weights } from '../../shared/units.ts';

export interface AdapterInfo {
  family: 'gpt2' | 'llama' | 'bert';
  task: 'classification' | 'causal-lm';
  r: number;
  alpha: number;
  dropout: number;
  /** the target_modules the federation was configured with (PEFT's rule, see lora.ts) */
  targetModules: string[];
  /** the base model's directory; written as an absolute path, which AutoPeftModel* resolves */
  baseModel: string;
  labels?: string[];
}

/** What FedForward keeps beside adapter_config.json (fedforward.json). */
export interface FedForwardMeta {
  family: AdapterInfo['family'];
  task: AdapterInfo['task'];
  target_modules: string[];
  labels?: string[];
}

export const ADAPTER_CONFIG = 'adapter_config.json';
export const ADAPTER_WEIGHTS = 'adapter_model.safetensors';
export const FEDFORWARD_META = 'fedforward.json';

const HEAD_MODULE = { gpt2: 'score', llama: 'score', bert: 'classifier' } as const;

/**
 * adapter_config.json, with only keys PEFT's LoraConfig knows. target_modules lists the full name of
 * every adapted module: under PEFT's matching rule (equal, or ending in "." + entry) such a list
 * selects exactly those modules, whatever else the loaded model contains (a BERT pooler's "dense").
 */
export function adapterConfig(info: AdapterInfo, specs: readonly { name: string }[]): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: info.task === 'classification' ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: path.resolve(info.baseModel),
    r: info.r,
    lora_alpha: info.alpha,
    lora_dropout: info.dropout,
    target_modules: adaptedModules(specs),
    // GPT-2's Conv1D stores weights [in, out]; PEFT must know to transpose when merging
    fan_in_fan_out: info.family === 'gpt2',
    bias: 'none',
    modules_to_save: info.task === 'classification' ? [HEAD_MODULE[info.family]] : null,
    inference_mode: true,
  };
}

/** Writes DIR/adapter_config.json, DIR/adapter_model.safetensors and DIR/fedforward.json (each atomically); returns the paths. */
export async function exportPeftAdapter(dir: string, info: AdapterInfo, specs: TensorSpec[], weights: Weights): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map(specs.map((s) => {
    const data = weights.get(s.name);
    if (!data) throw new Error(`the adapter lacks tensor "${s.name}"`);
    return [`base_model.model.${s.name}`, { shape: s.shape, data }];
  }));
  const cfgPath = path.join(dir, ADAPTER_CONFIG);
  const modelPath = path.join(dir, ADAPTER_WEIGHTS);
  const metaPath = path.join(dir, FEDFORWARD_META);
  const meta: FedForwardMeta = { family: info.family, task: info.task, target_modules: info.targetModules, ...(info.labels ? { labels: info.labels } : {}) };
  await writeFileAtomic(modelPath, serializeSafetensors(tensors, { metadata: { format: 'pt' } }));
  await writeFileAtomic(metaPath, JSON.stringify(meta, null, 2) + '\n');
  await writeFileAtomic(cfgPath, JSON.stringify(adapterConfig(info, specs), null, 2) + '\n');
  return [cfgPath, modelPath, metaPath];
}

/** A PEFT LoRA adapter read from disk: its settings, and its tensors by FedForward's (PEFT's unprefixed) names. */
export interface PeftAdapter {
  taskType: string | null;
  /** base_model_name_or_path */
  baseModel: string | null;
  /** target_modules: the full names of the modules the file adapts */
  lora: LoraConfig;
  tensors: Map<string, { shape: number[]; data: Float32Array }>;
  /** the class names fedforward.json gives a classification adapter (null without that file) */
  labels: string[] | null;
}

const PREFIX = 'base_model.model.';

/**
 * Reads DIR/adapter_config.json and DIR/adapter_model.safetensors as PEFT would load them (and the
 * label names from fedforward.json when a FedForward export wrote one). LoRA variants that compute
 * otherwise (DoRA, rsLoRA, per-module ranks, trained biases) are refused in one line, not misapplied.
 */
export async function readPeftAdapter(dir: string): Promise<PeftAdapter> {
  const cfg = await readJson(path.join(dir, ADAPTER_CONFIG));
  const fail = (why: string): never => {
    throw new Error(`${path.join(dir, ADAPTER_CONFIG)}: ${why}`);
  };
  if (cfg.peft_type !== 'LORA') fail(`peft_type ${JSON.stringify(cfg.peft_type)} is not LORA`);
  const r = cfg.r;
  const alpha = cfg.lora_alpha;
  if (typeof r !== 'number' || !Number.isInteger(r) || r < 1) fail(`r must be a positive integer, got ${JSON.stringify(r)}`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) fail(`lora_alpha must be a number, got ${JSON.stringify(alpha)}`);
  for (const key of ['use_dora', 'use_rslora', 'lora_bias']) if (cfg[key] === true) fail(`${key} is not supported`);
  for (const key of ['rank_pattern', 'alpha_pattern'])
    if (cfg[key] && Object.keys(cfg[key] as object).length > 0) fail(`${key} is not supported`);
  if ((cfg.bias ?? 'none') !== 'none') fail(`bias "${cfg.bias}" is not supported (only "none")`);
  const targets = cfg.target_modules;
  if (!(typeof targets === 'string' || (Array.isArray(targets) && targets.every((t) => typeof t === 'string')))) fail('target_modules must be a list of names or a regular expression');

  const file = path.join(dir, ADAPTER_WEIGHTS);
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const [name, t] of (await readSafetensorsFile(file)).tensors) {
    if (!name.startsWith(PREFIX)) throw new Error(`${file}: tensor "${name}" lacks PEFT's "${PREFIX}" prefix`);
    if (!(t.data instanceof Float32Array)) throw new Error(`${file}: tensor "${name}" is not floating point`);
    tensors.set(name.slice(PREFIX.length), { shape: t.shape, data: t.data });
  }
  const modules = adaptedModules([...tensors.keys()].map((name) => ({ name })));
  if (modules.length === 0) throw new Error(`${file} holds no lora_A tensor`);
  // PEFT loads a module's tensors only where target_modules selects the module
  const unselected = modules.find((m) => !targetMatches(targets as string | string[], m));
  if (unselected !== undefined) fail(`target_modules does not select ${unselected}, whose tensors adapter_model.safetensors holds`);

  const metaPath = path.join(dir, FEDFORWARD_META);
  const labels = existsSync(metaPath) ? (await readJson(metaPath)).labels : undefined;
  return {
    taskType: typeof cfg.task_type === 'string' ? cfg.task_type : null,
    baseModel: typeof cfg.base_model_name_or_path === 'string' ? cfg.base_model_name_or_path : null,
    lora: { r: r as number, alpha: alpha as number, dropout: 0, targetModules: modules },
    tensors,
    labels: Array.isArray(labels) && labels.every((l) => typeof l === 'string') ? labels : null,
  };
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${file} is not a JSON object`);
  return value as Record<string, unknown>;
}
