#!/usr/bin/env python3
"""Step time and peak memory of every architecture variant relative to the baseline, on a GPU.

A 4-layer, 768-wide, 12-head model (short compiles), micro-batch 16 × 1024 tokens of
synthetic data, bf16 autocast, fused AdamW, torch.compile with inductor. One JSON line per
variant goes to stdout as it finishes, then a table.

    python3 scripts/bench_variants.py [--only NAME,...] [--steps 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import torch

from gptablate.model.gpt import GPT, GPTConfig
from gptablate.recipe import load_recipe
from gptablate.train.optim import make_optimizer

VARIANTS = {
    "baseline": [],
    **{f"norm={n}": [f"arch.norm={n}"] for n in ("rmsnorm", "scalenorm", "dyt")},
    **{f"block={b}": [f"arch.block={b}"] for b in
       ("post", "sandwich", "peri", "mixln", "deepnorm", "parallel", "parallel_neox", "resi_dual")},
    **{f"residual={r}": [f"arch.residual={r}"] for r in
       ("rezero", "gates", "layerscale", "x0", "learned_scaling", "prores", "hyper", "mhc", "denseformer",
        "attnres", "laurel")},
    "residual=hyper-static": ["arch.residual=hyper", "arch.hyper.dynamic=false"],
    "residual=attnres-full": ["arch.residual=attnres", "arch.attnres.mode=full"],
    "residual=laurel-lr": ["arch.residual=laurel", "arch.laurel.mode=lr"],
    "qk_norm": ["arch.qk_norm=true"],
    "value_residual": ["arch.value_residual=true"],
}
SHAPE = ["model.n_layer=4", "model.n_embd=768", "model.n_head=12", "model.block_size=1024", "train.max_iters=1000"]


def bench(overrides, steps: int, micro: int = 16) -> dict:
    torch._dynamo.reset()
    recipe = load_recipe("gpt2_124m", SHAPE + overrides)
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_recipe(recipe)).cuda()
    model.set_step(500)
    opt = make_optimizer(model, recipe.train, "cuda")
    step_fn = torch.compile(model)
    x = torch.randint(0, 50257, (micro, 1025), device="cuda")
    t0 = time.perf_counter()

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = step_fn(x[:, :-1], x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    compile_s = time.perf_counter() - t0
    torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(steps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    ms = statistics.median(times)
    return {"step_ms": ms, "tokens_per_s": micro * 1024 / ms * 1e3, "compile_s": compile_s,
            "peak_mem_gib": torch.cuda.max_memory_allocated() / 2**30, "params": model.num_params()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    names = [n for n in VARIANTS if not args.only or n in args.only.split(",") or n == "baseline"]
    rows = {}
    for name in names:
        try:
            rows[name] = bench(VARIANTS[name], args.steps)
        except Exception as e:  # a failing variant is a finding, not the end of the table
            rows[name] = {"error": f"{e.__class__.__name__}: {str(e).splitlines()[0][:200]}"}
        print(json.dumps({"variant": name, **rows[name]}), flush=True)
    base = rows["baseline"]
    print(f"\n{'variant':28} {'step ms':>8} {'x base':>7} {'peak GiB':>9} {'x base':>7} {'compile s':>9}")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:28} {r['error']}")
            continue
        print(f"{name:28} {r['step_ms']:8.2f} {r['step_ms'] / base['step_ms']:7.3f} {r['peak_mem_gib']:9.2f} "
              f"{r['peak_mem_gib'] / base['peak_mem_gib']:7.3f} {r['compile_s']:9.1f}")
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}", file=sys.stderr)


if __name__ == "__main__":
    main()
