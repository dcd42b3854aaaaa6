"""attnres full's site forward (aggregate.py's _aggregate_site_op, LayerNorm folded) against the many forward without
scores (_aggregate_many_op) and with the norm alone, at 2, 9 and 25 sources of 61,440 x 768 (the embedding fp32, the
rest bf16): what writing the scores costs a site.

    python3 scripts/device/site_fwd_ab.py [--shape TOKENS,WIDTH]"""
import sys

import torch

from addnorm_bench import timed
from aggregate_bench import _sources
from hyperstep_ab import shape
from gptablate.model import aggregate as AG


def main() -> None:
    M, D = shape(sys.argv)
    torch.manual_seed(0)
    sources = _sources(M, D, 25)
    u = torch.randn(D, device="cuda") * 0.3
    w, b = 1 + 0.3 * torch.randn(D, device="cuda"), 0.1 * torch.randn(D, device="cuda")
    empty = u.new_zeros(0)
    for K in (2, 9, 25):
        plain = timed(lambda: AG._aggregate_many_op(sources[:K], u, 1e-5))
        site = timed(lambda: AG._aggregate_site_op(sources[:K], u, 1e-5, empty, empty, True, torch.bfloat16))
        normed = timed(lambda: AG._aggregate_site_op(sources[:K], u, 1e-5, w, b, True, torch.bfloat16))
        print(f"{K} sources: many forward {plain:.3f} ms; with the scores {site:.3f} ms; and the norm "
              f"{normed:.3f} ms", flush=True)


if __name__ == "__main__":
    main()
