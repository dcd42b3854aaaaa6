"""hyper_step's kernels on the 124M step's streams (61,440 tokens x 4 x 768, fp32): time by grid, warps and registers.

    python3 scripts/device/hyperstep_bench.py [--write-best] [--norm-only | --stages-only]

Prints, for the dynamic LayerNorm site (arch.hyper's default) and the static one, each kernel's time
and the bandwidth its bytes imply (forward: read H and out, write H' and x_in; backward: read dH', dx,
H and out, write dH and d_out; it reads H twice, forming H' from it first, and the second read is
counted once, as if it came from L2), by tokens per program, warps and register cap (maxnreg), and
the torch matmul the backward adds for the projection's weight gradient; then the dynamic site with the site's
LayerNorm folded in (the forward writes h = N(x_in) in bf16 rather than x_in in fp32, the backward reads dh; TUNING's
"norm" case). --norm-only sweeps that case alone. --stages-only times the dynamic case with and without the norm at
their TUNING with the token loops pipelined over 1, 2 and 3 stages (STAGES). --write-best writes each case's fastest
into TUNING (or the fastest STAGES for the norm case) in gptablate/model/hyperstep.py. --widths times the norm case at
rows of 512, 768 and 1,024 features (the same stream bytes), for what the tile's padding of a 768-wide row costs.
"""
import re
import sys
from pathlib import Path

import torch

from gptablate.model import hyperstep as HS


def timed(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def inputs(M, n, D, dynamic, device="cuda", norm=False):
    """hyper_step's arguments for a site with a write; with `norm`, the site's LayerNorm folded in (h in bf16)."""
    f = dict(device=device, dtype=torch.float32)
    torch.manual_seed(0)
    Hk = torch.randn(M, n, D, **f)
    out = torch.randn(M, D, device=device, dtype=torch.bfloat16)
    Ck = torch.randn(M, n, n + 2, **f)
    wt, bw, s = torch.randn(n + 2, D, **f) * 0.1, torch.zeros(n + 2, **f), torch.tensor([0.01, 0.01], **f)
    if not dynamic:
        wt, bw, s = (x.new_zeros(0) for x in (wt, bw, s))
    a_s, b_s = torch.randn(n, n + 1, **f), torch.ones(n, **f)
    nw = (1 + 0.1 * torch.randn(D, **f)) if norm else torch.zeros(0, **f)
    nb = 0.1 * torch.randn(D, **f) if norm else torch.zeros(0, **f)
    return (Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, 1e-5, True, dynamic, True,
            torch.bfloat16 if norm else torch.float32)


def step_calls(M, n, D, dynamic, norm=False):
    """(forward, backward, H'): hyper_step and its backward on one site's inputs as two callables, for timing."""
    args = inputs(M, n, D, dynamic, norm=norm)
    Hk, out, Ck, wt, bw, s = args[:6]
    H1, y, C1, z, mean, rstd, nmean, nrstd = torch.ops.gptablate.hyper_step(*args)
    dH1, dy, dC1 = torch.randn_like(H1), torch.randn_like(y), torch.randn_like(C1)

    def forward():
        return torch.ops.gptablate.hyper_step(*args)

    def backward():
        return torch.ops.gptablate.hyper_step_backward(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy, dC1,
                                                       args[8], nmean, nrstd, True, dynamic, True)

    return forward, backward, H1


def sweep(M, n, D, dynamic, norm=False):
    forward, backward, H1 = step_calls(M, n, D, dynamic, norm)
    stream = M * n * D * 4
    row = 2 if norm else 4  # x_in in fp32, or h (and dh) in bf16
    fwd_bytes = 2 * stream + M * D * (2 + row)
    bwd_bytes = 3 * stream + M * D * (row + 2 + 2)
    key = "norm" if norm else dynamic
    print(f"{'dynamic' if dynamic else 'static'} site{' with its LayerNorm' if norm else ''}: streams "
          f"{stream / 1e9:.3f} GB; forward moves {fwd_bytes / 1e9:.2f} GB, backward {bwd_bytes / 1e9:.2f} GB",
          flush=True)
    times = {}
    for tokens in TOKENS:
        for warps in (4, 8):
            for maxnreg in (None, 128, 168):
                HS.TUNING = {**TUNING, key: (tokens, (warps, maxnreg), (warps, maxnreg))}
                try:
                    fw, bw_ms = timed(forward), timed(backward)
                except Exception as e:  # e.g. a Triton without maxnreg
                    print(f"  tokens/program {tokens} warps {warps} maxnreg {maxnreg}: failed: {str(e)[:200]}")
                    continue
                times[tokens, warps, maxnreg] = (fw, bw_ms)
                print(f"  tokens/program {tokens} warps {warps} maxnreg {maxnreg}: forward {fw:.3f} ms "
                      f"({fwd_bytes / fw / 1e6:.0f} GB/s), backward {bw_ms:.3f} ms ({bwd_bytes / bw_ms / 1e6:.0f} GB/s)",
                      flush=True)
    best = {}
    for tokens in TOKENS:
        f = min((v[0], k) for k, v in times.items() if k[0] == tokens)
        b = min((v[1], k) for k, v in times.items() if k[0] == tokens)
        best[tokens] = (f[0] + b[0], f[1], b[1])
    total, f, b = min(best.values())
    print(f"  best: tokens/program {f[0]}; forward warps {f[1]} maxnreg {f[2]} ({times[f][0]:.3f} ms), backward warps "
          f"{b[1]} maxnreg {b[2]} ({times[b][1]:.3f} ms): {total:.3f} ms a site", flush=True)
    if dynamic:
        torch.backends.cuda.matmul.allow_tf32 = True  # as the engine sets it
        sz = torch.randn(M * n, n + 2, device="cuda")
        mm = timed(lambda: sz.t() @ H1.reshape(M * n, D))
        print(f"  backward's weight-gradient matmul (tf32): {mm:.3f} ms", flush=True)
    return f[0], f[1:], b[1:]


TUNING = dict(HS.TUNING)
TOKENS = (4, 16, 64)


def stages(M, n, D):
    """Forward and backward at TUNING for each number of pipeline stages; the best (forward, backward) of the norm
    case."""
    best = {}
    for norm in (False, True):
        forward, backward, _ = step_calls(M, n, D, True, norm)
        times = {}
        for st in (1, 2, 3):
            HS.STAGES = (st, st)
            try:
                fw, bw_ms = timed(forward), timed(backward)
            except Exception as e:
                print(f"  stages {st}: failed: {str(e)[:200]}", flush=True)
                continue
            times[st] = (fw, bw_ms)
            print(f"dynamic site{' with its LayerNorm' if norm else ''}, stages {st}: forward {fw:.3f} ms, backward "
                  f"{bw_ms:.3f} ms", flush=True)
        if norm:
            best = (min(times, key=lambda k: times[k][0]), min(times, key=lambda k: times[k][1]))
    HS.STAGES = best
    return best


def widths(n=4):
    """The norm case at TUNING and each STAGES for rows of 512, 768 and 1,024 features, the streams the same bytes
    (61,440 x 768 tokens x features): 768 fills 1,024 lanes of the kernels' (stream, chunk, feature) tile, a quarter of
    them masked, where 512 and 1,024 fill theirs, so the GB/s of the three say what the padding costs."""
    for D in (512, 768, 1024):
        M = 61440 * 768 // D
        forward, backward, _ = step_calls(M, n, D, True, norm=True)
        stream = M * n * D * 4
        fwd_bytes, bwd_bytes = 2 * stream + M * D * 4, 3 * stream + M * D * 6
        for st in (1, 2):
            HS.STAGES = (st, st)
            fw, bw_ms = timed(forward), timed(backward)
            print(f"D {D} (M {M}), stages {st}: forward {fw:.3f} ms ({fwd_bytes / fw / 1e6:.0f} GB/s), backward "
                  f"{bw_ms:.3f} ms ({bwd_bytes / bw_ms / 1e6:.0f} GB/s)", flush=True)


def write_constants(module, values: dict) -> None:
    """Module-level constants written into the module's file: each line `NAME = (...)` becomes `NAME = value`
    (wgrad_bench.py's WGRAD, hyperstatic_bench.py's shapes)."""
    path = Path(module.__file__)
    text = path.read_text()
    for name, value in values.items():
        text, done = re.subn(rf"^{name} = \(.*\)$", f"{name} = {value}", text, flags=re.M)
        assert done == 1, f"no line {name} = (...) in {path}"
    path.write_text(text)
    print(f"wrote to {path}: " + ", ".join(f"{name} = {value}" for name, value in values.items()), flush=True)


def write_tuning(stages=None, rows=None, stages_name="STAGES"):
    """STAGES (or `stages_name`: STAGES_BF16) and TUNING's rows ({key: row}) written into gptablate/model/hyperstep.py
    (this script's and hyperstep_ab.py's --write-best)."""
    path = Path(HS.__file__)
    text = path.read_text()
    if stages is not None:
        text, done = re.subn(rf"^{stages_name} = \(.*\)$", f"{stages_name} = {stages}", text, flags=re.M)
        assert done == 1
    for key, row in (rows or {}).items():
        name = f'"{key}"' if isinstance(key, str) else key
        text, done = re.subn(rf"^    {name}: \(.*\),", f"    {name}: {row},", text, flags=re.M)
        assert done == 1, key
    path.write_text(text)
    print(f"wrote to {path}:{f' {stages_name} = {stages}' if stages is not None else ''}"
          f"{f' TUNING = {rows}' if rows else ''}", flush=True)


def main():
    if "--widths" in sys.argv:
        widths()
        return
    if "--stages-only" in sys.argv:
        best = stages(61440, 4, 768)
        print(f"best stages (forward, backward), the norm case: {best}")
        if "--write-best" in sys.argv:
            write_tuning(stages=best)
        return
    best = {} if "--norm-only" in sys.argv else {dynamic: sweep(61440, 4, 768, dynamic) for dynamic in (True, False)}
    best["norm"] = sweep(61440, 4, 768, True, norm=True)
    if "--write-best" in sys.argv:
        write_tuning(rows=best)


if __name__ == "__main__":
    main()
