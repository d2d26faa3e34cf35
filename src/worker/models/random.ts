// Randomly initialised checkpoints in Hugging Face layout, for benchmarks at real model shapes
// (e.g. GPT-2 small) and for tests. Weights ~ N(0, 0.02²), norms at 1, biases at 0, as HF initialises.
import { Rng } from '../../shared/spry/rng.ts';
import type { TensorMap } from './model.ts';

export interface RandomShape {
  family: 'gpt2' | 'llama' | 'bert';
  layers: number;
  hidden: number;
  heads: number;
  kvHeads?: number;
  intermediate?: number;
  vocab: number;
  positions: number;
}

export const GPT2_SMALL: RandomShape = { family: 'gpt2', layers: 12, hidden: 768, heads: 12, vocab: 50257, positions: 1024 };

export function randomCheckpoint(shape: RandomShape, seed = 0): { config: Record<string, unknown>; tensors: TensorMap } {
  const rng = new Rng(seed, 1);
  const { layers: L, hidden: d, heads, vocab, positions } = shape;
  const kv = shape.kvHeads ?? heads;
  const ff = shape.intermediate ?? 4 * d;
  const hd = d / heads;
  const tensors: TensorMap = new Map();
  const normal = (name: string, dims: number[]) => {
    const data = new Float32Array(dims.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = 0.02 * rng.normal();
    tensors.set(name, { shape: dims, data });
  };
  const fill = (name: string, dims: number[], v: number) =>
    tensors.set(name, { shape: dims, data: new Float32Array(dims.reduce((a, b) => a * b, 1)).fill(v) });

  if (shape.family === 'gpt2') {
    normal('transformer.wte.weight', [vocab, d]);
    normal('transformer.wpe.weight', [positions, d]);
    for (let i = 0; i < L; i++) {
      const p = `transformer.h.${i}`;
      for (const ln of ['ln_1', 'ln_2']) { fill(`${p}.${ln}.weight`, [d], 1); fill(`${p}.${ln}.bias`, [d], 0); }
      for (const [name, inF, outF] of [['attn.c_attn', d, 3 * d], ['attn.c_proj', d, d], ['mlp.c_fc', d, ff], ['mlp.c_proj', ff, d]] as const) {
        normal(`${p}.${name}.weight`, [inF, outF]);
        fill(`${p}.${name}.bias`, [outF], 0);
      }
    }
    fill('transformer.ln_f.weight', [d], 1);
    fill('transformer.ln_f.bias', [d], 0);
    return {
      config: { model_type: 'gpt2', n_embd: d, n_layer: L, n_head: heads, n_positions: positions, vocab_size: vocab, n_inner: ff, layer_norm_epsilon: 1e-5, activation_function: 'gelu_new', tie_word_embeddings: true },
      tensors,
    };
  }
  if (shape.family === 'llama') {
    normal('model.embed_tokens.weight', [vocab, d]);
    for (let i = 0; i < L; i++) {
      const p = `model.layers.${i}`;
      fill(`${p}.input_layernorm.weight`, [d], 1);
      fill(`${p}.post_attention_layernorm.weight`, [d], 1);
      normal(`${p}.self_attn.q_proj.weight`, [heads * hd, d]);
      normal(`${p}.self_attn.k_proj.weight`, [kv * hd, d]);
      normal(`${p}.self_attn.v_proj.weight`, [kv * hd, d]);
      normal(`${p}.self_attn.o_proj.weight`, [d, heads * hd]);
      normal(`${p}.mlp.gate_proj.weight`, [ff, d]);
      normal(`${p}.mlp.up_proj.weight`, [ff, d]);
      normal(`${p}.mlp.down_proj.weight`, [d, ff]);
    }
    fill('model.norm.weight', [d], 1);
    return {
      config: { model_type: 'llama', hidden_size: d, num_hidden_layers: L, num_attention_heads: heads, num_key_value_heads: kv, intermediate_size: ff, vocab_size: vocab, max_position_embeddings: positions, rms_norm_eps: 1e-5, rope_theta: 10000, hidden_act: 'silu', tie_word_embeddings: true },
      tensors,
    };
  }
  const p = 'bert';
  normal(`${p}.embeddings.word_embeddings.weight`, [vocab, d]);
  normal(`${p}.embeddings.position_embeddings.weight`, [positions, d]);
  normal(`${p}.embeddings.token_type_embeddings.weight`, [2, d]);
  fill(`${p}.embeddings.LayerNorm.weight`, [d], 1);
  fill(`${p}.embeddings.LayerNorm.bias`, [d], 0);
  for (let i = 0; i < L; i++) {
    const q = `${p}.encoder.layer.${i}`;
    for (const [name, inF, outF] of [['attention.self.query', d, d], ['attention.self.key', d, d], ['attention.self.value', d, d], ['attention.output.dense', d, d], ['intermediate.dense', d, ff], ['output.dense', ff, d]] as const) {
      normal(`${q}.${name}.weight`, [outF, inF]);
      fill(`${q}.${name}.bias`, [outF], 0);
    }
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) { fill(`${q}.${ln}.weight`, [d], 1); fill(`${q}.${ln}.bias`, [d], 0); }
  }
  return {
    config: { model_type: 'bert', hidden_size: d, num_hidden_layers: L, num_attention_heads: heads, intermediate_size: ff, vocab_size: vocab, max_position_embeddings: positions, layer_norm_eps: 1e-12, hidden_act: 'gelu', type_vocab_size: 2 },
    tensors,
  };
}
