#!/usr/bin/env python3
"""Check an exported FedForward adapter in the Hugging Face ecosystem (not part of `npm test`).

Loads the PEFT adapter with PEFT (AutoPeftModel*, so the base model is found through
adapter_config.json's base_model_name_or_path, or --base), optionally a merged checkpoint
(`fedforward export --merged`) with transformers, runs one prompt of token ids through each, also
through FedForward's own forward pass (`fedforward generate --adapter DIR --ids ... --json`), and prints
the max abs difference of each pair's logits: of the last prompt position for a causal-LM adapter
(whose greedy ids are compared too), the class logits for a classification adapter (SEQ_CLS, as
`fedforward demo` exports). Exits 1 when a difference exceeds --tol (relative to the largest |logit|).

  python3 bench/check_peft.py --adapter fedforward-demo/adapter
  python3 bench/check_peft.py --adapter ADAPTER --merged MERGED --ids 3,17,42,9 --max-new-tokens 8

Needs torch, transformers (4.56 or later: it passes `dtype`) and peft, e.g. `python3 -m venv .venv &&
.venv/bin/pip install torch transformers peft`; run from the repository root, where `npm run fedforward`
works. Everything runs in float32 on the CPU, with eager attention.
"""
import argparse
import json
import os
import subprocess
import sys

import torch
from safetensors import safe_open
from peft import AutoPeftModelForCausalLM, AutoPeftModelForSequenceClassification, PeftModel
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--adapter", required=True, help="an exported PEFT adapter directory (adapter_config.json, adapter_model.safetensors)")
    p.add_argument("--base", help="the base model directory (default: adapter_config.json's base_model_name_or_path)")
    p.add_argument("--merged", help="a merged checkpoint of the same round (fedforward export --merged)")
    p.add_argument("--ids", default="3,17,42,9,5", help="prompt token ids, comma-separated (default: 3,17,42,9,5)")
    p.add_argument("--max-new-tokens", type=int, default=8, help="greedy tokens compared with FedForward's (causal LM)")
    p.add_argument("--tol", type=float, default=1e-4, help="largest allowed |difference| / max |logit| (default: 1e-4)")
    return p.parse_args()


def last_logits(model, ids, causal):
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long)).logits
    return (out[0, -1] if causal else out[0]).to(torch.float64)


def fedforward_generate(base, adapter, ids, max_new_tokens):
    """FedForward's output for the prompt, from its command line: for a causal-LM adapter the logits
    of the last prompt position (lastLogits) and the greedy ids, for a classification adapter the
    class logits (logits)."""
    cmd = ["npm", "run", "--silent", "fedforward", "--", "generate", "--model", base, "--adapter", adapter,
           "--ids", ",".join(map(str, ids)), "--max-new-tokens", str(max_new_tokens), "--json"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"fedforward generate failed: {run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main():
    a = parse_args()
    adapter = os.path.abspath(a.adapter)
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        cfg = json.load(f)
    causal = cfg["task_type"] == "CAUSAL_LM"
    ids = [int(x) for x in a.ids.split(",")]
    kw = {"dtype": torch.float32, "attn_implementation": "eager"}
    head = {} if causal else {"num_labels": num_labels(adapter)}

    if a.base:
        base_cls = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
        peft_model = PeftModel.from_pretrained(base_cls.from_pretrained(a.base, **kw, **head), adapter)
        base = os.path.abspath(a.base)
    else:
        peft_cls = AutoPeftModelForCausalLM if causal else AutoPeftModelForSequenceClassification
        peft_model = peft_cls.from_pretrained(adapter, **kw, **head)
        base = cfg["base_model_name_or_path"]
    peft_model.eval()
    ids_equal = True
    logits = {"peft": last_logits(peft_model, ids, causal)}

    if a.merged:
        merged_cls = AutoModelForCausalLM if causal else AutoModelForSequenceClassification
        logits["merged"] = last_logits(merged_cls.from_pretrained(a.merged, **kw).eval(), ids, causal)

    ff = fedforward_generate(base, adapter, ids, a.max_new_tokens)
    logits["fedforward"] = torch.tensor(ff["lastLogits"] if causal else ff["logits"], dtype=torch.float64)
    if causal:
        ff_ids = ff["ids"]
        with torch.no_grad():
            hf = peft_model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                     max_new_tokens=a.max_new_tokens, do_sample=False)[0, len(ids):].tolist()
        # FedForward stops at the tokenizer's EOS and transformers at generation_config's: compare the common part
        n = min(len(hf), len(ff_ids))
        ids_equal = hf[:n] == ff_ids[:n]
        print(f"greedy ids: PEFT {hf}, FedForward {ff_ids}")
    else:
        print(f"class logits: PEFT {logits['peft'].tolist()}, FedForward {ff['logits']} ({ff['label']})")

    names = list(logits)
    scale = max(v.abs().max().item() for v in logits.values())
    worst = 0.0
    for i, x in enumerate(names):
        for y in names[i + 1:]:
            d = (logits[x] - logits[y]).abs().max().item()
            worst = max(worst, d / scale)
            print(f"max |{x} - {y}| = {d:.3e}  (relative to max |logit| {scale:.3g}: {d / scale:.3e})")
    ok = worst <= a.tol and ids_equal
    print("OK" if ok else f"MISMATCH (tolerance {a.tol:g})")
    sys.exit(0 if ok else 1)


def num_labels(adapter):
    """The classification head's size: fedforward.json's labels, else the head tensor's rows."""
    meta = os.path.join(adapter, "fedforward.json")
    if os.path.exists(meta):
        with open(meta) as f:
            labels = json.load(f).get("labels")
        if labels:
            return len(labels)
    with safe_open(os.path.join(adapter, "adapter_model.safetensors"), "pt") as f:
        head = next(k for k in f.keys() if k.endswith(("score.weight", "classifier.weight")))
        return f.get_slice(head).get_shape()[0]


if __name__ == "__main__":
    main()
