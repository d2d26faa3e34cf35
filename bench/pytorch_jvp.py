#!/usr/bin/env python3
"""PyTorch side of the engine benchmark: the same GPT-2 step as `fedforward bench` measures, with
random weights, LoRA (r 1, alpha 1, dropout 0.1) on every layer's c_attn, a 2-class head on the
last token, cross-entropy loss. Modes, each in its own process so that peak RSS is its own:
  jvp        forward mode, one tangent on every LoRA tensor and the head (torch.func.jvp when
             present, else torch.autograd.forward_ad: PyTorch 1.13 has no torch.func)
  inference  the loss, no gradient
  backprop   loss.backward() on the LoRA tensors and the head
  weights    builds the model and runs nothing (the baseline of working memory)
Prints one JSON object: torch version, threads, and per mode the median step time and peak RSS.

  python3 bench/pytorch_jvp.py --shape 4x256 --batch 8 --seq 64 --threads 2
"""
import argparse
import json
import math
import resource
import subprocess
import sys
import time

SHAPES = {
    # layers, hidden, heads, vocab, positions
    "4x256": (4, 256, 4, 8192, 1024),
    "small": (12, 768, 12, 50257, 1024),
}


def run_mode(mode, shape, batch, seq, steps, threads):
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    layers, d, heads, vocab, positions = SHAPES[shape]
    hd = d // heads

    def normal(*s):
        return torch.randn(*s) * 0.02

    base = {"wte": normal(vocab, d), "wpe": normal(positions, d), "ln_f": (torch.ones(d), torch.zeros(d)), "h": []}
    for _ in range(layers):
        base["h"].append({
            "ln1": (torch.ones(d), torch.zeros(d)), "ln2": (torch.ones(d), torch.zeros(d)),
            "attn": (normal(d, 3 * d), torch.zeros(3 * d)), "proj": (normal(d, d), torch.zeros(d)),
            "fc": (normal(d, 4 * d), torch.zeros(4 * d)), "out": (normal(4 * d, d), torch.zeros(d)),
        })
    # the adapter: A [1, d], B [3d, 1] per layer, B != 0 as in the TypeScript bench; head [2, d]
    adapter = []
    for _ in range(layers):
        adapter += [normal(1, d), normal(3 * d, 1)]
    adapter.append(normal(2, d))
    adapter = tuple(adapter)
    ids = torch.randint(0, vocab, (batch, seq))
    labels = torch.randint(0, 2, (batch,))
    causal = torch.triu(torch.full((seq, seq), -1e9), diagonal=1)

    def loss_of(adapter, train):
        h = base["wte"][ids] + base["wpe"][:seq]
        for i, blk in enumerate(base["h"]):
            a = F.layer_norm(h, (d,), *blk["ln1"], eps=1e-5)
            A, B = adapter[2 * i], adapter[2 * i + 1]
            x = F.dropout(a, 0.1, train)
            qkv = a @ blk["attn"][0] + blk["attn"][1] + (x @ A.t()) @ B.t()
            q, k, v = (t.view(batch, seq, heads, hd).transpose(1, 2) for t in qkv.split(d, dim=-1))
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + causal, dim=-1)
            y = (att @ v).transpose(1, 2).reshape(batch, seq, d)
            h = h + y @ blk["proj"][0] + blk["proj"][1]
            m = F.layer_norm(h, (d,), *blk["ln2"], eps=1e-5)
            h = h + F.gelu(m @ blk["fc"][0] + blk["fc"][1], approximate="tanh") @ blk["out"][0] + blk["out"][1]
        h = F.layer_norm(h, (d,), *base["ln_f"], eps=1e-5)
        logits = h[:, -1] @ adapter[-1].t()
        return F.cross_entropy(logits, labels)

    tangents = tuple(torch.randn_like(p) for p in adapter)

    def jvp_step():
        if hasattr(torch, "func"):
            return torch.func.jvp(lambda *ps: loss_of(ps, True), adapter, tangents)
        import torch.autograd.forward_ad as fwAD
        with fwAD.dual_level():
            duals = tuple(fwAD.make_dual(p, t) for p, t in zip(adapter, tangents))
            out = fwAD.unpack_dual(loss_of(duals, True))
            return out.primal.item(), out.tangent.item()

    def backprop_step():
        ps = tuple(p.clone().requires_grad_(True) for p in adapter)
        loss = loss_of(ps, True)
        loss.backward()
        return loss.item()

    def inference_step():
        with torch.no_grad():
            return loss_of(adapter, False).item()

    step = {"jvp": jvp_step, "backprop": backprop_step, "inference": inference_step}.get(mode)
    times = []
    if step:
        step()  # warm-up
        for _ in range(steps):
            t0 = time.perf_counter()
            step()
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {
        "mode": mode,
        "medianStepMs": times[len(times) // 2] if times else None,
        "stepMs": times,
        "peakRssBytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="4x256")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--modes", default="jvp,inference,backprop,weights")
    p.add_argument("--one", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(run_mode(a.one, a.shape, a.batch, a.seq, a.steps, a.threads)))
        return
    results = []
    for mode in a.modes.split(","):
        args = [sys.executable, __file__, "--one", mode, "--shape", a.shape, "--batch", str(a.batch), "--seq", str(a.seq), "--steps", str(a.steps), "--threads", str(a.threads)]
        out = subprocess.run(args, capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"pytorch_jvp: mode {mode} failed: {(out.stderr.strip().splitlines() or ['exit ' + str(out.returncode)])[-1]}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps({"shape": a.shape, "batch": a.batch, "seq": a.seq, "torch": results[0]["torch"], "threads": results[0]["threads"], "results": results}, indent=2))


if __name__ == "__main__":
    main()
