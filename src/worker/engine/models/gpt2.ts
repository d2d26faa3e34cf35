// GPT-2 (Radford et al. 2019) against the IR, in the order data meets it:
// embeddings → n_layer × (LN → attention → residual, LN → MLP → residual) → LN → tied LM head or
// the classification head `score.weight` on the last real token. HF stores the projections as
// Conv1D, weight [in, out]: already the x @ W layout, no transpose. The frozen weights become ONNX
// initializers; the adapter, its tangents and the batch are inputs.
import type { ModelDims, Task, TensorMap } from '../../models/model.ts';
import { need } from '../../models/model.ts';
import { type LoraConfig, type TrainableSpec, adapterSpecs } from '../../models/lora.ts';
import { Graph, type Value } from '../ir.ts';
import { add, gather, gelu, layerNorm, matmul, mul, reduceSum, reshape, scale, slice, softmax, transpose, unsqueeze } from '../ops.ts';
import { type IrModel, Inputs, crossEntropy, loraLinear, weightOf } from '../model.ts';

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

export function gpt2(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): IrModel {
  const dims = gpt2Dims(config);
  const { hidden: d, layers, heads, intermediate, vocabSize, maxPositions } = dims;
  const hd = d / heads;
  const eps = need<number>(config, 'layer_norm_epsilon', 1e-5);
  const approximate = config.activation_function === 'gelu' ? 'none' : 'tanh';
  // checkpoints saved from GPT2Model have no "transformer." prefix; GPT2LMHeadModel's have it
  const prefix = tensors.has('transformer.wte.weight') ? 'transformer.' : '';
  const trainable = gpt2Trainable(dims, task, lora);
  // read every weight now, so a wrong checkpoint fails at load, not at the first step
  const load = (name: string, shape: number[]) => ({ name, shape, data: weightOf(tensors, prefix + name, shape) });
  const lin = (name: string, inF: number, outF: number) => ({ w: load(`${name}.weight`, [inF, outF]), b: load(`${name}.bias`, [outF]) });
  const W = {
    wte: load('wte.weight', [vocabSize, d]),
    wpe: load('wpe.weight', [maxPositions, d]),
    h: Array.from({ length: layers }, (_, i) => ({
      ln1: { g: load(`h.${i}.ln_1.weight`, [d]), b: load(`h.${i}.ln_1.bias`, [d]) },
      attn: lin(`h.${i}.attn.c_attn`, d, 3 * d),
      proj: lin(`h.${i}.attn.c_proj`, d, d),
      ln2: { g: load(`h.${i}.ln_2.weight`, [d]), b: load(`h.${i}.ln_2.bias`, [d]) },
      fc: lin(`h.${i}.mlp.c_fc`, d, intermediate),
      out: lin(`h.${i}.mlp.c_proj`, intermediate, d),
    })),
    lnF: { g: load('ln_f.weight', [d]), b: load('ln_f.bias', [d]) },
  };
  const model: IrModel = { family: 'gpt2', dims, task, lora, trainable, trace };

  function trace(dropout: boolean) {
    const g = new Graph('float');
    const inp = new Inputs(g, dropout);
    const c = (w: { name: string; shape: number[]; data: Float32Array }) => g.constant(w.name, w.shape, w.data);
    const ln = (x: Value, w: { g: typeof W.lnF.g; b: typeof W.lnF.b }) => layerNorm(x, c(w.g), c(w.b), eps);
    const heads4 = (x: Value) => transpose(reshape(x, [0, 0, heads, hd]), [0, 2, 1, 3]); // [B, H, T, hd]

    let h = add(gather(c(W.wte), inp.ids, 0), gather(c(W.wpe), inp.pos, 0));
    for (let i = 0; i < layers; i++) {
      const blk = W.h[i];
      const mod = (path: string) => `transformer.h.${i}.${path}`;
      // causal self-attention
      const qkv = loraLinear(inp, model, ln(h, blk.ln1), c(blk.attn.w), c(blk.attn.b), mod('attn.c_attn'));
      const [q, k, v] = [0, 1, 2].map((j) => heads4(slice(qkv, -1, j * d, (j + 1) * d)));
      const att = softmax(add(scale(matmul(q, transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(hd)), inp.bias));
      const y = reshape(transpose(matmul(att, v), [0, 2, 1, 3]), [0, 0, d]);
      h = add(h, loraLinear(inp, model, y, c(blk.proj.w), c(blk.proj.b), mod('attn.c_proj')));
      // MLP
      const f = gelu(loraLinear(inp, model, ln(h, blk.ln2), c(blk.fc.w), c(blk.fc.b), mod('mlp.c_fc')), approximate);
      h = add(h, loraLinear(inp, model, f, c(blk.out.w), c(blk.out.b), mod('mlp.c_proj')));
    }
    h = ln(h, W.lnF);
    let logits: Value;
    if (task.kind === 'causal-lm') logits = matmul(h, transpose(c(W.wte), [1, 0]));
    else {
      const pool = g.input('pool', ['B', 'T']);
      const last = reduceSum(mul(h, unsqueeze(pool, [2])), [1], false); // [B, d]
      logits = matmul(last, transpose(inp.param(trainable[trainable.length - 1]), [1, 0]));
    }
    return { graph: g, logits, loss: crossEntropy(g, logits), adapter: inp.adapter, dropout: inp.dropout };
  }
  return model;
}
