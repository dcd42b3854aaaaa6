"""The q/k/v gradient join kernel against torch (run by tests/test_qkvproj.py).

"interp": on the CPU, in Triton's interpreter, at small shapes in fp32; else on a GPU in bf16 at the 124M,
345M and 1.5B widths, and the whole projection under autocast against c_attn's own (F.linear, split)."""
import sys

import torch

import gptablate.model.kernels as K
from gptablate.model import qkvproj as QP

interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
SHAPES = [(7, 20), (19, 300), (1, 8)] if interp else [(3001, 768), (517, 1024), (61, 1600), (5, 20)]
low = torch.float32 if interp else torch.bfloat16
worst = 0.0
for M, C in SHAPES:
    for with_sum in (True, False):
        dq, dk, dv = (torch.randn(M, C, device=dev).to(low) for _ in range(3))
        joined, sums = QP._qkv_join_op(dq, dk, dv, with_sum)
        assert joined.dtype == low and torch.equal(joined, torch.cat((dq, dk, dv), dim=1)), (M, C)
        if with_sum:
            want = torch.cat((dq, dk, dv), dim=1).double().sum(0)
            err = ((sums.double() - want).abs().max() / want.abs().max()).item()
            assert sums.dtype == torch.float32 and err < 1e-5, (M, C, err)
            worst = max(worst, err)
        else:
            assert sums.numel() == 0
if not interp:  # the whole projection, as the fused walk runs it, against c_attn's own forward and backward
    B, T, C = 4, 256, 768
    lin = torch.nn.Linear(C, 3 * C, device=dev)
    x = torch.randn(B, T, C, device=dev, requires_grad=True)
    gs = [torch.randn(B, T, C, device=dev) for _ in range(3)]
    results = []
    for joined in (True, False):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            h = x * 1.0
            qkv = QP.qkv_projection(h, lin.weight, lin.bias) if joined else lin(h).split(C, dim=2)
            loss = sum((t.float() * g).sum() for t, g in zip(qkv, gs))
        results.append([t.detach() for t in qkv] + list(torch.autograd.grad(loss, (x, lin.weight, lin.bias))))
    for name, got, want in zip(("q", "k", "v", "dx", "dweight", "dbias"), *results):
        assert got.dtype == want.dtype and got.shape == want.shape, name
        err = ((got.double() - want.double()).abs().max() / want.double().abs().max()).item()
        # the forward and dx, dweight are the same computation; dbias is summed in fp32 here, rounded to bf16 there
        assert err < (1e-2 if name == "dbias" else 1e-6), (name, err)
        worst = max(worst, err if name != "dbias" else 0.0)
print(f"ok: the q/k/v join matches torch; worst relative error {worst:.2e}")
