// Llama (Touvron et al. 2023) and its relatives (TinyLlama, SmolLM, stories260K), from a Hugging Face
// checkpoint, top to bottom as llama2.c reads it:
// embed → L × (RMSNorm → attention with RoPE (rope.ts) and grouped-query heads → residual,
//              RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head (tied or not).
// HF stores nn.Linear weights as [out, in]; they are transposed once here to the x @ W layout.
import * as tf from '@tensorflow/tfjs';
import { type Dual, add, constant, disposeDual, linear, mul, silu, takePositions, tidyDual, transpose } from '../fwd/dual.ts';
import { attention, attentionBias, mergeHeads, rmsNorm, rope, ropeTables, splitHeads } from '../fwd/blocks.ts';
import { type LoraConfig, type Linear, type TrainableSpec, adapterSpecs, loraLinear, siteSeed, unitsOf } from './lora.ts';
import { type Model, type ModelDims, type Task, type TensorMap, lastTokenIndex, need, runLayers, weight } from './model.ts';
import { ropeInvFreq } from './rope.ts';

export const LLAMA_DEFAULT_TARGETS = ['q_proj', 'v_proj'];

export function llamaDims(config: Record<string, unknown>): ModelDims {
  const heads = need<number>(config, 'num_attention_heads');
  return {
    vocabSize: need<number>(config, 'vocab_size'),
    hidden: need<number>(config, 'hidden_size'),
    layers: need<number>(config, 'num_hidden_layers'),
    heads,
    kvHeads: need<number>(config, 'num_key_value_heads', heads),
    intermediate: need<number>(config, 'intermediate_size'),
    maxPositions: need<number>(config, 'max_position_embeddings'),
  };
}

/** The trainable tensors, in module order: LoRA pairs on the targeted modules, then the head. */
export function llamaTrainable(dims: ModelDims, headDim: number, task: Task, lora: LoraConfig): TrainableSpec[] {
  const { hidden: d, layers, heads, kvHeads, intermediate: ff } = dims;
  const trainable = adapterSpecs(
    lora,
    layers,
    (i) => `model.layers.${i}`,
    [
      ['self_attn.q_proj', d, heads * headDim],
      ['self_attn.k_proj', d, kvHeads * headDim],
      ['self_attn.v_proj', d, kvHeads * headDim],
      ['self_attn.o_proj', heads * headDim, d],
      ['mlp.gate_proj', d, ff],
      ['mlp.up_proj', d, ff],
      ['mlp.down_proj', ff, d],
    ],
    ['model.embed_tokens', task.kind === 'causal-lm' ? 'lm_head' : 'score'],
  );
  if (task.kind === 'classification') trainable.push({ name: 'score.weight', shape: [task.numLabels, d], init: 'normal-0.02' });
  return trainable;
}

export function createLlama(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): Model {
  const dims = llamaDims(config);
  const { hidden: d, layers, heads, kvHeads, intermediate: ff, vocabSize, maxPositions } = dims;
  const headDim = need<number>(config, 'head_dim', d / heads);
  const eps = need<number>(config, 'rms_norm_eps', 1e-6);
  const invFreq = ropeInvFreq(config, headDim);
  if ((config.hidden_act ?? 'silu') !== 'silu') throw new Error(`config.json: hidden_act "${config.hidden_act}" is not supported (only silu)`);

  const base = new Map<string, tf.Tensor>();
  const w = (name: string, shape: number[]) => {
    const t = weight(tensors, name, shape);
    base.set(name, t);
    return t;
  };
  // nn.Linear [out, in] → [in, out]; the bias only where the checkpoint has one
  const lin = (name: string, inF: number, outF: number): Linear => {
    const wt = tf.tidy(() => tf.transpose(weight(tensors, `${name}.weight`, [outF, inF])));
    base.set(`${name}.weight`, wt);
    return { w: wt, b: tensors.has(`${name}.bias`) ? w(`${name}.bias`, [outF]) : null };
  };

  const embed = w('model.embed_tokens.weight', [vocabSize, d]);
  const blocks = Array.from({ length: layers }, (_, i) => {
    const p = `model.layers.${i}`;
    return {
      norm1: w(`${p}.input_layernorm.weight`, [d]),
      q: lin(`${p}.self_attn.q_proj`, d, heads * headDim),
      k: lin(`${p}.self_attn.k_proj`, d, kvHeads * headDim),
      v: lin(`${p}.self_attn.v_proj`, d, kvHeads * headDim),
      o: lin(`${p}.self_attn.o_proj`, heads * headDim, d),
      norm2: w(`${p}.post_attention_layernorm.weight`, [d]),
      gate: lin(`${p}.mlp.gate_proj`, d, ff),
      up: lin(`${p}.mlp.up_proj`, d, ff),
      down: lin(`${p}.mlp.down_proj`, ff, d),
    };
  });
  const norm = w('model.norm.weight', [d]);
  // tied checkpoints (stories260K, SmolLM) do not store lm_head
  const head = tensors.has('lm_head.weight') ? lin('lm_head', d, vocabSize).w : tf.transpose(embed);
  if (!tensors.has('lm_head.weight')) base.set('lm_head.weight', head);

  const trainable = llamaTrainable(dims, headDim, task, lora);

  const c = (t: tf.Tensor) => constant(t);

  return {
    family: 'llama',
    dims,
    task,
    lora,
    trainable,
    units: unitsOf(trainable),
    base,
    forward(batch, params, seed) {
      const [, T] = batch.ids.shape;
      if (T > maxPositions) throw new Error(`sequence length ${T} exceeds max_position_embeddings ${maxPositions}`);
      const bias = attentionBias(batch.mask, true);
      const { cos, sin } = ropeTables(T, invFreq);
      let h: Dual = constant(tf.gather(embed, batch.ids));
      h = runLayers(h, layers, (x, i) => {
        const blk = blocks[i];
        const ll = (x: Dual, l: Linear, path: string, site: number) =>
          loraLinear(x, l, `model.layers.${i}.${path}`, params, lora, siteSeed(seed, i, site));
        // each sublayer in its own scope, so attention's and the MLP's intermediates never coexist
        const x1 = tidyDual(() => {
          const a = rmsNorm(x, c(blk.norm1), eps);
          const q = rope(splitHeads(ll(a, blk.q, 'self_attn.q_proj', 0), heads), cos, sin);
          const k = rope(splitHeads(ll(a, blk.k, 'self_attn.k_proj', 1), kvHeads), cos, sin);
          const v = splitHeads(ll(a, blk.v, 'self_attn.v_proj', 2), kvHeads);
          return add(x, ll(mergeHeads(attention(q, k, v, bias)), blk.o, 'self_attn.o_proj', 3));
        });
        const m = rmsNorm(x1, c(blk.norm2), eps);
        const swiglu = mul(silu(ll(m, blk.gate, 'mlp.gate_proj', 4)), ll(m, blk.up, 'mlp.up_proj', 5));
        return add(x1, ll(swiglu, blk.down, 'mlp.down_proj', 6));
      });
      const out = tidyDual(() => {
        const hf = rmsNorm(h, c(norm), eps);
        if (task.kind === 'causal-lm') return linear(hf, c(head));
        const score = params.get('score.weight')!;
        return linear(takePositions(hf, lastTokenIndex(batch.mask)), transpose(score, [1, 0]));
      });
      tf.dispose([bias, cos, sin]);
      disposeDual(h);
      return out;
    },
    dispose() {
      for (const t of base.values()) t.dispose();
    },
  };
}
