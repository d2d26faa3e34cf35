// Llama (Touvron et al. 2023) and its relatives (TinyLlama, SmolLM, stories260K) against the IR,
// top to bottom as llama2.c reads it:
// embed → L × (RMSNorm → attention with RoPE and grouped-query heads → residual,
//              RMSNorm → SwiGLU MLP → residual) → RMSNorm → LM head (tied or not) or `score.weight`.
// HF stores nn.Linear weights as [out, in]; they are transposed once, on the host, to x @ W, so the
// graph's MatMuls read initializers directly (and a tangent's rows can stack onto the value's).
import type { ModelDims, Task, TensorMap } from '../../models/model.ts';
import { need } from '../../models/model.ts';
import { type LoraConfig, type TrainableSpec, adapterSpecs } from '../../models/lora.ts';
import { ropeInvFreq } from '../../models/rope.ts';
import { Graph, type Value } from '../ir.ts';
import { add, concat, gather, matmul, mul, pow, reduceSum, reshape, scale, sigmoid, slice, softmax, transpose, unsqueeze } from '../ops.ts';
import { type HostBatch, type IrModel, Inputs, crossEntropy, loraLinear, weightOf } from '../model.ts';

type W = { name: string; shape: number[]; data: Float32Array };

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

export function llama(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): IrModel {
  const dims = llamaDims(config);
  const { hidden: d, layers, heads, kvHeads, intermediate: ff, vocabSize } = dims;
  const hd = need<number>(config, 'head_dim', d / heads);
  const eps = need<number>(config, 'rms_norm_eps', 1e-6);
  const invFreq = ropeInvFreq(config, hd);
  if ((config.hidden_act ?? 'silu') !== 'silu') throw new Error(`config.json: hidden_act "${config.hidden_act}" is not supported (only silu)`);
  const trainable = llamaTrainable(dims, hd, task, lora);

  const load = (name: string, shape: number[]): W => ({ name, shape, data: weightOf(tensors, name, shape) });
  /** nn.Linear [out, in] → [in, out] */
  const transposed = (name: string, inF: number, outF: number): W => {
    const w = weightOf(tensors, name, [outF, inF]);
    const t = new Float32Array(w.length);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) t[i * outF + o] = w[o * inF + i];
    return { name, shape: [inF, outF], data: t };
  };
  const lin = (name: string, inF: number, outF: number) => ({
    w: transposed(`${name}.weight`, inF, outF),
    b: tensors.has(`${name}.bias`) ? load(`${name}.bias`, [outF]) : null,
  });
  const embed = load('model.embed_tokens.weight', [vocabSize, d]);
  const blocks = Array.from({ length: layers }, (_, i) => {
    const p = `model.layers.${i}`;
    return {
      norm1: load(`${p}.input_layernorm.weight`, [d]),
      q: lin(`${p}.self_attn.q_proj`, d, heads * hd),
      k: lin(`${p}.self_attn.k_proj`, d, kvHeads * hd),
      v: lin(`${p}.self_attn.v_proj`, d, kvHeads * hd),
      o: lin(`${p}.self_attn.o_proj`, heads * hd, d),
      norm2: load(`${p}.post_attention_layernorm.weight`, [d]),
      gate: lin(`${p}.mlp.gate_proj`, d, ff),
      up: lin(`${p}.mlp.up_proj`, d, ff),
      down: lin(`${p}.mlp.down_proj`, ff, d),
    };
  });
  const norm = load('model.norm.weight', [d]);
  // tied checkpoints (stories260K, SmolLM) do not store lm_head
  // (named lm_head.weight either way: a graph's frozen tensors are told apart by name)
  const head = task.kind !== 'causal-lm' ? null : tensors.has('lm_head.weight') ? transposed('lm_head.weight', d, vocabSize) : { ...transposed('model.embed_tokens.weight', d, vocabSize), name: 'lm_head.weight' };

  const model: IrModel = { family: 'llama', dims, task, lora, trainable, trace, hostFeeds };

  /** cos and sin [T, hd] at positions 0..T−1, halves repeated (HF's rotate-half layout), in float32 as HF computes the angles */
  function hostFeeds(batch: HostBatch) {
    const cos = new Float32Array(batch.t * hd);
    const sin = new Float32Array(batch.t * hd);
    for (let p = 0; p < batch.t; p++)
      for (let i = 0; i < hd; i++) {
        const angle = Math.fround(p * Math.fround(invFreq[i % (hd / 2)]));
        cos[p * hd + i] = Math.cos(angle);
        sin[p * hd + i] = Math.sin(angle);
      }
    return { rope_cos: { data: cos, shape: [batch.t, hd] }, rope_sin: { data: sin, shape: [batch.t, hd] } };
  }

  function trace(dropout: boolean) {
    const g = new Graph('float');
    const inp = new Inputs(g, dropout);
    const c = (w: W) => g.constant(w.name, w.shape, w.data);
    const cos = g.input('rope_cos', ['T', hd]);
    const sin = g.input('rope_sin', ['T', hd]);
    const rms = (x: Value, w: W) => mul(mul(x, pow(add(scale(reduceSum(mul(x, x), [-1], true), 1 / d), g.scalar(eps)), -0.5)), c(w));
    const split = (x: Value, n: number) => transpose(reshape(x, [0, 0, n, hd]), [0, 2, 1, 3]); // [B, n, T, hd]
    // x·cos + rotate_half(x)·sin, rotate_half(x) = [−x2, x1]
    const rope = (x: Value) => add(mul(x, cos), mul(concat([scale(slice(x, -1, hd / 2, hd), -1), slice(x, -1, 0, hd / 2)], -1), sin));
    // [B, kv, T, hd] → [B, kv·rep, T, hd], each head repeated consecutively as HF's repeat_kv
    const rep = heads / kvHeads;
    const ones = g.constant('repeat_kv', [1, 1, rep, 1, 1], new Float32Array(rep).fill(1));
    const repeat = (x: Value) => (rep === 1 ? x : reshape(mul(unsqueeze(x, [2]), ones), [0, heads, -1, hd]));

    let h = gather(c(embed), inp.ids, 0);
    for (let i = 0; i < layers; i++) {
      const blk = blocks[i];
      const ll = (x: Value, l: { w: W; b: W | null }, path: string) => loraLinear(inp, model, x, c(l.w), l.b && c(l.b), `model.layers.${i}.${path}`);
      const a = rms(h, blk.norm1);
      const q = rope(split(ll(a, blk.q, 'self_attn.q_proj'), heads));
      const k = repeat(rope(split(ll(a, blk.k, 'self_attn.k_proj'), kvHeads)));
      const v = repeat(split(ll(a, blk.v, 'self_attn.v_proj'), kvHeads));
      const att = softmax(add(scale(matmul(q, transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(hd)), inp.bias));
      h = add(h, ll(reshape(transpose(matmul(att, v), [0, 2, 1, 3]), [0, 0, heads * hd]), blk.o, 'self_attn.o_proj'));
      const m = rms(h, blk.norm2);
      const gate = ll(m, blk.gate, 'mlp.gate_proj');
      h = add(h, ll(mul(mul(gate, sigmoid(gate)), ll(m, blk.up, 'mlp.up_proj')), blk.down, 'mlp.down_proj'));
    }
    h = rms(h, norm);
    let logits: Value;
    if (head) logits = matmul(h, c(head));
    else {
      const pool = g.input('pool', ['B', 'T']);
      logits = matmul(reduceSum(mul(h, unsqueeze(pool, [2])), [1], false), transpose(inp.param(trainable[trainable.length - 1]), [1, 0]));
    }
    return { graph: g, logits, loss: crossEntropy(g, logits), adapter: inp.adapter, dropout: inp.dropout };
  }
  return model;
}
