"""What bf16 streams would buy Hyper-Connections: hyper_step's kernels with the streams in fp32 and in bf16.

    python3 scripts/device/stream_dtype_bench.py

An estimate for a decision, not a feature: the variants keep their streams in fp32, as the baseline keeps
its residual stream. The kernels compute in fp32 whatever they load; here the streams they read and write
(H, H', dH', dH) are bf16 tensors and everything else is as in training. Prints each kernel's time at the
124M step's shape (61,440 tokens x 4 x 768) for the dynamic and the static site, with the tuning in
hyperstep.TUNING, and the weight-gradient matmul over H' in both dtypes. Also runs on the CPU under
TRITON_INTERPRET=1 at a small shape (`interp`), checking the bf16 results against the fp32 ones.
"""
import sys

import torch

from gptablate.model import hyperstep as HS

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from hyperstep_bench import inputs, timed  # noqa: E402


def launch(args, dtype, dH1, dx, dC1):
    """Forward and backward kernels (hyperstep.forward_kernel, backward_kernel) with the streams (H, H', dH', dH) in
    `dtype`: (forward, backward) callables, each returning its outputs."""
    Hk, out, Ck, wt, bw, s, a_s, b_s, _, _, eps, has_write, dynamic, center, _ = args
    Hk, dH1 = Hk.to(dtype), dH1.to(dtype)
    flags = (has_write, dynamic, center)
    H1, _, C1, z, mean, rstd = HS.forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, *flags)[:6]

    def forward():
        return HS.forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, *flags)

    def backward():
        return HS.backward_kernel(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dx, dC1, *flags)

    return forward, backward


def main():
    interp = "interp" in sys.argv
    M, n, D = (37, 4, 200) if interp else (61440, 4, 768)
    torch.backends.cuda.matmul.allow_tf32 = True  # as the engine sets it
    for dynamic in (True, False):
        args = list(inputs(M, n, D, dynamic, "cpu" if interp else "cuda"))
        dH1 = torch.randn(M, n, D, device=args[0].device)
        dx = torch.randn(M, D, device=args[0].device)
        dC1 = torch.randn(M, n, n + 2, device=args[0].device)
        results = {}
        for dtype in (torch.float32, torch.bfloat16):
            forward, backward = launch(args, dtype, dH1, dx, dC1)
            H1, x_in = forward()[:2]
            dHk, d_out = backward()[:2]
            results[dtype] = (H1, x_in, dHk, d_out)
            if interp:
                continue
            fw, bw = timed(forward), timed(backward)
            mm = timed(lambda: torch.randn(M * n, n + 2, device="cuda").t().to(H1.dtype) @ H1.reshape(M * n, D)) \
                if dynamic else 0.0
            print(f"{'dynamic' if dynamic else 'static'} site, streams {str(dtype)[6:]}: forward {fw:.3f} ms, "
                  f"backward {bw:.3f} ms, weight-gradient matmul {mm:.3f} ms: {fw + bw + mm:.3f} ms a site", flush=True)
        for name, a, b in zip(("H'", "x_in", "dH", "d_out"), results[torch.float32], results[torch.bfloat16]):
            err = ((a.double() - b.double()).abs().max() / a.double().abs().max()).item()
            print(f"  {name}: bf16 streams against fp32, largest difference {err:.2e} of the largest value", flush=True)
            assert err < 3e-2, (name, err)  # the bf16 rounding of the streams, not a wrong kernel


if __name__ == "__main__":
    main()
