// BERT (Devlin et al. 2019) and RoBERTa (Liu et al. 2019) encoders, from a Hugging Face checkpoint,
// in the order data meets them:
// word + position + token-type(0) embeddings → LayerNorm →
//   L × (self-attention, bidirectional over real tokens → dense → LayerNorm(x + ·),
//        intermediate dense → GELU → output dense → LayerNorm(x + ·))            [post-LN]
// → first token ([CLS] / <s>) → classifier.
// The two differ only in positions: BERT counts 0..T-1; RoBERTa counts real tokens from
// padding_idx + 1 (HF's create_position_ids_from_input_ids), so padding sits at padding_idx.
// HF stores nn.Linear weights as [out, in]; they are transposed once here to the x @ W layout.
//
// Head: classification only, a single linear map of the first token's final hidden state
// (`classifier.weight` [C, hidden], `classifier.bias` [C]), trained from scratch. It has no
// pooler (BertForSequenceClassification: dense + tanh first) and no RobertaClassificationHead
// (dense + tanh + out_proj), so those checkpoints' own heads are not used.
import * as tf from '@tensorflow/tfjs';
import { type Dual, add, constant, disposeDual, geluErf, geluTanh, linear, takePositions, tidyDual, transpose } from '../fwd/dual.ts';
import { attention, attentionBias, layerNorm, mergeHeads, splitHeads } from '../fwd/blocks.ts';
import { type LoraConfig, type Linear, type TrainableSpec, adapterSpecs, loraLinear, siteSeed, unitsOf } from './lora.ts';
import { type Model, type ModelDims, type Task, type TensorMap, need, runLayers, weight } from './model.ts';

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

export function createBert(config: Record<string, unknown>, tensors: TensorMap, task: Task, lora: LoraConfig): Model {
  if (task.kind !== 'classification') throw new Error('BERT/RoBERTa encoders support classification only');
  const modelType = need<string>(config, 'model_type', 'bert');
  if (modelType !== 'bert' && modelType !== 'roberta')
    throw new Error(`config.json: model_type "${modelType}" is not a BERT/RoBERTa encoder`);
  const roberta = isRoberta(config);
  const dims = bertDims(config);
  const { hidden: d, layers, heads, intermediate: ff, vocabSize, maxPositions } = dims;
  if (d % heads !== 0) throw new Error(`config.json: hidden_size ${d} is not divisible by num_attention_heads ${heads}`);
  const eps = need<number>(config, 'layer_norm_eps', 1e-12);
  const typeVocab = need<number>(config, 'type_vocab_size', 2);
  const positionTable = need<number>(config, 'max_position_embeddings');
  const padIdx = roberta ? paddingIdx(config) : 0;
  const positionType = need<string>(config, 'position_embedding_type', 'absolute');
  if (positionType !== 'absolute') throw new Error(`config.json: position_embedding_type "${positionType}" is not supported (only absolute)`);
  const act = need<string>(config, 'hidden_act', 'gelu');
  const gelu =
    act === 'gelu' ? geluErf
    : act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? geluTanh
    : null;
  if (!gelu) throw new Error(`config.json: hidden_act "${act}" is not supported (gelu, gelu_new, gelu_pytorch_tanh)`);

  // BertForSequenceClassification / RobertaFor* checkpoints prefix the encoder with "bert." or
  // "roberta."; one saved from a bare BertModel / RobertaModel has no prefix.
  const prefix =
    ['bert.', 'roberta.', ''].find((p) => tensors.has(`${p}embeddings.word_embeddings.weight`)) ?? `${modelType}.`;

  // LoRA modules are named as in the task model PEFT wraps (BertForSequenceClassification's
  // "bert.encoder…"), whatever the checkpoint's own prefix, so that exported adapters load in PEFT.
  const modules = prefix === '' ? `${modelType}.` : prefix;
  const base = new Map<string, tf.Tensor>();
  const w = (name: string, shape: number[]) => {
    const t = weight(tensors, prefix + name, shape);
    base.set(prefix + name, t);
    return t;
  };
  // nn.Linear [out, in] → [in, out], with its bias
  const lin = (name: string, inF: number, outF: number): Linear => {
    const wt = tf.tidy(() => tf.transpose(weight(tensors, `${prefix}${name}.weight`, [outF, inF])));
    base.set(`${prefix}${name}.weight`, wt);
    return { w: wt, b: w(`${name}.bias`, [outF]) };
  };
  const ln = (name: string) => ({ g: w(`${name}.weight`, [d]), b: w(`${name}.bias`, [d]) });

  const wordEmb = w('embeddings.word_embeddings.weight', [vocabSize, d]);
  const posEmb = w('embeddings.position_embeddings.weight', [positionTable, d]);
  const typeEmb = w('embeddings.token_type_embeddings.weight', [typeVocab, d]);
  const embLn = ln('embeddings.LayerNorm');
  const blocks = Array.from({ length: layers }, (_, i) => {
    const p = `encoder.layer.${i}`;
    return {
      query: lin(`${p}.attention.self.query`, d, d),
      key: lin(`${p}.attention.self.key`, d, d),
      value: lin(`${p}.attention.self.value`, d, d),
      attnOut: lin(`${p}.attention.output.dense`, d, d),
      attnLn: ln(`${p}.attention.output.LayerNorm`),
      inter: lin(`${p}.intermediate.dense`, d, ff),
      out: lin(`${p}.output.dense`, ff, d),
      outLn: ln(`${p}.output.LayerNorm`),
    };
  });

  const trainable = bertTrainable(dims, modules, task, lora);

  const c = (t: tf.Tensor) => constant(t);

  /** Position ids [B, T]: 0..T-1 (BERT); cumsum(ids ≠ pad)·(ids ≠ pad) + padding_idx (RoBERTa). */
  const positionIds = (ids: tf.Tensor2D): tf.Tensor =>
    tf.tidy(() => {
      const [b, t] = ids.shape;
      if (!roberta) return tf.tile(tf.reshape(tf.range(0, t, 1, 'int32'), [1, t]), [b, 1]);
      const real = tf.cast(tf.notEqual(ids, padIdx), 'int32');
      return tf.cast(tf.add(tf.mul(tf.cumsum(real, 1), real), padIdx), 'int32');
    });

  return {
    family: 'bert',
    dims,
    task,
    lora,
    trainable,
    units: unitsOf(trainable),
    base,
    forward(batch, params, seed) {
      const [B, T] = batch.ids.shape;
      const wc = params.get('classifier.weight');
      const bc = params.get('classifier.bias');
      if (!wc || !bc) throw new Error('params lack classifier.weight / classifier.bias');
      if (T > maxPositions) throw new Error(`sequence length ${T} exceeds the ${maxPositions} positions of max_position_embeddings ${positionTable}`);
      const bias = attentionBias(batch.mask, false);
      // embeddings: frozen, so a plain tensor (no tangent) enters the first layer
      let h: Dual = constant(
        tf.tidy(() => {
          const e = tf.add(tf.add(tf.gather(wordEmb, batch.ids), tf.gather(posEmb, positionIds(batch.ids))), tf.slice(typeEmb, [0, 0], [1, d]));
          return layerNorm(c(e), c(embLn.g), c(embLn.b), eps).p;
        }),
      );
      h = runLayers(h, layers, (x, i) => {
        const blk = blocks[i];
        const ll = (x: Dual, l: Linear, path: string, site: number) => loraLinear(x, l, `${modules}encoder.layer.${i}.${path}`, params, lora, siteSeed(seed, i, site));
        const q = splitHeads(ll(x, blk.query, 'attention.self.query', 0), heads);
        const k = splitHeads(ll(x, blk.key, 'attention.self.key', 1), heads);
        const v = splitHeads(ll(x, blk.value, 'attention.self.value', 2), heads);
        const att = ll(mergeHeads(attention(q, k, v, bias)), blk.attnOut, 'attention.output.dense', 3);
        const x1 = layerNorm(add(x, att), c(blk.attnLn.g), c(blk.attnLn.b), eps);
        const f = gelu(ll(x1, blk.inter, 'intermediate.dense', 4));
        return layerNorm(add(x1, ll(f, blk.out, 'output.dense', 5)), c(blk.outLn.g), c(blk.outLn.b), eps);
      });
      const out = tidyDual(() => {
        const first = takePositions(h, tf.zeros([B], 'int32'));
        return linear(first, transpose(wc, [1, 0]), bc);
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
