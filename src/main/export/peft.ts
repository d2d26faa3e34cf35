// Export of the global adapter in the format Hugging Face PEFT loads: adapter_config.json and
// adapter_model.safetensors with PEFT's tensor names (lora_A [r, in], lora_B [out, r]).
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../shared/atomic_write.ts';
import { serializeSafetensors } from '../../worker/io/safetensors.ts';
import type { TensorSpec, Weights } from '../../shared/units.ts';

export interface AdapterInfo {
  family: 'gpt2' | 'llama' | 'bert';
  task: 'classification' | 'causal-lm';
  r: number;
  alpha: number;
  dropout: number;
  targetModules: string[];
  baseModel: string;
  labels?: string[];
}

const HEAD_MODULE = { gpt2: 'score', llama: 'score', bert: 'classifier' } as const;

export function adapterConfig(info: AdapterInfo): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: info.task === 'classification' ? 'SEQ_CLS' : 'CAUSAL_LM',
    base_model_name_or_path: info.baseModel,
    r: info.r,
    lora_alpha: info.alpha,
    lora_dropout: info.dropout,
    target_modules: info.targetModules,
    // GPT-2's Conv1D stores weights [in, out]; PEFT must know to transpose when merging
    fan_in_fan_out: info.family === 'gpt2',
    bias: 'none',
    modules_to_save: info.task === 'classification' ? [HEAD_MODULE[info.family]] : null,
    inference_mode: true,
    ...(info.labels ? { fedforward_labels: info.labels } : {}),
  };
}

/** Writes DIR/adapter_config.json and DIR/adapter_model.safetensors (atomically); returns the paths. */
export async function exportPeftAdapter(dir: string, info: AdapterInfo, specs: TensorSpec[], weights: Weights): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map(specs.map((s) => {
    const data = weights.get(s.name);
    if (!data) throw new Error(`the adapter lacks tensor "${s.name}"`);
    return [`base_model.model.${s.name}`, { shape: s.shape, data }];
  }));
  const cfgPath = path.join(dir, 'adapter_config.json');
  const modelPath = path.join(dir, 'adapter_model.safetensors');
  await writeFileAtomic(modelPath, serializeSafetensors(tensors, { metadata: { format: 'pt' } }));
  await writeFileAtomic(cfgPath, JSON.stringify(adapterConfig(info), null, 2) + '\n');
  return [cfgPath, modelPath];
}
