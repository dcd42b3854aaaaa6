"""The aggregation kernels against the torch reference (run by tests/test_aggregate.py).

"interp": on the CPU, in Triton's interpreter, at small shapes; else on a GPU at the 124M, 345M and 1.5B widths,
sources as in training (the embedding fp32, the sublayers' outputs bf16), and one padded shape."""
import sys

import torch

import gptablate.model.kernels as K
from gptablate.model import aggregate as AG

interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
# (tokens, width, sources); past AGG_HOLD sources the kernels read each again for the second pass
SHAPES = ([(7, 20, 1), (9, 24, 3), (5, 64, 6), (3, 20, 10)] if interp
          else [(3001, 768, 1), (3001, 768, 5), (517, 1024, 4), (61, 1600, 3), (5, 20, 25)])
worst = 0.0
for M, D, n in SHAPES:
    for low in (torch.float32, torch.bfloat16):
        sources = [torch.randn(M, D, device=dev) * 2] + [torch.randn(M, D, device=dev).to(low) * 3
                                                         for _ in range(n - 1)]
        u = torch.randn(D, device=dev) * 0.5
        dout = torch.randn(M, D, device=dev)
        got = [AG._aggregate_op(sources, u, 1e-5)] + AG._aggregate_backward_op(sources, u, dout, 1e-5)
        wide = [s.double() for s in sources]
        want = [AG.aggregate_reference(wide, u.double(), 1e-5)] + AG.aggregate_backward_reference(
            wide, u.double(), dout.double(), 1e-5)
        names = ["out"] + [f"dv{k}" for k in range(n)] + ["du"]
        for name, g, w, like in zip(names, got, want, [torch.float32] + [s.dtype for s in sources] + [torch.float32]):
            assert g.dtype == like and g.shape == w.shape, (name, g.dtype, g.shape)
            err = ((g.double() - w).abs().max() / (1 + w.abs().max())).item()
            # a bf16 gradient is rounded once (2^-8 relative); the rest is fp32 arithmetic
            assert err < (1e-2 if g.dtype == torch.bfloat16 else 1e-4), (name, M, D, n, low, err)
            worst = max(worst, err if g.dtype != torch.bfloat16 else 0.0)
print(f"ok: the aggregation kernels match torch; worst relative error (fp32 outputs) {worst:.2e}")
