"""hyper_step's projection weight gradient: the matmul it was until call FF against _hyper_wgrad_kernel's shapes.

    python3 scripts/device/wgrad_bench.py [--shape TOKENS,WIDTH] [--streams bf16] [--write-best]

On the 124M step's streams (61,440 tokens x 4 x 768; --shape for others) with J = 6 columns: the matmul dzᵀ(rstd·H')
less Σ dz·rstd·μ as the backward took it (fp32, TF32 allowed as the engine allows it), then the kernel at
hyperstep.WGRAD and a sweep of (programs an SM, rows a step, features a program, warps, stages), each with its distance
from the float64 result relative to that result's largest entry. --write-best writes the fastest shape into
gptablate/model/hyperstep.py's WGRAD.

--streams bf16: H' in bf16 (arch.hyper.stream_dtype); the fp32 kernel at WGRAD on it (what bf16 streams took until
call GD), then the tensor cores' kernel (_hyper_wgrad_dot_kernel, hyperstep.weight_grad) at WGRAD_DOT and a sweep of its
shapes; --write-best writes WGRAD_DOT.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_bench import timed, write_constants  # noqa: E402

from gptablate.model import hyperstep as HS  # noqa: E402

# (rows a step, features a program, warps): a thread holds JP x BR x BD / (32 x warps) accumulators
SHAPES = [(4, 256, 4), (2, 256, 4), (4, 128, 2), (8, 256, 8), (4, 512, 8), (2, 512, 4), (8, 128, 4)]


# the tensor cores' kernel: (rows a step, features a program, warps); rows and a's padded columns at least 16
DOT_SHAPES = [(64, 128, 4), (128, 128, 4), (32, 128, 4), (64, 256, 4), (128, 256, 8), (64, 64, 2), (128, 64, 4)]


def main():
    argv = sys.argv[1:]
    M, D = tuple(map(int, argv[argv.index("--shape") + 1].split(","))) if "--shape" in argv else (61440, 768)
    bf16 = "--streams" in argv and argv[argv.index("--streams") + 1] == "bf16"
    n, J = 4, 6
    torch.backends.cuda.matmul.allow_tf32 = True
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    H1 = torch.randn(M, n, D, **f) * 2 + 0.3
    if bf16:
        H1 = H1.bfloat16()
    dz = torch.randn(M, n, J, **f) * 0.1
    mean = torch.randn(M, n, **f) * 0.3
    rstd = torch.rand(M, n, **f) + 0.5
    ref = HS.hyper_weight_grad_reference(H1.double(), dz.double(), mean.double(), rstd.double())

    def distance(w):
        return ((w.double() - ref).abs().max() / ref.abs().max()).item()

    def matmul():
        sz = (dz * rstd[..., None]).reshape(M * n, J)
        return sz.t() @ H1.reshape(M * n, D) - (sz * mean.reshape(M * n, 1)).sum(0)[:, None]

    gb = H1.numel() * H1.element_size() / 1e9
    if bf16:
        ms = timed(lambda: HS.weight_grad_kernel(H1, dz, mean, rstd))
        print(f"bf16 streams {M} x {n} x {D} ({gb:.3f} GB); the fp32 kernel at WGRAD {HS.WGRAD}: {ms:.3f} ms, "
              f"{gb / ms:.2f} TB/s, distance {distance(HS.weight_grad_kernel(H1, dz, mean, rstd)):.1e}",
              flush=True)
        dot_sweep(H1, dz, mean, rstd, gb, distance, "--write-best" in argv)
        return
    ms = timed(matmul)
    print(f"streams {M} x {n} x {D} ({gb:.3f} GB); matmul (TF32): {ms:.3f} ms, {gb / ms:.2f} TB/s, "
          f"distance {distance(matmul()):.1e}", flush=True)
    times = sweep((2, 4, 8), SHAPES, lambda shape: HS.weight_grad_kernel(H1, dz, mean, rstd, shape),
                  lambda shape: HS.weight_grad_kernel(H1, dz, mean, rstd, shape), gb, distance)
    best = min(times, key=times.get)
    print(f"WGRAD {HS.WGRAD}: {timed(lambda: HS.weight_grad_kernel(H1, dz, mean, rstd)):.3f} ms; best {best}: "
          f"{times[best]:.3f} ms", flush=True)
    if "--write-best" in argv:
        write_constants(HS, {"WGRAD": best})


def sweep(per_sms, shapes, run, result, gb, distance) -> dict:
    """run(shape) timed over (programs an SM) x shapes (rows a step, features a program, warps) x stages 2 to 4, each
    printed with result(shape)'s distance from float64: {shape: ms}."""
    times = {}
    for per_sm in per_sms:
        for br, bd, warps in shapes:
            for stages in (2, 3, 4):
                shape = (per_sm, br, bd, warps, stages)
                try:
                    ms = timed(lambda: run(shape))
                except Exception as e:  # noqa: BLE001 - a shape that does not compile or launch
                    print(f"  {shape}: failed: {str(e)[:160]}", flush=True)
                    continue
                times[shape] = ms
                print(f"  {shape}: {ms:.3f} ms, {gb / ms:.2f} TB/s, distance {distance(result(shape)):.1e}",
                      flush=True)
    return times


def dot_sweep(H1, dz, mean, rstd, gb, distance, write):
    """_hyper_wgrad_dot_kernel at WGRAD_DOT and over (programs an SM) x DOT_SHAPES x (stages): the kernel alone on the
    operand A that weight_grad forms (in the step, inductor fuses that work into the backward's other element-wise
    kernels; here, eager, it is several launches), each with weight_grad's distance from float64 at that shape."""
    A = HS.dot_operand(dz, mean, rstd)[0]
    print(f"weight_grad at WGRAD_DOT {HS.WGRAD_DOT}, eager (A formed in torch): "
          f"{timed(lambda: HS.weight_grad(H1, dz, mean, rstd)):.3f} ms", flush=True)
    times = sweep((1, 2, 4), DOT_SHAPES, lambda shape: HS.weight_grad_dot_kernel(H1, A, shape),
                  lambda shape: HS.weight_grad(H1, dz, mean, rstd, shape), gb, distance)
    best = min(times, key=times.get)
    print(f"the kernel at WGRAD_DOT {HS.WGRAD_DOT}: {timed(lambda: HS.weight_grad_dot_kernel(H1, A)):.3f} ms; "
          f"best {best}: {times[best]:.3f} ms", flush=True)
    if write:
        write_constants(HS, {"WGRAD_DOT": best})


if __name__ == "__main__":
    main()
