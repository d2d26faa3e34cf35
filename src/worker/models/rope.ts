// RoPE's inverse frequencies from a Llama config.json, as Hugging Face transformers computes them
// (modeling_rope_utils.py). transformers 4 writes `rope_theta` at the top level and the scaling in
// `rope_scaling` (its type once under "type"); transformers 5 keeps both in `rope_parameters`. Only
// the scalings real Llama checkpoints use are implemented: anything else is refused, never ignored,
// since a wrong frequency gives plausible but wrong logits.
import { need } from './model.ts';

const SUPPORTED = ['default', 'linear', 'llama3'];

/** inv_freq[i] = 1 / θ^(2i/d) for the d/2 rotated pairs, then scaled as the rope_type says. */
export function ropeInvFreq(config: Record<string, unknown>, headDim: number): Float64Array {
  const params = ropeParams(config);
  const type = String(params.rope_type ?? params.type ?? 'default');
  if (!SUPPORTED.includes(type)) throw new Error(`config.json: rope_type "${type}" is not supported (supported: ${SUPPORTED.join(', ')})`);
  const partial = params.partial_rotary_factor ?? config.partial_rotary_factor ?? 1;
  if (partial !== 1) throw new Error(`config.json: partial_rotary_factor ${partial} is not supported (only 1)`);
  // transformers 5: rope_parameters' own theta first, then the top-level one
  const theta = positive(params.rope_theta ?? need<number>(config, 'rope_theta', 10000), 'rope_theta');

  const half = headDim / 2;
  const inv = new Float64Array(half);
  for (let i = 0; i < half; i++) inv[i] = 1 / Math.pow(theta, (2 * i) / headDim);
  if (type === 'linear') {
    // scaling positions by 1/factor is scaling every frequency by it
    const factor = positive(params.factor, 'factor');
    for (let i = 0; i < half; i++) inv[i] /= factor;
  } else if (type === 'llama3') {
    const factor = positive(params.factor, 'factor');
    const low = positive(params.low_freq_factor, 'low_freq_factor');
    const high = positive(params.high_freq_factor, 'high_freq_factor');
    const original = positive(params.original_max_position_embeddings, 'original_max_position_embeddings');
    if (!(high > low)) throw new Error(`config.json: RoPE high_freq_factor ${high} must exceed low_freq_factor ${low}`);
    // wavelengths longer than original/low are slowed by factor, shorter than original/high kept,
    // and the band between blends the two linearly in original/wavelength
    for (let i = 0; i < half; i++) {
      const wavelen = (2 * Math.PI) / inv[i];
      if (wavelen > original / low) inv[i] /= factor;
      else if (wavelen >= original / high) {
        const smooth = (original / wavelen - low) / (high - low);
        inv[i] = (1 - smooth) * (inv[i] / factor) + smooth * inv[i];
      }
    }
  }
  return inv;
}

/** The RoPE settings object of either layout ({} when there is none). */
function ropeParams(config: Record<string, unknown>): Record<string, unknown> {
  const p = config.rope_parameters ?? config.rope_scaling ?? {};
  if (typeof p !== 'object' || p === null || Array.isArray(p)) throw new Error('config.json: rope_parameters / rope_scaling is not an object');
  return p as Record<string, unknown>;
}

function positive(v: unknown, key: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new Error(`config.json: RoPE ${key} must be a positive number, got ${JSON.stringify(v ?? null)}`);
  return v;
}
