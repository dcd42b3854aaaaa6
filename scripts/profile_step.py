"""Where a compiled training step's GPU time goes, per architecture variant (needs a GPU).

    python3 scripts/profile_step.py "" "arch.residual=mhc" "arch.residual=hyper,arch.hyper.dynamic=false"
    python3 scripts/profile_step.py --layers 12 --micro 60 ""
    python3 scripts/profile_step.py --layers 12 --micro 60 --mode reduce-overhead ""
    python3 scripts/profile_step.py --layers 12 --micro 60 --gaps 20 ""
    python3 scripts/profile_step.py --layers 12 --micro 60 --unit block ""

Each argument is a comma-separated list of recipe overrides on gpt2_124m ("" is the baseline);
the step is micro-batch --micro x 1024 (default 16) at --layers layers (default 4), bf16
autocast, compiled, clipping, fused AdamW, the loss as train.loss_kernel says (auto: fused with
the head) and Pre-LN's add and norm as train.norm_kernel says, as in bench. Prints, over 5
profiled steps: the wall time and the GPU's busy time a step (their gap is time the GPU waited on
the host), the GPU time by kind of kernel, and torch.profiler's table of the most expensive
kernels (--csv: every kernel, to a file).
"""
import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from gptablate.model.gpt import GPT, GPTConfig
from gptablate.recipe import load_recipe
from gptablate.train.engine import fused_loss_dtype, fused_kernels
from gptablate.train.optim import make_optimizer

KINDS = [  # (kind, substrings of the kernel name), first match wins
    ("matmul", ("nvjet", "gemm", "cutlass", "xmma", "cublas")),
    ("attention", ("cudnn", "flash", "fmha", "attention")),
    ("loss kernel", ("_ce_rows",)),
    ("add_norm / bias_gelu / qkv_join", ("_add_norm", "_bias_gelu", "_qkv_join")),
    ("hyper_step / aggregate / sinkhorn", ("_hyper_", "_agg_", "sinkhorn")),
    ("optimizer", ("adam", "multi_tensor", "foreach")),
    ("inductor reduction", ("triton_red", "triton_per")),
    ("inductor pointwise", ("triton_poi",)),
    ("memset / copy", ("memset", "memcpy", "copy")),
    ("embedding", ("embedding", "index", "scatter", "sort", "radix")),
]


def kind_of(name: str) -> str:
    low = name.lower()
    for kind, keys in KINDS:
        if any(k in low for k in keys):
            return kind
    return "other"


def idle_gaps(step, steps: int, top: int) -> None:
    """The GPU's idle time between kernels over `steps` steps, and the longest gaps with their neighbours.

    For the kernel after each gap: how long after its launch call returned on the host it
    started ("queued"); near zero means the GPU was waiting for the host to launch it.
    """
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    gaps_of(prof, steps, top)


def gaps_of(prof, steps: int, top: int) -> list:
    """idle_gaps' analysis of a finished profile (CPU and CUDA activities) over `steps` steps; returns its trace."""
    import json
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        prof.export_chrome_trace(f.name)
        trace = json.load(open(f.name))["traceEvents"]
    launches = {e["args"]["correlation"]: e for e in trace
                if e.get("cat") == "cuda_runtime" and "correlation" in e.get("args", {})}
    gpu = sorted((e for e in trace if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset")), key=lambda e: e["ts"])
    if not gpu:
        print("  no GPU activity in the profile")
        return trace
    gaps = []
    for a, b in zip(gpu, gpu[1:]):
        gap = b["ts"] - (a["ts"] + a["dur"])
        if gap > 0:
            launch = launches.get(b.get("args", {}).get("correlation"))
            queued = b["ts"] - (launch["ts"] + launch["dur"]) if launch else float("nan")
            gaps.append((gap, a["name"], b["name"], queued))
    span = gpu[-1]["ts"] + gpu[-1]["dur"] - gpu[0]["ts"]
    idle = sum(g[0] for g in gaps)
    print(f"  idle: {idle / steps / 1e3:.2f} ms a step of {span / steps / 1e3:.2f} ms (profiled with the host), "
          f"{len(gaps) / steps:.0f} gaps a step; over 50 us: "
          f"{sum(g[0] for g in gaps if g[0] > 50) / steps / 1e3:.2f} ms in {sum(g[0] > 50 for g in gaps) / steps:.0f}")
    for gap, before, after, queued in sorted(gaps, reverse=True)[:top]:
        print(f"  {gap:8.0f} us  queued {queued:7.0f} us  after {before[:60]}  before {after[:60]}")
    return trace


def write_kernels(events, steps: int, path: str) -> None:
    """Every kernel of the profiled steps, most expensive first: kind, launches and ms a step, full name."""
    import csv

    rows = []
    for e in events:
        us = e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
        if us > 0:
            rows.append((kind_of(e.key), e.count / steps, us / steps / 1e3, e.key))
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(("kind", "launches_per_step", "ms_per_step", "name"))
        for kind, count, ms, name in sorted(rows, key=lambda r: -r[2]):
            w.writerow((kind, f"{count:g}", f"{ms:.4f}", name))
    print(f"  every kernel: {path}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("specs", nargs="+")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--micro", type=int, default=16)
    ap.add_argument("--top", type=int, default=14)
    ap.add_argument("--mode", default=None, help="torch.compile mode, e.g. reduce-overhead (CUDA graphs)")
    ap.add_argument("--unit", choices=("model", "block"), default="model",
                    help="compile the model as one graph, or block by block (train.compile_unit=block)")
    ap.add_argument("--gaps", type=int, default=0, help="also list the N longest idle gaps between kernels")
    ap.add_argument("--csv", default=None, help="write every kernel (full name, launches and ms a step) to this file; "
                    "with several specs, one file each: FILE's stem gets the spec's number")
    args = ap.parse_args()
    steps = 5
    # as the engine sets them (train/engine.py): without, fp32 matmuls (hyper's weight gradient) ran as SIMT sgemms
    # in this profile (calls CN, CO), where the engine allows TF32
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    for number, spec in enumerate(args.specs):
        sets = [f"model.n_layer={args.layers}"] + [s for s in spec.split(",") if s]
        r = load_recipe("gpt2_124m", sets)
        torch.manual_seed(0)
        model = GPT(GPTConfig.from_recipe(r)).cuda()
        model.fused_loss_dtype = fused_loss_dtype(r.train.loss_kernel, torch.device("cuda"), torch.bfloat16)
        model.fused_kernels = fused_kernels(r.train.norm_kernel, torch.device("cuda"))
        opt = make_optimizer(model, r.train, "cuda")
        cm = torch.compile(model, mode=args.mode) if args.mode else model.compiled(args.unit)
        x = torch.randint(0, 50257, (args.micro, 1025), device="cuda")

        def step():
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = cm(x[:, :-1], x[:, 1:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)

        for _ in range(4):
            step()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        wall_ms = (time.perf_counter() - t0) / steps * 1e3
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                step()
            torch.cuda.synchronize()
        events = prof.key_averages()
        by_kind: dict[str, float] = {}
        for e in events:
            us = e.device_time_total if hasattr(e, "device_time_total") else e.cuda_time_total
            by_kind[kind_of(e.key)] = by_kind.get(kind_of(e.key), 0.0) + us
        busy_ms = sum(by_kind.values()) / steps / 1e3
        tok = args.micro * 1024
        mode = f" ({args.mode})" if args.mode else (" (by block)" if args.unit == "block" else "")
        print(f"==== {spec or 'baseline'}{mode}: {args.layers} layers, micro-batch {args.micro}: "
              f"wall {wall_ms:.2f} ms a step ({tok / wall_ms:.1f}K tokens/s, unprofiled), "
              f"GPU busy {busy_ms:.2f} ms a step")
        for kind, us in sorted(by_kind.items(), key=lambda kv: -kv[1]):
            ms = us / steps / 1e3
            print(f"  {kind:<20} {ms:8.2f} ms  {100 * ms / max(busy_ms, 1e-9):5.1f}%")
        print(events.table(sort_by="cuda_time_total", row_limit=args.top, max_name_column_width=70))
        if args.csv:
            write_kernels(events, steps, args.csv if len(args.specs) == 1 else
                          args.csv.replace(".csv", f"_{number}.csv"))
        if args.gaps:
            idle_gaps(step, steps, args.gaps)
        torch._dynamo.reset()


if __name__ == "__main__":
    main()
