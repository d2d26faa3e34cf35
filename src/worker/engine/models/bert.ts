// BERT (Devlin et al. 2019) and RoBERTa (Liu et al. 2019) encoders against the IR, in the order
// data meets them:
// word + position + token-type(0) embeddings → LayerNorm →
//   L × (bidirectional self-attention over real tokens → dense → LayerNorm(x + ·),
//        intermediate dense → GELU → output dense → LayerNorm(x + ·))            [post-LN]
// → first token ([CLS] / <s>) → classifier (weight and bias trained).
// RoBERTa's positions count real tokens from padding_idx + 1; they are computed on the host.
// HF stores nn.Linear weights as [out, in]; they are transposed once, on the host, to x @ W.
import type { ModelDims, Task, TensorMap } from '../../models/model.ts';
import { need } from '../../models/model.ts';
import { type LoraConfig, type TrainableSpec, adapterSpecs } from '../../models/lora.ts';
import { Graph, type Value } from '../ir.ts';
import { add, gather, gelu, layerNorm, matmul, mul, reduceSum, reshape, scale, slice, softmax, transpose, unsqueeze } from '../ops.ts';
import { type HostBatch, type IrModel, Inputs, crossEntropy, loraLinear, weightOf } from '../model.ts';

type W = { name: string; shape: number[]; data: Float32Array };

export const BERT_DEFAULT_TARGETS = ['query', 'value'];

const isRoberta = (config: Record<string, unknown>) => config.model_type === 'roberta';

/** RoBERTa's padding_idx (its pad_token_id): positions of real tokens start at padding_idx + 1. */
const paddingIdx = (config: Record<string, unknown>) => need<number>(config, 'pad_token_id', 1);

/**
 * Dimensions from config.json. `maxPositions` is the longest sequence the model accepts: for
 * RoBERTa that is max_position_embeddings − padding_idx − 1 (514 − 2 = 512), since the first
 * padding_idx + 1 rows of the position table are never reached by a real token.
 */
export function bertDims(config: Record<string, unknown>): ModelDims {
  const heads = need<number>(config, 'num_attention_heads');
  const table = need<number>(config, 'max_position_embeddings');
  return {
    vocabSize: need<number>(config, 'vocab_size'),
    hidden: need<number>(config, 'hidden_size'),
    layers: need<number>(config, 'num_hidden_layers'),
    heads,
    kvHeads: heads,
    intermediate: need<number>(config, 'intermediate_size'),
    maxPositions: isRoberta(config) ? table - paddingIdx(config) - 1 : table,
  };
}

/**
 * The trainable tensors, in module order: LoRA pairs on the targeted modules (named under
 * `modules`, e.g. "bert."), then the classifier (weight and bias).
 */
export function bertTrainable(dims: ModelDims, modules: string, task: Task & { kind: 'classification' }, lora: LoraConfig): TrainableSpec[] {
  const { hidden: d, layers, intermediate: ff } = dims;
  // the adaptable modules, in depth order: [path in the layer, in, out]
  const trainable = adapterSpecs(
    lora,
    layers,
    (i) => `${modules}encoder.layer.${i}`,
    [
      ['attention.self.query', d, d],
      ['attention.self.key', d, d],
      ['attention.self.value', d, d],
      ['attention.output.dense', d, d],
      ['intermediate.dense', d, ff],
      ['output.dense', ff, d],
    ],
    ['word_embeddings', 'position_embeddings', 'token_type_embeddings'].map((e) => `${modules}embeddings.${e}`).concat('classifier'),
  );
  trainable.push(
    { name: 'classifier.weight', shape: [task.numLabels, d], init: 'normal-0.02' },
    { name: 'classifier.bias', shape: [task.numLabels], init: 'zeros' },
  );
  return trainable;
}

export function bert(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): IrModel {
  if (task.kind !== 'classification') throw new Error('BERT/RoBERTa encoders support classification only');
  const modelType = need<string>(config, 'model_type', 'bert');
  if (modelType !== 'bert' && modelType !== 'roberta') throw new Error(`config.json: model_type "${modelType}" is not a BERT/RoBERTa encoder`);
  const roberta = modelType === 'roberta';
  const dims = bertDims(config);
  const { hidden: d, layers, heads, intermediate: ff, vocabSize } = dims;
  if (d % heads !== 0) throw new Error(`config.json: hidden_size ${d} is not divisible by num_attention_heads ${heads}`);
  const hd = d / heads;
  const eps = need<number>(config, 'layer_norm_eps', 1e-12);
  const typeVocab = need<number>(config, 'type_vocab_size', 2);
  const positionTable = need<number>(config, 'max_position_embeddings');
  const padIdx = roberta ? paddingIdx(config) : 0;
  const positionType = need<string>(config, 'position_embedding_type', 'absolute');
  if (positionType !== 'absolute') throw new Error(`config.json: position_embedding_type "${positionType}" is not supported (only absolute)`);
  const act = need<string>(config, 'hidden_act', 'gelu');
  const approximate = act === 'gelu' ? 'none' : act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'tanh' : null;
  if (!approximate) throw new Error(`config.json: hidden_act "${act}" is not supported (gelu, gelu_new, gelu_pytorch_tanh)`);
  // BertForSequenceClassification / RobertaFor* prefix the encoder; a bare BertModel has no prefix
  const prefix = ['bert.', 'roberta.', ''].find((p) => tensors.has(`${p}embeddings.word_embeddings.weight`)) ?? `${modelType}.`;
  // LoRA modules are named as in the task model PEFT wraps ("bert.encoder…"), as the TensorFlow.js
  // family names them, whatever the checkpoint's own prefix
  const modules = prefix === '' ? `${modelType}.` : prefix;

  const trainable = bertTrainable(dims, modules, task, lora);

  const load = (name: string, shape: number[]): W => ({ name, shape, data: weightOf(tensors, prefix + name, shape) });
  const lin = (name: string, inF: number, outF: number) => {
    const w = weightOf(tensors, `${prefix}${name}.weight`, [outF, inF]);
    const t = new Float32Array(w.length);
    for (let o = 0; o < outF; o++) for (let i = 0; i < inF; i++) t[i * outF + o] = w[o * inF + i];
    return { w: { name: `${name}.weight`, shape: [inF, outF], data: t }, b: load(`${name}.bias`, [outF]) };
  };
  const norm = (name: string) => ({ g: load(`${name}.weight`, [d]), b: load(`${name}.bias`, [d]) });
  const words = load('embeddings.word_embeddings.weight', [vocabSize, d]);
  const positions = load('embeddings.position_embeddings.weight', [positionTable, d]);
  const types = load('embeddings.token_type_embeddings.weight', [typeVocab, d]);
  const embLn = norm('embeddings.LayerNorm');
  const blocks = Array.from({ length: layers }, (_, i) => {
    const p = `encoder.layer.${i}`;
    return {
      query: lin(`${p}.attention.self.query`, d, d),
      key: lin(`${p}.attention.self.key`, d, d),
      value: lin(`${p}.attention.self.value`, d, d),
      attnOut: lin(`${p}.attention.output.dense`, d, d),
      attnLn: norm(`${p}.attention.output.LayerNorm`),
      inter: lin(`${p}.intermediate.dense`, d, ff),
      out: lin(`${p}.output.dense`, ff, d),
      outLn: norm(`${p}.output.LayerNorm`),
    };
  });

  const model: IrModel = { family: 'bert', dims, task, lora, trainable, trace, hostFeeds };

  /** position ids [B, T]: 0..T−1 (BERT); cumsum(ids ≠ pad)·(ids ≠ pad) + padding_idx (RoBERTa) */
  function hostFeeds(batch: HostBatch) {
    const out = new BigInt64Array(batch.b * batch.t);
    for (let i = 0; i < batch.b; i++) {
      let count = 0;
      for (let p = 0; p < batch.t; p++) {
        const j = i * batch.t + p;
        if (!roberta) out[j] = BigInt(p);
        else {
          const real = batch.ids[j] !== padIdx ? 1 : 0;
          count += real;
          out[j] = BigInt(count * real + padIdx);
        }
      }
    }
    return { position_ids: { data: out, shape: [batch.b, batch.t] } };
  }

  function trace(dropout: boolean) {
    const g = new Graph('float');
    const inp = new Inputs(g, dropout);
    const c = (w: W) => g.constant(w.name, w.shape, w.data);
    const ln = (x: Value, n: { g: W; b: W }) => layerNorm(x, c(n.g), c(n.b), eps);
    const split = (x: Value) => transpose(reshape(x, [0, 0, heads, hd]), [0, 2, 1, 3]);
    const pos = g.input('position_ids', ['B', 'T'], 'int64');

    let h = ln(add(add(gather(c(words), inp.ids, 0), gather(c(positions), pos, 0)), slice(c(types), 0, 0, 1)), embLn);
    for (let i = 0; i < layers; i++) {
      const blk = blocks[i];
      const ll = (x: Value, l: { w: W; b: W }, path: string) => loraLinear(inp, model, x, c(l.w), c(l.b), `${modules}encoder.layer.${i}.${path}`);
      const q = split(ll(h, blk.query, 'attention.self.query'));
      const k = split(ll(h, blk.key, 'attention.self.key'));
      const v = split(ll(h, blk.value, 'attention.self.value'));
      const att = softmax(add(scale(matmul(q, transpose(k, [0, 1, 3, 2])), 1 / Math.sqrt(hd)), inp.bias));
      const merged = reshape(transpose(matmul(att, v), [0, 2, 1, 3]), [0, 0, d]);
      h = ln(add(h, ll(merged, blk.attnOut, 'attention.output.dense')), blk.attnLn);
      const f = gelu(ll(h, blk.inter, 'intermediate.dense'), approximate!);
      h = ln(add(h, ll(f, blk.out, 'output.dense')), blk.outLn);
    }
    const pool = g.input('pool', ['B', 'T']);
    const first = reduceSum(mul(h, unsqueeze(pool, [2])), [1], false);
    const [w, b] = trainable.slice(-2).map((s) => inp.param(s));
    const logits = add(matmul(first, transpose(w, [1, 0])), b);
    return { graph: g, logits, loss: crossEntropy(g, logits), adapter: inp.adapter, dropout: inp.dropout };
  }
  return model;
}
