// Export of the global adapter in the format Hugging Face PEFT loads: adapter_config.json and
// adapter_model.safetensors with PEFT's tensor names (lora_A [r, in], lora_B [out, r]), plus
// fedforward.json beside them for what is the project's own (label names, the targets as asked),
// since PEFT takes any key it does not know as a sign of a newer PEFT and warns.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { serializeSafetensors } from '../../worker/io/safetensors.ts';
import { adaptedModules } from '../../worker/models/lora.ts';
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
