"""Times attnres's aggregation kernels (model/aggregate.py) at the 124M step's largest site (61,440 tokens x 768,
five sources: the embedding in fp32, four sums of sublayer outputs in bf16) in several shapes, against inductor's
code for the module's torch path (forward and backward).

    python3 scripts/device/aggregate_bench.py [--write-best]

Rows: programs per SM, warps; each checked against the torch reference. --write-best sets the
fastest shapes in gptablate/model/aggregate.py (for the rest of a device call).
"""
import re
import sys

import torch

from addnorm_bench import timed
from gptablate.model import aggregate as AG
from gptablate.model.residuals import _Aggregator


def main() -> None:
    M, D, K = 61440, 768, 5
    torch.manual_seed(0)
    sources = [torch.randn(M, D, device="cuda") * 2] + [
        (torch.randn(M, D, device="cuda") * 3).to(torch.bfloat16) for _ in range(K - 1)]
    u = torch.randn(D, device="cuda") * 0.3
    dout = torch.randn(M, D, device="cuda")
    want = [AG.aggregate_reference(sources, u, 1e-5)] + AG.aggregate_backward_reference(sources, u, dout, 1e-5)
    src_bytes = M * D * (4 + 2 * (K - 1))
    moved = {"fwd": src_bytes + M * D * 4, "bwd": 2 * src_bytes + M * D * 4}  # read once; write out / the grads
    best = {}
    shapes = [(per_sm, warps) for per_sm in (4, 8, 16) for warps in (1, 2, 4, 8)]
    for which in ("fwd", "bwd"):
        for shape in shapes:
            setattr(AG, "AGG_FWD" if which == "fwd" else "AGG_BWD", shape)
            if which == "fwd":
                run = lambda: AG._aggregate_op(sources, u, 1e-5)
                got = [run()]
                ok = torch.allclose(got[0], want[0], rtol=1e-4, atol=1e-4)
            else:
                run = lambda: AG._aggregate_backward_op(sources, u, dout, 1e-5)
                got = run()
                ok = all(torch.allclose(g.float(), w.float(), rtol=2e-2, atol=2e-2 if g.dtype == torch.bfloat16
                                        else 1e-3) for g, w in zip(got, want[1:]))
            ms = timed(run)
            print(f"{which} programs/SM {shape[0]} warps {shape[1]}: {ms:.3f} ms, "
                  f"{moved[which] / ms / 1e9:.2f} TB/s, matches: {ok}", flush=True)
            if ok and (which not in best or ms < best[which][0]):
                best[which] = (ms, shape)
        setattr(AG, "AGG_FWD" if which == "fwd" else "AGG_BWD", best[which][1])
    print(f"fastest: {best}")
    for k in (8, 13, 25):  # attnres full's sources; past AGG_HOLD the second pass reads them again
        many = sources + [sources[-1].clone() for _ in range(k - K)] if k > K else sources[:k]
        ms = timed(lambda: AG._aggregate_op(many, u, 1e-5)), timed(lambda: AG._aggregate_backward_op(many, u, dout,
                                                                                                    1e-5))
        total = M * D * (4 + 2 * (k - 1))
        print(f"{k} sources: forward {ms[0]:.3f} ms ({(total + M * D * 4) / ms[0] / 1e9:.2f} TB/s), backward "
              f"{ms[1]:.3f} ms ({(2 * total + M * D * 4) / ms[1] / 1e9:.2f} TB/s)", flush=True)

    agg = _Aggregator(D, 1.0).cuda()
    with torch.no_grad():
        agg.query.normal_(0, 0.3)
    leaves = [s.detach().clone().requires_grad_() for s in sources]
    views = [s.view(60, 1024, D) for s in leaves]
    grad = dout.view(60, 1024, D)
    for fused in (False, True):
        agg.fused = fused
        torch._dynamo.reset()
        compiled = torch.compile(agg)
        step = lambda: torch.autograd.backward(compiled(views), grad)  # the sources' grads accumulate, as in a step
        print(f"{'the op' if fused else 'inductor, the torch path'}: forward and backward "
              f"{timed(step):.3f} ms", flush=True)
    if "--write-best" in sys.argv:
        path = AG.__file__
        text = open(path).read()
        text, n = re.subn(r"^AGG_FWD, AGG_BWD = .*$", f"AGG_FWD, AGG_BWD = {best['fwd'][1]}, {best['bwd'][1]}",
                          text, flags=re.M)
        assert n == 1
        open(path, "w").write(text)
        print("written to", path)


if __name__ == "__main__":
    main()
