"""Times add_norm's kernels (model/addnorm.py) at the 124M step's stream (61,440 x 768) and bias_gelu's
(model/biasgelu.py) at its MLP (61,440 x 3,072) in several shapes, against the same functions compiled by
inductor.

    python3 scripts/device/addnorm_bench.py [--write-best]

Rows: the forward by rows per program and warps, the backward by programs per SM, rows per iteration and
warps, each checked against the torch reference; then forward + backward of the fastest against inductor's
code for x + out + b, LayerNorm, the bf16 cast (the plain path's, which also saves x̂ and leaves the bf16
copy of the gradient and the bias's column sum to kernels of their own). --write-best sets the fastest
shapes in gptablate/model/addnorm.py (for the rest of a device call).
"""
import re
import sys

import torch
import torch.nn.functional as F
import triton

from gptablate.model import addnorm as AN
from gptablate.model import biasgelu as BG


def timed(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return sorted(times)[len(times) // 2]


def main() -> None:
    M, D = 61440, 768
    torch.manual_seed(0)
    f = dict(device="cuda", dtype=torch.float32)
    x, pb = torch.randn(M, D, **f) * 2, torch.randn(D, **f) * 0.1
    w, b = 1 + 0.3 * torch.randn(D, **f), torch.randn(D, **f)
    out = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    dxn, dh = torch.randn(M, D, **f), torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    ref_xn, ref_h, ref_mean, ref_rstd = AN.add_norm_reference(x, out, pb, w, b, 1e-5, True, True, torch.bfloat16)
    ref_dx, _, ref_dw, _, _ = AN.add_norm_backward_reference(ref_xn, ref_mean, ref_rstd, w, dxn, dh, True, True,
                                                             torch.bfloat16)
    fwd_bytes, bwd_bytes = M * D * (4 + 2 + 4 + 2), M * D * (4 + 2 + 4 + 4 + 2)
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    best = {}
    for rows, warps in ((1, 4), (2, 4), (4, 4), (4, 8), (8, 8), (2, 8), (8, 4), (2, 2), (1, 1), (2, 1), (1, 2)):
        xn, h = torch.empty_like(x), torch.empty(M, D, device="cuda", dtype=torch.bfloat16)
        mean, rstd = torch.empty(M, **f), torch.empty(M, **f)

        def run():
            AN._add_norm_fwd_kernel[(triton.cdiv(M, rows),)](x, out, pb, w, b, xn, h, mean, rstd, M, 1e-5, D=D,
                                                             HAS_ADD=True, HAS_PBIAS=True, HAS_BIAS=True, CENTER=True,
                                                             ROWS=rows, BLOCK_D=1024, num_warps=warps)
        ms = timed(run)
        ok = torch.allclose(xn, ref_xn) and torch.allclose(h.float(), ref_h.float(), atol=2e-2, rtol=1e-2)
        print(f"forward rows {rows} warps {warps}: {ms:.3f} ms, {fwd_bytes / ms / 1e9:.2f} TB/s, matches: {ok}",
              flush=True)
        if ok and ms < best.get("fwd", (1e9,))[0]:
            best["fwd"] = (ms, rows, warps)
    for per_sm, rows, warps in ((4, 1, 4), (4, 2, 4), (8, 2, 4), (4, 4, 8), (8, 4, 8), (2, 4, 8), (8, 1, 4), (4, 2, 2),
                                (8, 1, 2), (2, 2, 4), (8, 1, 1), (16, 1, 1), (16, 1, 2)):
        dx, dout = torch.empty_like(x), torch.empty(M, D, device="cuda", dtype=torch.bfloat16)
        programs = min(triton.cdiv(M, rows), per_sm * sms)
        part = torch.empty(programs, 3, D, **f)

        def run():
            AN._add_norm_bwd_kernel[(programs,)](ref_xn, ref_mean, ref_rstd, w, dxn, dh, dx, dout, part, M, programs,
                                                 triton.cdiv(triton.cdiv(M, rows), programs), HAS_DXN=True,
                                                 HAS_ADD=True, CENTER=True, D=D, ROWS=rows, BLOCK_D=1024,
                                                 num_warps=warps)
        ms = timed(run)
        ok = (torch.allclose(dx, ref_dx, atol=1e-3, rtol=1e-3)
              and torch.allclose(part.sum(0)[0], ref_dw, atol=1e-2 * ref_dw.abs().max().item()))
        print(f"backward programs/SM {per_sm} rows {rows} warps {warps}: {ms:.3f} ms, {bwd_bytes / ms / 1e9:.2f} TB/s, "
              f"matches: {ok}", flush=True)
        if ok and ms < best.get("bwd", (1e9,))[0]:
            best["bwd"] = (ms, per_sm, rows, warps)
    print(f"fastest: forward {best['fwd']}, backward {best['bwd']}")

    # the whole operation, forward and backward, against inductor's code for the plain layers
    AN.FWD_ROWS, AN.FWD_WARPS = best["fwd"][1:]
    AN.BWD_PER_SM, AN.BWD_ROWS, AN.BWD_WARPS = best["bwd"][1:]
    leaves = [t.clone().requires_grad_() for t in (x, out, pb, w, b)]

    def ours():
        xn, h = AN.add_norm(leaves[0], leaves[1], leaves[2], leaves[3], leaves[4], 1e-5, True, torch.bfloat16)
        torch.autograd.backward((xn, h), (dxn, dh))

    @torch.compile
    def plain_fn(x, out, pb, w, b):
        xn = x + (out + pb.to(torch.bfloat16))  # the matmul's bias epilogue, then the fp32 add
        return xn, F.layer_norm(xn, (D,), w, b, 1e-5).to(torch.bfloat16)

    def plain():
        xn, h = plain_fn(*leaves)
        torch.autograd.backward((xn, h), (dxn, dh))
    for name, fn in (("add_norm", ours), ("inductor", plain)):
        print(f"{name}: forward + backward {timed(fn):.3f} ms", flush=True)

    gelu_best = gelu_sweep(sms)
    if "--write-best" in sys.argv:
        path = AN.__file__
        text = open(path).read()
        text, n1 = re.subn(r"^FWD_ROWS, FWD_WARPS = .*$", f"FWD_ROWS, FWD_WARPS = {best['fwd'][1]}, {best['fwd'][2]}",
                           text, flags=re.M)
        text, n2 = re.subn(r"^BWD_PER_SM, BWD_ROWS, BWD_WARPS = .*$",
                           "BWD_PER_SM, BWD_ROWS, BWD_WARPS = {}, {}, {}".format(*best["bwd"][1:]), text, flags=re.M)
        assert n1 == n2 == 1
        open(path, "w").write(text)
        print("written to", path)
        path = BG.__file__
        text = open(path).read()
        text, n1 = re.subn(r"^FWD_BLOCK_M, FWD_BLOCK_N, FWD_WARPS = .*$",
                           "FWD_BLOCK_M, FWD_BLOCK_N, FWD_WARPS = {}, {}, {}".format(*gelu_best["fwd"][1:]), text,
                           flags=re.M)
        text, n2 = re.subn(r"^BWD_PER_SM, BWD_BLOCK_M, BWD_BLOCK_N, BWD_WARPS = .*$",
                           "BWD_PER_SM, BWD_BLOCK_M, BWD_BLOCK_N, BWD_WARPS = {}, {}, {}, {}".format(
                               *gelu_best["bwd"][1:]), text, flags=re.M)
        assert n1 == n2 == 1
        open(path, "w").write(text)
        print("written to", path)


def gelu_sweep(sms: int) -> dict:
    M, N = 61440, 3072
    pre = (torch.randn(M, N, device="cuda") * 2).to(torch.bfloat16)
    b = 0.3 * torch.randn(N, device="cuda")
    dact = torch.randn(M, N, device="cuda").to(torch.bfloat16)
    ref_act = BG.bias_gelu_reference(pre, b)
    ref_dpre, ref_db = BG.bias_gelu_backward_reference(pre, b, dact)
    best = {}
    act = torch.empty_like(pre)
    for bm, bn, warps in ((8, 512, 4), (4, 1024, 4), (16, 256, 4), (8, 1024, 8), (16, 512, 8)):
        def run():
            BG._bias_gelu_fwd_kernel[(triton.cdiv(M, bm), triton.cdiv(N, bn))](pre, b, act, M, N=N, BLOCK_M=bm,
                                                                             BLOCK_N=bn, num_warps=warps)
        ms = timed(run)
        ok = torch.allclose(act.float(), ref_act.float(), atol=2e-2, rtol=1e-2)
        print(f"bias_gelu forward {bm}x{bn} warps {warps}: {ms:.3f} ms, {M * N * 4 / ms / 1e9:.2f} TB/s, matches: {ok}",
              flush=True)
        if ok and ms < best.get("fwd", (1e9,))[0]:
            best["fwd"] = (ms, bm, bn, warps)
    dpre = torch.empty_like(pre)
    for per_sm, bm, bn, warps in ((8, 8, 256, 4), (4, 8, 256, 4), (16, 8, 256, 4), (8, 16, 256, 8), (8, 4, 512, 4),
                                  (8, 8, 512, 8), (8, 16, 128, 4)):
        cols = triton.cdiv(N, bn)
        rows = min(triton.cdiv(M, bm), max(1, per_sm * sms // cols))
        part = torch.empty(rows, N, device="cuda")

        def run():
            BG._bias_gelu_bwd_kernel[(rows, cols)](pre, b, dact, dpre, part, M, rows,
                                                   triton.cdiv(triton.cdiv(M, bm), rows), N=N, BLOCK_M=bm, BLOCK_N=bn,
                                                   num_warps=warps)
        ms = timed(run)
        ok = (torch.allclose(dpre.float(), ref_dpre.float(), atol=2e-2, rtol=1e-2)
              and torch.allclose(part.sum(0), ref_db, rtol=1e-3, atol=1e-3 * ref_db.abs().max().item()))
        print(f"bias_gelu backward programs/SM {per_sm} {bm}x{bn} warps {warps}: {ms:.3f} ms, "
              f"{M * N * 6 / ms / 1e9:.2f} TB/s, matches: {ok}", flush=True)
        if ok and ms < best.get("bwd", (1e9,))[0]:
            best["bwd"] = (ms, per_sm, bm, bn, warps)
    print(f"bias_gelu fastest: forward {best['fwd']}, backward {best['bwd']}")
    BG.FWD_BLOCK_M, BG.FWD_BLOCK_N, BG.FWD_WARPS = best["fwd"][1:]
    BG.BWD_PER_SM, BG.BWD_BLOCK_M, BG.BWD_BLOCK_N, BG.BWD_WARPS = best["bwd"][1:]
    leaves = [pre.clone().requires_grad_(), b.clone().requires_grad_()]

    def ours():
        torch.autograd.backward(BG.bias_gelu(*leaves), dact)

    @torch.compile
    def plain_fn(pre, b):
        return F.gelu(pre + b.to(torch.bfloat16), approximate="tanh")  # the bias in the matmul's epilogue

    def plain():
        torch.autograd.backward(plain_fn(*leaves), dact)
    for name, fn in (("bias_gelu", ours), ("inductor", plain)):
        print(f"{name}: forward + backward {timed(fn):.3f} ms", flush=True)
    return best


if __name__ == "__main__":
    main()
