"""hyper's and mHC's stream kernels with the streams in fp32 and in bf16 (arch.hyper.stream_dtype,
arch.mhc.stream_dtype), side by side.

    python3 scripts/device/stream_dtype_bench.py [TOKENS ...] [--rounds R]

For each number of tokens (default 12,288, micro-batch 12's, and 61,440, the 124M step's a call) and each variant's site
as the model takes it (hyper: the dynamic site with its LayerNorm folded in; mHC: its step with a write), times the
forward op, its backward op and the projection's weight gradient with fp32 streams and with bf16 ones (H, H', dH', dH;
everything else as in training), R rounds in turn (hyperstep_ab.in_turn, median of each), and prints the bytes the
streams' passes move at each dtype and the rate they give. Until call FV this script timed the kernels of an early
hyper_step with bf16 tensors passed in, before the variants took bf16 streams (call AO). hyper's weight gradient is
hyperstep.weight_grad as the backward takes it (with bf16 streams, since call GI: its operand A formed in torch, eager
here, and the tensor cores' kernel; in the compiled step inductor fuses A's forming with other work).
"""
import argparse
import sys
from pathlib import Path

import torch

from gptablate.model import hyperstep as HS
from gptablate.model import mhcstep as MS

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_ab import in_turn  # noqa: E402
from hyperstep_bench import inputs as hyper_inputs  # noqa: E402
from hyperstep_bench import timed  # noqa: E402
from mhcstep_bench import inputs as mhc_inputs  # noqa: E402


def hyper_calls(M, n, D, dtype):
    """(forward, backward, weight gradient) of hyper's site with its norm, streams in dtype."""
    args = list(hyper_inputs(M, n, D, True, norm=True))
    args[0] = args[0].to(dtype)
    Hk, out, Ck, wt, bw, s = args[:6]
    H1, y, C1, z, mean, rstd, nmean, nrstd = torch.ops.gptablate.hyper_step(*args)
    dH1, dy, dC1 = torch.randn(H1.shape, device="cuda").to(dtype), torch.randn_like(y), torch.randn_like(C1)
    dz = torch.randn_like(z)
    return (lambda: torch.ops.gptablate.hyper_step(*args),
            lambda: torch.ops.gptablate.hyper_step_backward(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy,
                                                            dC1, args[8], nmean, nrstd, True, True, True),
            lambda: HS.weight_grad(H1, dz, mean, rstd))  # eager: with bf16 streams, A's forming is launches of its own


def mhc_calls(M, n, D, dtype):
    """(forward, backward, weight gradient) of mHC's step with a write, streams in dtype."""
    args = list(mhc_inputs(M, n, D))
    args[0] = args[0].to(dtype)
    Hk, out, Rk, qk, w, a_pre, _ = args
    H1, x_in, z, p, rstd = torch.ops.gptablate.mhc_step(*args, 1e-5, True)
    dH1, dx, dz = torch.randn(H1.shape, device="cuda").to(dtype), torch.randn_like(x_in), torch.randn_like(z)
    grads = torch.ops.gptablate.mhc_step_backward(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, True)
    dzraw = grads[4]
    return (lambda: torch.ops.gptablate.mhc_step(*args, 1e-5, True),
            lambda: torch.ops.gptablate.mhc_step_backward(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz,
                                                          True),
            lambda: (H1.reshape(M, n * D).t() @ dzraw.to(H1.dtype)).to(dzraw.dtype))


# The streams' passes a site (each n x D numbers a token): forward H read, H' written (mHC: and read back for x_in');
# backward H and dH' read, dH written; the weight gradient H' read.
PASSES = {"hyper": (2, 3, 1), "mhc": (3, 3, 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokens", nargs="*", type=int, default=[12288, 61440])
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True  # as the engine sets it
    n, D = 4, 768
    for M in a.tokens:
        for name, build in (("hyper", hyper_calls), ("mhc", mhc_calls)):
            calls = {}
            for dtype in (torch.float32, torch.bfloat16):
                fwd, bwd, wgrad = build(M, n, D, dtype)
                tag = str(dtype)[6:]
                calls.update({tag: (fwd, bwd), f"{tag} weight gradient": (wgrad, lambda: None)})
            ms = in_turn(calls, a.rounds, timed)
            for tag, size in (("float32", 4), ("bfloat16", 2)):
                parts = [*ms[tag], ms[f"{tag} weight gradient"][0]]
                moved = [p * M * n * D * size / 1e9 for p in PASSES[name]]
                rates = ", ".join(f"{t:.3f} ms ({g:.2f} GB of streams, {g / t:.2f} TB/s)" for t, g in zip(parts, moved))
                print(f"{name} {M} tokens, {tag} streams: forward, backward, weight gradient {rates}; "
                      f"{sum(parts):.3f} ms a site", flush=True)


if __name__ == "__main__":
    main()
