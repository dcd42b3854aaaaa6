"""The aggregation kernels against the torch reference (run by tests/test_aggregate.py).

"interp": on the CPU, in Triton's interpreter, at small shapes; else on a GPU at the 124M, 345M and 1.5B widths,
sources as in training (the embedding fp32, the sublayers' outputs bf16), and one padded shape. Then the many kernels
(past AGG_HOLD sources), up to 1.5B's last site (97 sources)."""
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
MANY = ([(3, 20, 9), (4, 40, 17), (2, 1400, 9)] if interp  # 1,400: AGG_MANY's 1,600 entry
        else [(3001, 768, 9), (3001, 768, 25), (517, 1024, 49), (61, 1600, 97), (5, 20, 25)])


def held(sources, u, dout):
    """The held kernels' output and gradients."""
    return [AG._aggregate_op(sources, u, 1e-5)] + AG._aggregate_backward_op(sources, u, dout, 1e-5)


def many(sources, u, dout):
    """The many kernels' output, log-denominator and gradients (the backward given the forward's own)."""
    assert AG._many(sources)
    out, lse = AG._aggregate_many_op(sources, u, 1e-5)
    return [out, lse] + AG.many_backward(sources, u, out, lse, dout, 1e-5)


def check(kernels, M, D, n, low) -> float:
    """The worst relative error of the fp32 outputs; asserts every output within its bound. kernels: "held" or
    "many"."""
    sources = [torch.randn(M, D, device=dev) * 2] + [torch.randn(M, D, device=dev).to(low) * 3 for _ in range(n - 1)]
    u = torch.randn(D, device=dev) * 0.5
    dout = torch.randn(M, D, device=dev)
    wide = [s.double() for s in sources]
    want = list(AG.aggregate_many_reference(wide, u.double(), 1e-5)) + AG.aggregate_backward_reference(
        wide, u.double(), dout.double(), 1e-5)
    names = ["out", "lse"] + [f"dv{k}" for k in range(n)] + ["du"]
    likes = [torch.float32, torch.float32] + [s.dtype for s in sources] + [torch.float32]
    if kernels == "held":  # no lse
        got = held(sources, u, dout)
        want, names, likes = ([x[0]] + x[2:] for x in (want, names, likes))
    else:
        got = many(sources, u, dout)
    worst = 0.0
    for name, g, w, like in zip(names, got, want, likes):
        assert g.dtype == like and g.shape == w.shape, (kernels, name, g.dtype, g.shape)
        err = ((g.double() - w).abs().max() / (1 + w.abs().max())).item()
        # a bf16 gradient is rounded once (2^-8 relative); the rest is fp32 arithmetic
        assert err < (1e-2 if g.dtype == torch.bfloat16 else 1e-4), (kernels, name, M, D, n, low, err)
        worst = max(worst, err if g.dtype != torch.bfloat16 else 0.0)
    return worst


def pull_stats(S, M) -> torch.Tensor:
    """The pull's stats (S, S + 2, M): each site's log-denominator (1 to 4), ḡ·h, and its sources' scores r s (about
    ±1.5: p = exp(r s - lse) stays finite)."""
    return torch.cat([torch.rand(S, 1, M, device=dev) * 3 + 1, torch.randn(S, 1, M, device=dev) * 0.1,
                      torch.randn(S, S, M, device=dev) * 0.6], 1)


def check_pull(M, D, S, k, low, first) -> float:
    """The pull kernel (site k of S; the source the embedding (fp32) where first, else a sublayer's output) against
    aggregate_pull_reference in float64: dv, b and the stacks' row k (its gradient, lse, ḡ·h and its k + 1 sources'
    scores); rows below k, and row k past its sources, untouched."""
    v = torch.randn(M, D, device=dev) * 2
    v = v if first else v.to(low)
    stack = (torch.randn(S, M, D, device=dev) * 0.1).to(low)
    stats = pull_stats(S, M)
    U = torch.randn(S, D, device=dev) * 0.5
    g, lse, c, scores = stack[k].clone(), stats[k, 0].clone(), stats[k, 1].clone(), stats[k, 2:3 + k].clone()
    want_stack, want_stats = stack[k:].double(), stats[k:].double()  # rows k.. as the op is to leave them
    want_dv, want_b = AG.aggregate_pull_reference(v.double(), want_stack, want_stats[:, :2], want_stats[:, 2 + k],
                                                  U.double()[k:], 1e-5)
    stack[k], stats[k, :3 + k] = 7, 7  # to be written
    before = stack[:k].clone(), stats[:k].clone(), stats[k, 3 + k:].clone()
    dv, b = AG._aggregate_pull_op(v, g, lse, c, scores, stack, stats, U, k, 1e-5)
    assert dv.dtype == v.dtype and b.shape == (S - k, M) and b.dtype == torch.float32
    assert torch.equal(stack[k].double(), want_stack[0]) and torch.equal(stats[k].double(), want_stats[0])
    assert torch.equal(stack[:k], before[0]) and torch.equal(stats[:k], before[1])
    assert torch.equal(stats[k, 3 + k:], before[2])
    worst = 0.0
    for name, x, w in (("dv", dv, want_dv), ("b", b, want_b)):
        err = ((x.double() - w).abs().max() / (1 + w.abs().max())).item()
        assert err < (1e-2 if x.dtype == torch.bfloat16 else 1e-4), ("pull", name, M, D, S, k, low, err)
        worst = max(worst, err if x.dtype != torch.bfloat16 else 0.0)
    return worst


def check_site(M, D, n, low, center, bias, y_dtype, norm=True) -> float:
    """attnres full's site forward (the many forward; with a norm, as its folded walk has): h, lse, the sources'
    scores and y = N(h) in y_dtype against site_reference in float64 (without a norm, y and the means empty)."""
    sources = [torch.randn(M, D, device=dev) * 2] + [torch.randn(M, D, device=dev).to(low) * 3 for _ in range(n - 1)]
    u = torch.randn(D, device=dev) * 0.5
    w = 1 + 0.3 * torch.randn(D, device=dev) if norm else torch.zeros(0, device=dev)
    b = 0.1 * torch.randn(D, device=dev) if bias else w.new_zeros(0)
    got = AG._aggregate_site_op(sources, u, 1e-5, w, b, center, y_dtype)
    want = AG.site_reference([s.double() for s in sources], u.double(), 1e-5, w.double(), b.double(), center,
                             torch.float64)
    assert got[2].dtype == y_dtype and all(x.dtype == torch.float32 for i, x in enumerate(got) if i != 2)
    assert [x.shape for x in got] == [x.shape for x in want] and got[4].shape == (n, M)
    worst = 0.0
    for name, x, ref in zip(("out", "lse", "y", "nstat", "scores"), got, want):
        if x.numel():
            err = ((x.double() - ref).abs().max() / (1 + ref.abs().max())).item()
            assert err < (1e-2 if x.dtype == torch.bfloat16 else 1e-4), ("site", name, M, D, n, low, center, err)
            worst = max(worst, err if x.dtype != torch.bfloat16 else 0.0)
    return worst


def check_norm_back(M, D, S, k, low, center) -> float:
    """The norm's backward at site k (its rows of the stacks, the gain's and bias's gradients) against
    norm_backward_reference in float64, then the pull taking row k from the stack (g empty) against
    aggregate_pull_reference; every other row untouched by either."""
    h = torch.randn(M, D, device=dev) * 2 + 0.5
    nstat = AG.norm_stats_reference(h, center)
    dy = torch.randn(M, D, device=dev).to(low)
    w = 1 + 0.3 * torch.randn(D, device=dev)
    lse = torch.rand(M, device=dev) * 3 + 1
    stack = (torch.randn(S, M, D, device=dev) * 0.1).to(low)
    stats = pull_stats(S, M)
    others = [j for j in range(S) if j != k]
    before = stack[others].clone(), stats[others].clone()
    sums = AG._aggregate_norm_back_op(dy, h, nstat, w, lse, stack, stats, k, center)
    want_g, want_dw, want_db = AG.norm_backward_reference(h.double(), nstat.double(), w.double(), dy.double(), center)
    assert torch.equal(stack[others], before[0]) and torch.equal(stats[others], before[1])
    assert torch.equal(stats[k, 0], lse) and sums.shape == (2, D)
    worst = 0.0
    checks = (("g", stack[k], want_g), ("c", stats[k, 1], (stack[k].double() * h.double()).sum(-1)),
              ("dw", sums[0], want_dw), ("db", sums[1], want_db))
    for name, x, want in checks:
        err = ((x.double() - want).abs().max() / (1 + want.abs().max())).item()
        assert err < (1e-2 if x.dtype == torch.bfloat16 else 1e-4), ("norm back", name, M, D, S, k, low, err)
        worst = max(worst, err if x.dtype != torch.bfloat16 else 0.0)
    v = (torch.randn(M, D, device=dev) * 2).to(low)
    U = torch.randn(S, D, device=dev) * 0.5
    kept = stack.clone(), stats.clone()
    want_dv, want_b = AG.aggregate_pull_reference(v.double(), stack[k:].double(), stats[k:, :2].double(),
                                                  stats[k:, 2 + k].double(), U[k:].double(), 1e-5)
    empty = h.new_zeros(0)
    dv, b = AG._aggregate_pull_op(v, empty, empty, empty, stats[k, 2:3 + k].clone(), stack, stats, U, k, 1e-5)
    assert torch.equal(stack, kept[0]) and torch.equal(stats, kept[1])
    for name, x, want in (("dv", dv, want_dv), ("b", b, want_b)):
        err = ((x.double() - want).abs().max() / (1 + want.abs().max())).item()
        assert err < (1e-2 if x.dtype == torch.bfloat16 else 1e-4), ("pull, row set", name, M, D, S, k, low, err)
        worst = max(worst, err if x.dtype != torch.bfloat16 else 0.0)
    return worst


# (tokens, width, sites, site k)
PULL = ([(3, 20, 4, 0), (5, 40, 6, 3), (2, 1400, 3, 2)] if interp
        else [(3001, 768, 25, 0), (3001, 768, 25, 13), (517, 1024, 49, 1), (61, 1600, 97, 0), (61, 1600, 97, 96),
              (5, 20, 25, 24)])
worst = max(check(kernels, M, D, n, low) for kernels, shapes in (("held", SHAPES), ("many", MANY))
            for M, D, n in shapes for low in (torch.float32, torch.bfloat16))
# the pull at the committed tuning, one token at a time (blocks of 1: the sweeps take them) and in blocks of 8
committed = AG.AGG_PULL
for AG.AGG_PULL in (committed, {768: (16, 1, 3, 1)}, {768: (2, 4, 2, 8)}):
    worst = max(worst, *(check_pull(M, D, S, k, low, first) for M, D, S, k in PULL
                         for low in (torch.float32, torch.bfloat16) for first in (True, False)))
AG.AGG_PULL = committed
NORMED = [(5, 40, 3), (2, 1400, 9)] if interp else [(3001, 768, 2), (3001, 768, 25), (61, 1600, 97)]
worst = max(worst, *(check_site(M, D, n, low, center, bias, y_dtype, norm) for M, D, n in NORMED
                     for low in (torch.float32, torch.bfloat16)
                     for center, bias, norm in ((True, True, True), (True, False, True), (False, False, True),
                                                (False, False, False))
                     for y_dtype in (torch.float32, torch.bfloat16)))
for AG.AGG_PULL in (committed, {768: (16, 1, 3, 1)}):
    worst = max(worst, *(check_norm_back(M, D, S, k, low, center) for M, D, S, k in PULL
                         for low in (torch.float32, torch.bfloat16) for center in (True, False)))
AG.AGG_PULL = committed
print(f"ok: the aggregation kernels (held, many, pull, and attnres full's folded norms) match torch; worst relative "
      f"error (fp32 outputs) {worst:.2e}")
