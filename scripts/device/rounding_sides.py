"""Which side of bf16 streams costs hyper its loss: `gptablate` with fp32 streams whose values (fwd), gradients (bwd) or
both are rounded to bf16 at every step's boundary, as arch.hyper.stream_dtype=bfloat16 stores them.

    python3 scripts/device/rounding_sides.py fwd|bwd|both train gpt2_124m --set arch.residual=hyper ...

Every H that hyper_step returns (the streams between two sites), and the entry's copies of x that the first step
reads, pass through a rounding: `fwd` rounds their values to bf16 and passes their gradient through as it is (fp32);
`bwd` passes their values as they are and rounds the gradient that reaches them; `both` does the two, which is what
bf16 streams do (the kernels still take their fp32 paths: two-pass statistics, the fp32 weight gradient). An
experiment's instrument for device calls, not part of the tool: it replaces residuals.hyper_step in this process and
then runs the CLI.
"""

from __future__ import annotations

import sys

import torch

SIDES = ("fwd", "bwd", "both")


class _RoundValues(torch.autograd.Function):
    @staticmethod
    def forward(ctx, H):
        return H.to(torch.bfloat16).to(H.dtype)

    @staticmethod
    def backward(ctx, dH):
        return dH


class _RoundGrads(torch.autograd.Function):
    @staticmethod
    def forward(ctx, H):
        return H.view_as(H)

    @staticmethod
    def backward(ctx, dH):
        return dH.to(torch.bfloat16).to(dH.dtype)


def install(side: str) -> None:
    from gptablate.model import residuals

    step = residuals.hyper_step

    def rounded(H):
        if side in ("fwd", "both"):
            H = _RoundValues.apply(H)
        if side in ("bwd", "both"):
            H = _RoundGrads.apply(H)
        return H

    def rounded_step(Hk, *args, **kwargs):
        if not kwargs["has_write"]:  # the entry's copies of x, which the first site reads
            Hk = rounded(Hk)
        H, y, C = step(Hk, *args, **kwargs)
        return rounded(H), y, C

    residuals.hyper_step = rounded_step


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in SIDES:
        sys.exit(f"usage: rounding_sides.py {'|'.join(SIDES)} CLI-ARGS...")
    install(sys.argv.pop(1))
    from gptablate_cli.main import main

    main()
