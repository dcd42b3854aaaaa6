"""Host time a call of each fused operation costs (needs a GPU): at a tiny shape the GPU finishes each kernel
before the host launches the next, so a loop's time per call is what the host spends on it (the custom op's
dispatch, its allocations, Triton's launch). Against a plain torch op and a raw Triton launch of the same kernel;
the compiled rows call a torch.compile'd function holding the operation (guards and the graph's launch included),
as the training step does.

    python3 scripts/device/launch_overhead.py [--rows 64] [--calls 2000]
"""
import argparse
import time

import torch

from gptablate.model import addnorm, biasgelu, qkvproj
from gptablate.model.kernels import triton


def per_call_us(fn, calls: int) -> float:
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(calls):
        fn()
    host = time.perf_counter() - t0
    torch.cuda.synchronize()
    return 1e6 * host / calls


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--calls", type=int, default=2000)
    args = ap.parse_args()
    M, D = args.rows, 768
    dev = "cuda"
    x = torch.randn(M, D, device=dev)
    out = torch.randn(M, D, device=dev, dtype=torch.bfloat16)
    pb, w, b = torch.randn(D, device=dev), torch.ones(D, device=dev), torch.zeros(D, device=dev)
    pre = torch.randn(M, 4 * D, device=dev, dtype=torch.bfloat16)
    fb = torch.randn(4 * D, device=dev)
    dq, dk, dv = (torch.randn(M, D, device=dev, dtype=torch.bfloat16) for _ in range(3))
    xg = x.clone().requires_grad_()
    outg = out.clone().requires_grad_()
    xn, h = torch.empty_like(x), torch.empty(M, D, device=dev, dtype=torch.bfloat16)
    mean, rstd, empty = x.new_empty(M), x.new_empty(M), x.new_zeros(0)

    def raw_add_norm():
        addnorm._add_norm_fwd_kernel[(triton.cdiv(M, addnorm.FWD_ROWS),)](
            x, out, empty, pb, w, b, xn, h, mean, rstd, empty, M, 1e-5, HAS_ADD=True, HAS_EXTRA=False,
            HAS_PBIAS=True, HAS_BIAS=True, HAS_COPY=False, CENTER=True, D=D, ROWS=addnorm.FWD_ROWS,
            BLOCK_D=1024, num_warps=addnorm.FWD_WARPS)

    def fwd_bwd():
        _, hh = addnorm.add_norm(xg, outg, pb, w, b, 1e-5, True, torch.bfloat16)
        hh.backward(torch.ones_like(hh))

    def plain_add_norm():
        xn = x + out.float() + pb
        return xn, torch.nn.functional.layer_norm(xn, (D,), w, b).to(torch.bfloat16)

    compiled_op = torch.compile(lambda: addnorm.add_norm(x, out, pb, w, b, 1e-5, True, torch.bfloat16))
    compiled_plain = torch.compile(plain_add_norm)
    compiled_gelu = torch.compile(lambda: biasgelu.bias_gelu(pre, fb))
    rows = [
        ("torch.add (one kernel)", lambda: torch.add(x, x)),
        ("F.layer_norm eager", lambda: torch.nn.functional.layer_norm(x, (D,), w, b)),
        ("add_norm kernel, raw Triton launch", raw_add_norm),
        ("add_norm (the operation, eager, forward)",
         lambda: addnorm.add_norm(x, out, pb, w, b, 1e-5, True, torch.bfloat16)),
        ("add_norm forward + backward (eager autograd)", fwd_bwd),
        ("bias_gelu (the operation, eager, forward)", lambda: biasgelu.bias_gelu(pre, fb)),
        ("bias_gelu backward op", lambda: biasgelu._bias_gelu_backward_op(pre, fb, pre)),
        ("qkv_join op", lambda: qkvproj._qkv_join_op(dq, dk, dv, True)),
        ("compiled: add_norm forward", compiled_op),
        ("compiled: the same in torch (inductor)", compiled_plain),
        ("compiled: bias_gelu forward", compiled_gelu),
    ]
    print(f"host time a call, {M} rows x {D}, {args.calls} calls ({torch.cuda.get_device_name()}, "
          f"torch {torch.__version__}, triton {triton.__version__})")
    for name, fn in rows:
        print(f"  {name:42s} {per_call_us(fn, args.calls):8.1f} us")


if __name__ == "__main__":
    main()
