// LoRA (Hu et al. 2021) in PEFT's layout: lora_A [r, in], lora_B [out, r], y = xW + b + (α/r)·B(A·drop(x)).
// The adapter tensors are named as PEFT names them (without its "base_model.model." prefix), so the
// trainable set, the federation's messages and the exported adapter all speak one vocabulary.
import * as tf from '@tensorflow/tfjs';
import type { Unit } from '../../shared/units.ts';
import type { Dual } from '../fwd/dual.ts';

export interface LoraConfig {
  r: number;
  alpha: number;
  dropout: number;
  /** PEFT's target_modules: module names or name suffixes, e.g. ["q_proj", "v_proj"] or ["c_attn"] (see targetMatches) */
  targetModules: string[];
}

/** One trainable tensor: its PEFT name, shape and initialiser. */
export interface TrainableSpec {
  name: string;
  shape: number[];
  init: 'kaiming-uniform' | 'zeros' | 'normal-0.02';
}

export type { Unit };

/** Trainable tensors of the model, as Duals (a tangent on the perturbed ones, none on the rest). */
export type Params = Map<string, Dual>;

/** An adaptable module of a layer: [path inside the layer, in features, out features]. */
export type Site = [path: string, inFeatures: number, outFeatures: number];

/**
 * PEFT's rule (tuners_utils.check_target_module_exists): a list selects the modules whose full name
 * equals an entry or ends with "." + an entry; a string is a regular expression the full name must
 * match entirely. So ["c_proj"] selects both attn.c_proj and mlp.c_proj of GPT-2.
 */
export function targetMatches(targets: string | readonly string[], moduleName: string): boolean {
  if (typeof targets === 'string') return new RegExp(`^(?:${targets})$`).test(moduleName);
  return targets.some((t) => moduleName === t || moduleName.endsWith(`.${t}`));
}

/**
 * LoRA A [r, in] and B [out, r] for every site whose full module name PEFT's rule selects, layer by
 * layer in depth order (the order Spry's units follow). `layerPath(i)` is the HF path of layer i,
 * e.g. "model.layers.3". `fixed` names the model's other modules (embeddings, heads), which PEFT
 * could also select but this project does not adapt: a target that selects one is refused rather
 * than silently trained differently from what PEFT would load.
 */
export function adapterSpecs(cfg: LoraConfig, layers: number, layerPath: (i: number) => string, sites: Site[], fixed: string[]): TrainableSpec[] {
  const fixedHit = fixed.find((m) => targetMatches(cfg.targetModules, m));
  if (fixedHit !== undefined)
    throw new Error(`target_modules [${cfg.targetModules.join(', ')}] selects ${fixedHit}, which FedForward does not adapt (only the layers' linear projections)`);
  const out: TrainableSpec[] = [];
  for (let i = 0; i < layers; i++)
    for (const [path, inF, outF] of sites) {
      const module = `${layerPath(i)}.${path}`;
      if (targetMatches(cfg.targetModules, module))
        out.push(
          { name: `${module}.lora_A.weight`, shape: [cfg.r, inF], init: 'kaiming-uniform' },
          { name: `${module}.lora_B.weight`, shape: [outF, cfg.r], init: 'zeros' },
        );
    }
  return out;
}

/** The full names of the modules that carry a LoRA pair, in module order. */
export function adaptedModules(specs: readonly { name: string }[]): string[] {
  return specs.flatMap((s) => s.name.match(/^(.*)\.lora_A\.weight$/)?.[1] ?? []);
}

/** Fresh values for trainable tensors, as PEFT initialises them (A: kaiming-uniform with a=√5, B: 0). */
export function initTrainable(specs: TrainableSpec[], seed: number): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  specs.forEach((s, i) => {
    if (s.init === 'zeros') out.set(s.name, tf.zeros(s.shape));
    else if (s.init === 'normal-0.02') out.set(s.name, tf.randomNormal(s.shape, 0, 0.02, 'float32', seed + i));
    else {
      const bound = 1 / Math.sqrt(s.shape[1]);
      out.set(s.name, tf.randomUniform(s.shape, -bound, bound, 'float32', seed + i));
    }
  });
  return out;
}

/** Group trainable tensors into Spry units, in module order: each LoRA pair, then the head. */
export function unitsOf(specs: TrainableSpec[]): Unit[] {
  const units: Unit[] = [];
  const byName = new Map<string, Unit>();
  for (const s of specs) {
    const lora = s.name.match(/^(.*)\.lora_[AB]\.weight$/);
    const key = lora ? lora[1] : 'head';
    let u = byName.get(key);
    if (!u) {
      u = { name: key, tensors: [] };
      byName.set(key, u);
      units.push(u);
    }
    u.tensors.push(s.name);
  }
  return units;
}
