// BERT / RoBERTa against an independent oracle: a naive float64 forward pass written here in plain
// JavaScript (nested loops, no TensorFlow), following Hugging Face's BertModel / RobertaModel math
// step by step, from the same random weights. Then the forward-mode tangent of the classification
// loss against tf.grads and finite differences, and the loader's errors.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { initBackend } from '../../../src/worker/backend.ts';
import type { Dual } from '../../../src/worker/fwd/dual.ts';
import { bertDims, BERT_DEFAULT_TARGETS } from '../../../src/worker/engine/models/bert.ts';
import { createModel } from '../../../src/worker/models/index.ts';
import type { LoraConfig, Params } from '../../../src/worker/models/lora.ts';
import { type Batch, type Model, type TensorMap, lossOf } from '../../../src/worker/models/model.ts';
import { checkTangents, expectAgreement } from '../fwd/oracle.ts';

type Config = Record<string, unknown>;

const TINY = { vocab_size: 20, hidden_size: 8, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 16, max_position_embeddings: 16 };
const BERT: Config = { ...TINY, model_type: 'bert', type_vocab_size: 2, layer_norm_eps: 1e-12, hidden_act: 'gelu', pad_token_id: 0 };
const ROBERTA: Config = { ...TINY, model_type: 'roberta', type_vocab_size: 1, layer_norm_eps: 1e-5, hidden_act: 'gelu', pad_token_id: 1 };
const TASK = { kind: 'classification', numLabels: 3 } as const;
const LORA: LoraConfig = { r: 2, alpha: 4, dropout: 0, targetModules: ['query', 'key', 'value', 'dense'] };

// ---------------------------------------------------------------- seeded random weights

/** mulberry32 → Box–Muller: a deterministic standard normal stream. */
function normals(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
}

function randomArray(n: number, rand: () => number, scale: number, offset = 0): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = offset + scale * rand();
  return a;
}

/** A checkpoint with HF names, under `prefix` ("bert.", "roberta." or "" for a bare BertModel). */
function checkpoint(config: Config, prefix: string, seed: number): TensorMap {
  const d = config.hidden_size as number;
  const ff = config.intermediate_size as number;
  const rand = normals(seed);
  const m: TensorMap = new Map();
  const put = (name: string, shape: number[], scale: number, offset = 0) =>
    m.set(prefix + name, { shape, data: randomArray(shape.reduce((x, y) => x * y, 1), rand, scale, offset) });
  const ln = (name: string) => {
    put(`${name}.weight`, [d], 0.1, 1);
    put(`${name}.bias`, [d], 0.1);
  };
  const lin = (name: string, inF: number, outF: number) => {
    put(`${name}.weight`, [outF, inF], 1 / Math.sqrt(inF));
    put(`${name}.bias`, [outF], 0.1);
  };
  put('embeddings.word_embeddings.weight', [config.vocab_size as number, d], 1);
  put('embeddings.position_embeddings.weight', [config.max_position_embeddings as number, d], 0.5);
  put('embeddings.token_type_embeddings.weight', [config.type_vocab_size as number, d], 0.5);
  ln('embeddings.LayerNorm');
  for (let i = 0; i < (config.num_hidden_layers as number); i++) {
    const p = `encoder.layer.${i}`;
    lin(`${p}.attention.self.query`, d, d);
    lin(`${p}.attention.self.key`, d, d);
    lin(`${p}.attention.self.value`, d, d);
    lin(`${p}.attention.output.dense`, d, d);
    ln(`${p}.attention.output.LayerNorm`);
    lin(`${p}.intermediate.dense`, d, ff);
    lin(`${p}.output.dense`, ff, d);
    ln(`${p}.output.LayerNorm`);
  }
  return m;
}

/** Trainable values, all non-zero (LoRA B too, so every adapter changes the output). */
function trainableValues(model: Model, seed: number): Map<string, Float32Array> {
  const rand = normals(seed);
  const out = new Map<string, Float32Array>();
  for (const s of model.trainable) out.set(s.name, randomArray(s.shape.reduce((x, y) => x * y, 1), rand, s.name.startsWith('classifier') ? 0.5 : 0.3));
  return out;
}

// ---------------------------------------------------------------- the naive float64 oracle

type Mat = Float64Array[]; // rows

/** erf to ~1e-15: Maclaurin series for |x| < 3, the continued fraction of erfc beyond. */
function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax;
    let sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + 2/(x + …)))))
  let f = ax;
  for (let n = 80; n >= 1; n--) f = ax + n / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

interface Oracle {
  get(name: string): Float64Array;
  has(name: string): boolean;
}

function oracleOf(tensors: TensorMap, trainable: Map<string, Float32Array>): Oracle {
  const all = new Map<string, Float64Array>();
  for (const [k, v] of tensors) all.set(k, Float64Array.from(v.data));
  for (const [k, v] of trainable) all.set(k, Float64Array.from(v));
  return {
    get: (name) => {
      const t = all.get(name);
      if (!t) throw new Error(`oracle: no ${name}`);
      return t;
    },
    has: (name) => all.has(name),
  };
}

/** y = x Wᵀ + b for nn.Linear W [out, in], plus (α/r)·(x Aᵀ) Bᵀ when the module has a LoRA pair. */
function linearOf(x: Mat, o: Oracle, module: string, inF: number, outF: number, lora: LoraConfig): Mat {
  const W = o.get(`${module}.weight`);
  const b = o.get(`${module}.bias`);
  const hasLora = o.has(`${module}.lora_A.weight`);
  const A = hasLora ? o.get(`${module}.lora_A.weight`) : null;
  const B = hasLora ? o.get(`${module}.lora_B.weight`) : null;
  const r = lora.r;
  return x.map((row) => {
    const y = new Float64Array(outF);
    for (let j = 0; j < outF; j++) {
      let s = b[j];
      for (let i = 0; i < inF; i++) s += row[i] * W[j * inF + i];
      y[j] = s;
    }
    if (A && B) {
      const down = new Float64Array(r);
      for (let k = 0; k < r; k++) for (let i = 0; i < inF; i++) down[k] += row[i] * A[k * inF + i];
      for (let j = 0; j < outF; j++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += down[k] * B[j * r + k];
        y[j] += (lora.alpha / r) * s;
      }
    }
    return y;
  });
}

function layerNormOf(x: Mat, g: Float64Array, b: Float64Array, eps: number): Mat {
  return x.map((row) => {
    const n = row.length;
    let mu = 0;
    for (const v of row) mu += v / n;
    let va = 0;
    for (const v of row) va += (v - mu) ** 2 / n;
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) y[i] = ((row[i] - mu) / Math.sqrt(va + eps)) * g[i] + b[i];
    return y;
  });
}

const addMat = (a: Mat, b: Mat): Mat => a.map((row, t) => row.map((v, i) => v + b[t][i]));

/**
 * HF BertModel on ONE unpadded sequence (so no mask is needed: every key is a real token), then
 * the first token through the classifier. Returns the logits.
 */
function oracleLogits(config: Config, o: Oracle, prefix: string, ids: number[], lora: LoraConfig, numLabels: number): Float64Array {
  const d = config.hidden_size as number;
  const H = config.num_attention_heads as number;
  const dh = d / H;
  const ff = config.intermediate_size as number;
  const eps = config.layer_norm_eps as number;
  const T = ids.length;
  const roberta = config.model_type === 'roberta';
  const pad = config.pad_token_id as number;
  // HF ACT2FN: "gelu" is exact (erf); "gelu_new" is the tanh approximation
  const gelu =
    config.hidden_act === 'gelu_new'
      ? (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)))
      : (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
  const wte = o.get(`${prefix}embeddings.word_embeddings.weight`);
  const wpe = o.get(`${prefix}embeddings.position_embeddings.weight`);
  const wtt = o.get(`${prefix}embeddings.token_type_embeddings.weight`);

  // embeddings: word + position + token type 0, then LayerNorm
  let h: Mat = ids.map((id, t) => {
    const pos = roberta ? pad + 1 + t : t;
    const row = new Float64Array(d);
    for (let i = 0; i < d; i++) row[i] = wte[id * d + i] + wpe[pos * d + i] + wtt[i];
    return row;
  });
  h = layerNormOf(h, o.get(`${prefix}embeddings.LayerNorm.weight`), o.get(`${prefix}embeddings.LayerNorm.bias`), eps);

  for (let l = 0; l < (config.num_hidden_layers as number); l++) {
    const p = `${prefix}encoder.layer.${l}`;
    const q = linearOf(h, o, `${p}.attention.self.query`, d, d, lora);
    const k = linearOf(h, o, `${p}.attention.self.key`, d, d, lora);
    const v = linearOf(h, o, `${p}.attention.self.value`, d, d, lora);
    const ctx: Mat = ids.map(() => new Float64Array(d));
    for (let head = 0; head < H; head++) {
      const off = head * dh;
      for (let t = 0; t < T; t++) {
        const scores = new Float64Array(T);
        let mx = -Infinity;
        for (let s = 0; s < T; s++) {
          let dot = 0;
          for (let j = 0; j < dh; j++) dot += q[t][off + j] * k[s][off + j];
          scores[s] = dot / Math.sqrt(dh);
          mx = Math.max(mx, scores[s]);
        }
        let z = 0;
        for (let s = 0; s < T; s++) z += (scores[s] = Math.exp(scores[s] - mx));
        for (let s = 0; s < T; s++) for (let j = 0; j < dh; j++) ctx[t][off + j] += (scores[s] / z) * v[s][off + j];
      }
    }
    const attnOut = linearOf(ctx, o, `${p}.attention.output.dense`, d, d, lora);
    const x1 = layerNormOf(addMat(attnOut, h), o.get(`${p}.attention.output.LayerNorm.weight`), o.get(`${p}.attention.output.LayerNorm.bias`), eps);
    const inter = linearOf(x1, o, `${p}.intermediate.dense`, d, ff, lora).map((row) => row.map(gelu));
    const out = linearOf(inter, o, `${p}.output.dense`, ff, d, lora);
    h = layerNormOf(addMat(out, x1), o.get(`${p}.output.LayerNorm.weight`), o.get(`${p}.output.LayerNorm.bias`), eps);
  }

  const W = o.get('classifier.weight');
  const b = o.get('classifier.bias');
  const logits = new Float64Array(numLabels);
  for (let c = 0; c < numLabels; c++) {
    let s = b[c];
    for (let i = 0; i < d; i++) s += h[0][i] * W[c * d + i];
    logits[c] = s;
  }
  return logits;
}

// ---------------------------------------------------------------- helpers around the model

function paramsOf(values: Map<string, Float32Array>, model: Model): Params {
  const p: Params = new Map();
  for (const s of model.trainable) p.set(s.name, { p: tf.tensor(values.get(s.name)!, s.shape), t: null });
  return p;
}

/** Right-padded batch of the sequences, padded with `pad`. */
function batchOf(seqs: number[][], pad: number, labels?: number[]): Batch {
  const T = Math.max(...seqs.map((s) => s.length));
  const ids = seqs.map((s) => [...s, ...new Array(T - s.length).fill(pad)]);
  const mask = seqs.map((s) => [...s.map(() => 1), ...new Array(T - s.length).fill(0)]);
  return {
    ids: tf.tensor2d(ids, undefined, 'int32'),
    mask: tf.tensor2d(mask, undefined, 'float32'),
    labels: labels ? tf.tensor1d(labels, 'int32') : undefined,
  };
}

function modelLogits(model: Model, batch: Batch, params: Params): number[][] {
  const out = model.forward(batch, params, null);
  const rows = out.p.arraySync() as number[][];
  out.p.dispose();
  out.t?.dispose();
  return rows;
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

const ATOL = 1e-4;
// real tokens avoid 0 and 1 (BERT's and RoBERTa's pad ids), so padding is unambiguous
const LONG = [2, 7, 11, 5, 19, 3];
const SHORT = [2, 9, 4, 12];

beforeAll(async () => {
  await initBackend('wasm');
});

describe('the erf used by the oracle', () => {
  it('matches reference values to 1e-14', () => {
    // erf(0.5), erf(1), erf(2), erf(3.5) from tables (Abramowitz & Stegun / DLMF 7.2)
    const ref: [number, number][] = [[0.5, 0.5204998778130465], [1, 0.8427007929497149], [2, 0.9953222650189527], [3.5, 0.9999992569016276]];
    for (const [x, y] of ref) {
      expect(Math.abs(erf(x) - y)).toBeLessThan(1e-14);
      expect(Math.abs(erf(-x) + y)).toBeLessThan(1e-14);
    }
  });
});

for (const [label, config, prefix, pad] of [
  ['BERT', BERT, 'bert.', 0],
  ['BERT (bare BertModel checkpoint, no prefix)', BERT, '', 0],
  ['RoBERTa', ROBERTA, 'roberta.', 1],
  ['BERT with hidden_act gelu_new (tanh GELU)', { ...BERT, hidden_act: 'gelu_new' }, 'bert.', 0],
] as [string, Config, string, number][]) {
  describe(`${label} matches a naive float64 HF-style forward pass`, () => {
    const tensors = checkpoint(config, prefix, 42);
    let model: Model;
    let values: Map<string, Float32Array>;
    let oracle: Oracle;
    beforeAll(() => {
      model = createModel(config, tensors, TASK, LORA);
      values = trainableValues(model, 7);
      // the oracle reads every tensor under the checkpoint's names; LoRA's carry the task model's "bert."
      oracle = oracleOf(tensors, new Map([...values].map(([k, v]) => [prefix === '' ? k.replace(/^bert\./, '') : k, v])));
    });

    it('names LoRA modules as BertForSequenceClassification does (a bare checkpoint too) and groups the classifier as the head unit', () => {
      expect(model.family).toBe('bert');
      const modules = prefix || 'bert.';
      const names = model.trainable.map((s) => s.name);
      expect(names).toContain(`${modules}encoder.layer.0.attention.self.query.lora_A.weight`);
      expect(names).toContain(`${modules}encoder.layer.1.output.dense.lora_B.weight`);
      expect(new Set(names).size).toBe(names.length);
      // 2 layers × 6 adapted modules (q, k, v, and three distinct "dense") + the head
      expect(model.units.length).toBe(2 * 6 + 1);
      expect(model.units.at(-1)).toEqual({ name: 'head', tensors: ['classifier.weight', 'classifier.bias'] });
      expect(model.trainable.find((s) => s.name === 'classifier.bias')).toEqual({ name: 'classifier.bias', shape: [3], init: 'zeros' });
      expect(model.trainable.find((s) => s.name === `${modules}encoder.layer.0.intermediate.dense.lora_A.weight`)!.shape).toEqual([2, 8]);
      expect(model.trainable.find((s) => s.name === `${modules}encoder.layer.0.output.dense.lora_A.weight`)!.shape).toEqual([2, 16]);
    });

    it('logits of a right-padded batch equal the oracle on each unpadded sequence (atol 1e-4)', () => {
      const params = paramsOf(values, model);
      const got = modelLogits(model, batchOf([LONG, SHORT], pad), params);
      const want = [LONG, SHORT].map((s) => oracleLogits(config, oracle, prefix, s, LORA, TASK.numLabels));
      expect(maxDiff(got[0], want[0])).toBeLessThan(ATOL);
      expect(maxDiff(got[1], want[1])).toBeLessThan(ATOL);
      // and the logits are not trivially small, so the tolerance means something
      expect(Math.max(...want.flatMap((w) => [...w].map(Math.abs)))).toBeGreaterThan(0.1);
      tf.dispose([...params.values()].map((v) => v.p));
    });

    it('the padded sequence gives the same logits as the same sequence alone', () => {
      const params = paramsOf(values, model);
      const batched = modelLogits(model, batchOf([LONG, SHORT], pad), params)[1];
      const alone = modelLogits(model, batchOf([SHORT], pad), params)[0];
      expect(maxDiff(batched, alone)).toBeLessThan(1e-5);
      tf.dispose([...params.values()].map((v) => v.p));
    });

    it('frees every activation: the forward pass leaves only its logits', () => {
      const params = paramsOf(values, model);
      const batch = batchOf([LONG, SHORT], pad);
      const before = tf.memory().numTensors;
      const out = model.forward(batch, params, null);
      expect(tf.memory().numTensors).toBe(before + 1);
      out.p.dispose();
      tf.dispose([...params.values()].map((v) => v.p));
    });
  });
}

describe('the tangent of the classification loss', () => {
  for (const [label, config, prefix, pad] of [
    ['BERT', BERT, 'bert.', 0],
    ['RoBERTa', ROBERTA, 'roberta.', 1],
  ] as [string, Config, string, number][]) {
    it(`${label}: forward mode = tf.grads · direction = central finite difference, over all LoRA + head tensors`, () => {
      const model = createModel(config, checkpoint(config, prefix, 3), TASK, LORA);
      const values = trainableValues(model, 11);
      const names = model.trainable.map((s) => s.name);
      const inputs = model.trainable.map((s) => tf.tensor(values.get(s.name)!, s.shape));
      const batch = batchOf([LONG, SHORT, [2, 5]], pad, [2, 0, 1]);
      const f = (xs: Dual[]): Dual => lossOf(model, batch, new Map(names.map((n, i) => [n, xs[i]])), null);
      // the direction moves every one of the ~250 trainable numbers at once, so the default step
      // h = 1e-2 puts the loss's curvature into the central difference; 2e-3 keeps truncation
      // well under the tolerance while float32 rounding (~1e-7·|L|/h) stays negligible
      const res = checkTangents(f, inputs, undefined, { k: 3, h: 2e-3 });
      expectAgreement(res);
      tf.dispose(inputs);
      model.dispose();
    });
  }
});

describe('loader errors', () => {
  const oneLine = (fn: () => unknown, ...parts: string[]) => {
    let msg = '';
    try {
      fn();
    } catch (e) {
      msg = (e as Error).message;
    }
    for (const part of parts) expect(msg).toContain(part);
    expect(msg).not.toContain('\n');
  };

  it('a missing tensor names it', () => {
    const tensors = checkpoint(BERT, 'bert.', 1);
    tensors.delete('bert.encoder.layer.1.attention.self.key.weight');
    oneLine(() => createModel(BERT, tensors, TASK, LORA), 'bert.encoder.layer.1.attention.self.key.weight');
  });

  it('a tensor of the wrong shape names it and both shapes', () => {
    const tensors = checkpoint(ROBERTA, 'roberta.', 1);
    tensors.set('roberta.encoder.layer.0.intermediate.dense.weight', { shape: [16, 9], data: new Float32Array(16 * 9) });
    oneLine(() => createModel(ROBERTA, tensors, TASK, LORA), 'roberta.encoder.layer.0.intermediate.dense.weight', '[16,9]', '[16,8]');
  });

  it('rejects causal-lm', () => {
    expect(() => createModel(BERT, checkpoint(BERT, 'bert.', 1), { kind: 'causal-lm' }, LORA)).toThrow('BERT/RoBERTa encoders support classification only');
  });

  it('rejects an unsupported activation and an unknown model_type', () => {
    expect(() => createModel({ ...BERT, hidden_act: 'relu' }, checkpoint(BERT, 'bert.', 1), TASK, LORA)).toThrow('hidden_act "relu"');
    expect(() => createModel({ ...BERT, model_type: 'distilbert' }, checkpoint(BERT, 'bert.', 1), TASK, LORA)).toThrow('model_type "distilbert"');
  });

  it('a sequence longer than the positions table allows is refused (RoBERTa loses padding_idx + 1 rows)', () => {
    expect(bertDims(BERT).maxPositions).toBe(16);
    expect(bertDims(ROBERTA).maxPositions).toBe(14);
    const model = createModel(ROBERTA, checkpoint(ROBERTA, 'roberta.', 1), TASK, { ...LORA, targetModules: BERT_DEFAULT_TARGETS });
    const params: Params = new Map(model.trainable.map((s) => [s.name, { p: tf.zeros(s.shape), t: null }]));
    const batch = batchOf([Array.from({ length: 15 }, () => 3)], 1);
    expect(() => model.forward(batch, params, null)).toThrow('sequence length 15 exceeds');
    model.dispose();
  });
});
