# Writes rope.json: RoPE inverse frequencies for Llama configs, computed with numpy in float64 after
# transformers' formulas (modeling_rope_utils.py: _compute_default_rope_parameters,
# _compute_linear_scaling_rope_parameters, _compute_llama3_parameters; the formulas are the same in
# transformers 4.45 through 5.x, where 5.x reads them from config.rope_parameters and 4.x from
# config.rope_scaling plus a top-level rope_theta). transformers itself computes in float32, so
# compare with a relative tolerance of about 1e-6. Run: python3 make_rope.py
import json
import math

import numpy as np


def default(theta, dim):
    return 1.0 / theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim)


def linear(theta, dim, factor):
    return default(theta, dim) / factor


def llama3(theta, dim, factor, low_freq_factor, high_freq_factor, original_max):
    inv_freq = default(theta, dim)
    low_freq_wavelen = original_max / low_freq_factor
    high_freq_wavelen = original_max / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    # long wavelengths are slowed by `factor`, short ones kept, and the band between blends the two
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (original_max / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return np.where(medium, smoothed, scaled)


BASE = {"model_type": "llama", "hidden_size": 64, "num_attention_heads": 8}
cases = []


def case(name, config, head_dim, inv_freq):
    cases.append({"name": name, "config": {**BASE, "head_dim": head_dim, **config}, "head_dim": head_dim, "inv_freq": [float(x) for x in inv_freq]})


case("no RoPE settings: theta 10000", {}, 8, default(10000.0, 8))
case("top-level rope_theta (transformers 4)", {"rope_theta": 500000.0, "rope_scaling": None}, 16, default(500000.0, 16))
case("rope_parameters default (transformers 5)", {"rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0}}, 16, default(1e6, 16))
case("rope_parameters beats a stale top-level rope_theta", {"rope_theta": 10000.0, "rope_parameters": {"rope_type": "default", "rope_theta": 250000.0}}, 8, default(250000.0, 8))
case("linear in rope_scaling with the old 'type' key (transformers 4)", {"rope_theta": 10000.0, "rope_scaling": {"type": "linear", "factor": 4.0}}, 8, linear(10000.0, 8, 4.0))
case("linear in rope_parameters, theta from the top level", {"rope_theta": 10000.0, "rope_parameters": {"rope_type": "linear", "factor": 2.0}}, 32, linear(10000.0, 32, 2.0))
llama31 = {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}
case("llama3 as Llama 3.1 8B writes it (transformers 4)", {"rope_theta": 500000.0, "rope_scaling": {"rope_type": "llama3", **llama31}}, 128, llama3(500000.0, 128, 8.0, 1.0, 4.0, 8192))
case("llama3 as Llama 3.2 1B in rope_parameters (transformers 5)", {"rope_parameters": {"rope_type": "llama3", "rope_theta": 500000.0, "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0, "original_max_position_embeddings": 8192}}, 64, llama3(500000.0, 64, 32.0, 1.0, 4.0, 8192))

# every band of the llama3 rule must be exercised by some case
inv = default(500000.0, 128)
wl = 2 * math.pi / inv
assert (wl < 8192 / 4).any() and ((wl >= 8192 / 4) & (wl <= 8192)).any() and (wl > 8192).any()

with open("rope.json", "w") as f:
    json.dump({"source": "numpy float64 after transformers' modeling_rope_utils.py (default, linear, llama3), transformers 4.45-5.x", "cases": cases}, f, indent=1)
    f.write("\n")
