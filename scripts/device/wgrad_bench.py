"""hyper_step's projection weight gradient: the matmul it was until call FF against _hyper_wgrad_kernel's shapes.

    python3 scripts/device/wgrad_bench.py [--shape TOKENS,WIDTH] [--write-best]

On the 124M step's streams (61,440 tokens x 4 x 768; --shape for others) with J = 6 columns: the matmul dzᵀ(rstd·H')
less Σ dz·rstd·μ as the backward took it (fp32, TF32 allowed as the engine allows it), then the kernel at
hyperstep.WGRAD and a sweep of (programs an SM, rows a step, features a program, warps, stages), each with its distance
from the float64 result relative to that result's largest entry. --write-best writes the fastest shape into
gptablate/model/hyperstep.py's WGRAD.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_bench import timed, write_constants  # noqa: E402

from gptablate.model import hyperstep as HS  # noqa: E402

# (rows a step, features a program, warps): a thread holds JP x BR x BD / (32 x warps) accumulators
SHAPES = [(4, 256, 4), (2, 256, 4), (4, 128, 2), (8, 256, 8), (4, 512, 8), (2, 512, 4), (8, 128, 4)]


def main():
    argv = sys.argv[1:]
    M, D = tuple(map(int, argv[argv.index("--shape") + 1].split(","))) if "--shape" in argv else (61440, 768)
    n, J = 4, 6
    torch.backends.cuda.matmul.allow_tf32 = True
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    H1 = torch.randn(M, n, D, **f) * 2 + 0.3
    dz = torch.randn(M, n, J, **f) * 0.1
    mean = torch.randn(M, n, **f) * 0.3
    rstd = torch.rand(M, n, **f) + 0.5
    ref = HS.hyper_weight_grad_reference(H1.double(), dz.double(), mean.double(), rstd.double())

    def distance(w):
        return ((w.double() - ref).abs().max() / ref.abs().max()).item()

    def matmul():
        sz = (dz * rstd[..., None]).reshape(M * n, J)
        return sz.t() @ H1.reshape(M * n, D) - (sz * mean.reshape(M * n, 1)).sum(0)[:, None]

    gb = H1.numel() * 4 / 1e9
    ms = timed(matmul)
    print(f"streams {M} x {n} x {D} ({gb:.3f} GB); matmul (TF32): {ms:.3f} ms, {gb / ms:.2f} TB/s, "
          f"distance {distance(matmul()):.1e}", flush=True)
    times = {}
    for per_sm in (2, 4, 8):
        for br, bd, warps in SHAPES:
            for stages in (2, 3, 4):
                shape = (per_sm, br, bd, warps, stages)
                try:
                    ms = timed(lambda: HS.weight_grad_kernel(H1, dz, mean, rstd, shape))
                except Exception as e:  # noqa: BLE001 - a shape that does not compile or launch
                    print(f"  {shape}: failed: {str(e)[:160]}", flush=True)
                    continue
                times[shape] = ms
                print(f"  {shape}: {ms:.3f} ms, {gb / ms:.2f} TB/s, distance "
                      f"{distance(HS.weight_grad_kernel(H1, dz, mean, rstd, shape)):.1e}", flush=True)
    best = min(times, key=times.get)
    print(f"WGRAD {HS.WGRAD}: {timed(lambda: HS.weight_grad_kernel(H1, dz, mean, rstd)):.3f} ms; best {best}: "
          f"{times[best]:.3f} ms", flush=True)
    if "--write-best" in argv:
        write_constants(HS, {"WGRAD": best})


if __name__ == "__main__":
    main()
