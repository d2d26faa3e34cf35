# Writes targets.json: which modules PEFT's LoRA selects for given target_modules, on the module
# names Hugging Face transformers gives GPT2ForSequenceClassification, LlamaForCausalLM and
# BertForSequenceClassification (2 layers each, from model.named_modules()). The rule is PEFT's
# check_target_module_exists (peft 0.20.1.dev0, commit 5d602fd, src/peft/tuners/tuners_utils.py),
# restated here without FedForward's code: a string is re.fullmatch'ed; a list entry matches a
# name equal to it or ending in "." + entry; modules under modules_to_save are never targets; LoRA
# then wraps only the selected Linear/Conv1D modules. Run: python3 make_targets.py
import json
import re

LAYERS = 2


def gpt2():
    mods = [("transformer", "other"), ("transformer.wte", "embedding"), ("transformer.wpe", "embedding"), ("transformer.drop", "other"), ("transformer.h", "other")]
    for i in range(LAYERS):
        p = f"transformer.h.{i}"
        mods += [(p, "other"), (f"{p}.ln_1", "other"), (f"{p}.attn", "other"), (f"{p}.attn.c_attn", "linear"), (f"{p}.attn.c_proj", "linear"),
                 (f"{p}.attn.attn_dropout", "other"), (f"{p}.attn.resid_dropout", "other"), (f"{p}.ln_2", "other"), (f"{p}.mlp", "other"),
                 (f"{p}.mlp.c_fc", "linear"), (f"{p}.mlp.c_proj", "linear"), (f"{p}.mlp.act", "other"), (f"{p}.mlp.dropout", "other")]
    return mods + [("transformer.ln_f", "other"), ("score", "linear")]


def llama():
    mods = [("model", "other"), ("model.embed_tokens", "embedding"), ("model.layers", "other")]
    for i in range(LAYERS):
        p = f"model.layers.{i}"
        mods += [(p, "other"), (f"{p}.self_attn", "other")]
        mods += [(f"{p}.self_attn.{m}", "linear") for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
        mods += [(f"{p}.mlp", "other")] + [(f"{p}.mlp.{m}", "linear") for m in ("gate_proj", "up_proj", "down_proj")]
        mods += [(f"{p}.mlp.act_fn", "other"), (f"{p}.input_layernorm", "other"), (f"{p}.post_attention_layernorm", "other")]
    return mods + [("model.norm", "other"), ("model.rotary_emb", "other"), ("lm_head", "linear")]


def bert():
    e = "bert.embeddings"
    mods = [("bert", "other"), (e, "other"), (f"{e}.word_embeddings", "embedding"), (f"{e}.position_embeddings", "embedding"),
            (f"{e}.token_type_embeddings", "embedding"), (f"{e}.LayerNorm", "other"), (f"{e}.dropout", "other"), ("bert.encoder", "other"), ("bert.encoder.layer", "other")]
    for i in range(LAYERS):
        p = f"bert.encoder.layer.{i}"
        mods += [(p, "other"), (f"{p}.attention", "other"), (f"{p}.attention.self", "other")]
        mods += [(f"{p}.attention.self.{m}", "linear") for m in ("query", "key", "value")]
        mods += [(f"{p}.attention.self.dropout", "other"), (f"{p}.attention.output", "other"), (f"{p}.attention.output.dense", "linear"),
                 (f"{p}.attention.output.LayerNorm", "other"), (f"{p}.attention.output.dropout", "other"), (f"{p}.intermediate", "other"),
                 (f"{p}.intermediate.dense", "linear"), (f"{p}.intermediate.intermediate_act_fn", "other"), (f"{p}.output", "other"),
                 (f"{p}.output.dense", "linear"), (f"{p}.output.LayerNorm", "other"), (f"{p}.output.dropout", "other")]
    return mods + [("bert.pooler", "other"), ("bert.pooler.dense", "linear"), ("bert.pooler.activation", "other"), ("dropout", "other"), ("classifier", "linear")]


def selected(targets, key, modules_to_save):
    if modules_to_save and any(re.match(rf"(^|.*\.){m}($|\..*)", key) for m in modules_to_save):
        return False
    if isinstance(targets, str):
        return re.fullmatch(targets, key) is not None
    return key in targets or any(key.endswith(f".{t}") for t in targets)


CASES = {
    "gpt2": (gpt2(), ["score"], [["c_proj"], ["c_attn"], ["attn.c_proj"], ["c_attn", "c_proj", "c_fc"], ["h.1.mlp.c_fc"], r"transformer\.h\.1\.(attn|mlp)\.c_proj", r".*c_(attn|fc)"]),
    "llama": (llama(), None, [["q_proj", "v_proj"], ["down_proj"], ["self_attn.o_proj", "mlp.up_proj"], ["layers.0.self_attn.k_proj"], r"model\.layers\.\d+\.self_attn\.(q|k)_proj", r".*\.1\..*_proj"]),
    "bert": (bert(), ["classifier"], [["query", "value"], ["dense"], ["attention.output.dense"], r".*\.0\.attention\.self\.(query|key)"]),
}

out = {"peft": "0.20.1.dev0 (commit 5d602fdbff04c33c1c4de55cda9d4ae1d7cb7e40), tuners_utils.check_target_module_exists", "layers": LAYERS, "families": {}}
for family, (mods, to_save, cases) in CASES.items():
    out["families"][family] = {
        "modules": [{"name": n, "kind": k} for n, k in mods],
        "modules_to_save": to_save,
        "cases": [{"target_modules": t, "selected": [n for n, k in mods if k == "linear" and selected(t, n, to_save)]} for t in cases],
    }
with open("targets.json", "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
