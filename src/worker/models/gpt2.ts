// GPT-2 (Radford et al. 2019), read from a Hugging Face checkpoint, in the order data meets it:
// embeddings → n_layer × (LN → attention → residual, LN → MLP → residual) → LN → tied LM head.
// HF stores GPT-2's projections as Conv1D, weight [in, out]: exactly the x @ W layout used here,
// so no transpose is needed. q, k and v are packed in one c_attn projection.
import * as tf from '@tensorflow/tfjs';
import { type Dual, add, constant, disposeDual, geluErf, geluTanh, linear, split, takePositions, tidyDual, transpose } from '../fwd/dual.ts';
import { attention, attentionBias, layerNorm, mergeHeads, splitHeads } from '../fwd/blocks.ts';
import { type LoraConfig, type Linear, type TrainableSpec, adapterSpecs, loraLinear, siteSeed, unitsOf } from './lora.ts';
import { type Model, type ModelDims, type Task, type TensorMap, lastTokenIndex, need, runLayers, weight } from './model.ts';

export const GPT2_DEFAULT_TARGETS = ['c_attn'];

export function gpt2Dims(config: Record<string, unknown>): ModelDims {
  const hidden = need<number>(config, 'n_embd');
  const heads = need<number>(config, 'n_head');
  return {
    vocabSize: need<number>(config, 'vocab_size'),
    hidden,
    layers: need<number>(config, 'n_layer'),
    heads,
    kvHeads: heads,
    intermediate: (config.n_inner as number | null) ?? 4 * hidden,
    maxPositions: need<number>(config, 'n_positions'),
  };
}

/** The trainable tensors, in module order: LoRA pairs on the targeted modules, then the head. */
export function gpt2Trainable(dims: ModelDims, task: Task, lora: LoraConfig): TrainableSpec[] {
  const { hidden: d, layers, intermediate } = dims;
  const trainable = adapterSpecs(
    lora,
    layers,
    (i) => `transformer.h.${i}`,
    [
      ['attn.c_attn', d, 3 * d],
      ['attn.c_proj', d, d],
      ['mlp.c_fc', d, intermediate],
      ['mlp.c_proj', intermediate, d],
    ],
    ['transformer.wte', 'transformer.wpe', task.kind === 'causal-lm' ? 'lm_head' : 'score'],
  );
  if (task.kind === 'classification') trainable.push({ name: 'score.weight', shape: [task.numLabels, d], init: 'normal-0.02' });
  return trainable;
}

export function createGpt2(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): Model {
  const dims = gpt2Dims(config);
  const { hidden: d, layers, heads, intermediate, vocabSize, maxPositions } = dims;
  const eps = need<number>(config, 'layer_norm_epsilon', 1e-5);
  const gelu = config.activation_function === 'gelu' ? geluErf : geluTanh;
  // checkpoints saved from GPT2Model have no "transformer." prefix; GPT2LMHeadModel's have it
  const prefix = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const base = new Map<string, tf.Tensor>();
  const w = (name: string, shape: number[]) => {
    const t = weight(tensors, prefix + name, shape);
    base.set(name, t);
    return t;
  };
  const lin = (name: string, inF: number, outF: number): Linear => ({ w: w(`${name}.weight`, [inF, outF]), b: w(`${name}.bias`, [outF]) });

  const wte = w('wte.weight', [vocabSize, d]);
  const wpe = w('wpe.weight', [maxPositions, d]);
  const blocks = Array.from({ length: layers }, (_, i) => ({
    ln1: { g: w(`h.${i}.ln_1.weight`, [d]), b: w(`h.${i}.ln_1.bias`, [d]) },
    attn: lin(`h.${i}.attn.c_attn`, d, 3 * d),
    proj: lin(`h.${i}.attn.c_proj`, d, d),
    ln2: { g: w(`h.${i}.ln_2.weight`, [d]), b: w(`h.${i}.ln_2.bias`, [d]) },
    fc: lin(`h.${i}.mlp.c_fc`, d, intermediate),
    out: lin(`h.${i}.mlp.c_proj`, intermediate, d),
  }));
  const lnF = { g: w('ln_f.weight', [d]), b: w('ln_f.bias', [d]) };

  const trainable = gpt2Trainable(dims, task, lora);

  const c = (t: tf.Tensor) => constant(t);

  return {
    family: 'gpt2',
    dims,
    task,
    lora,
    trainable,
    units: unitsOf(trainable),
    base,
    forward(batch, params, seed) {
      const [, T] = batch.ids.shape;
      if (T > maxPositions) throw new Error(`sequence length ${T} exceeds n_positions ${maxPositions}`);
      const bias = attentionBias(batch.mask, true);
      let h: Dual = constant(tf.tidy(() => tf.add(tf.gather(wte, batch.ids), tf.slice(wpe, [0, 0], [T, d]))));
      h = runLayers(h, layers, (x, i) => {
        const blk = blocks[i];
        const mod = (path: string) => `transformer.h.${i}.${path}`;
        // each sublayer in its own scope, so attention's and the MLP's intermediates never coexist
        const x1 = tidyDual(() => {
          const a = layerNorm(x, c(blk.ln1.g), c(blk.ln1.b), eps);
          const [q, k, v] = split(loraLinear(a, blk.attn, mod('attn.c_attn'), params, lora, siteSeed(seed, i, 0)), [d, d, d]);
          const att = mergeHeads(attention(splitHeads(q, heads), splitHeads(k, heads), splitHeads(v, heads), bias));
          return add(x, loraLinear(att, blk.proj, mod('attn.c_proj'), params, lora, siteSeed(seed, i, 1)));
        });
        const m = layerNorm(x1, c(blk.ln2.g), c(blk.ln2.b), eps);
        const f = gelu(loraLinear(m, blk.fc, mod('mlp.c_fc'), params, lora, siteSeed(seed, i, 2)));
        return add(x1, loraLinear(f, blk.out, mod('mlp.c_proj'), params, lora, siteSeed(seed, i, 3)));
      });
      const out = tidyDual(() => {
        const hf = layerNorm(h, c(lnF.g), c(lnF.b), eps);
        if (task.kind === 'causal-lm') return linear(hf, c(tf.transpose(wte)));
        const score = params.get('score.weight')!;
        return linear(takePositions(hf, lastTokenIndex(batch.mask)), transpose(score, [1, 0]));
      });
      bias.dispose();
      disposeDual(h);
      return out;
    },
    dispose() {
      for (const t of base.values()) t.dispose();
    },
  };
}
