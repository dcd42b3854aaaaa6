"""Attention Residuals' aggregation as one operation, forward and backward.

An attnres site reads h = Σ_k p_k v_k with p = softmax_k(wᵀ RMSNorm(v_k)) over its sources v_k
(VARIANTS.md; residuals.AttentionResiduals). Written in torch, inductor compiled a 12-layer
step's 25 aggregations together with their neighbours into long serial reductions: one backward
kernel took 31.6 ms a step (the aggregations that read the embedding, fused with the
embedding's backward) and the step 1.55 times the baseline's (calls AF, AG; docs/performance.md).
Here each aggregation is one kernel forward and one backward, opaque to inductor: a token at a
time, its row of every source read once and kept in registers between the scores and the sum
(read again from L2 past AGG_HOLD sources), the sources passed as they are (a tuple of pointers,
no stacked copy). At 12 layers the step went from 1.55 to 1.22 times the baseline's with a first
version of these kernels (call AH) and to 1.17 with these (call AI).

Sites of more than AGG_HOLD sources (attnres full's: up to 25 at 12 layers, 97 at 48) take the "many" kernels
instead: the sources past the first from a table of offsets, in a loop at run time (one compiled pair for every
count; the held kernels unroll over the sources and compiled one pair per count, padded to multiples of 8), a running
softmax forward that saves log Σ_k exp(score_k) a token, and a backward that takes it and the output h
(Σ_k p_k dp_k = ḡ·h), so that each source is read once each way. attnres full's step went from 1.61 to 1.48 times
the baseline's, and its first window from 154 to 60 s (call DS).

attnres full's walk (`aggregate_pulled`) takes the many forward at every site and pulls its backward (_Pulled): no
site returns a gradient for its older sources; each writes its output's gradient into a stack, and each source's
whole gradient is formed once, at its lowest site, from the stack's rows above it (the pull kernel). A (site, source)
pair then costs one read of the site's gradient. Summing each source's gradient site by site in the kernels (the
carriers, which had brought 1.5B's 48 layers from out of memory, call DU, to 1.15 times the baseline's peak memory,
DY) read the source and the running sum and wrote the sum; autograd's own sums before them kept every pair's
gradient alive. attnres full's step went from 1.456 to 1.33 times the baseline's (calls EA, EB, EC), and at 1.5B's 48
layers from 2.39 to 1.75 times at 1.09 times its peak memory (DY, EF).

Folded (AttentionResiduals.walk_final; LayerNorm or RMSNorm, layouts with one norm a site in front), each site's
aggregation also applies the site's norm (the top site's: the final norm): the many forward writes y = N(h) in the
stack's dtype, the row's mean and 1/std beside h, and the norm's backward (_agg_norm_bwd_kernel) writes ḡ_k and the
stats into the stacks' row k itself, where inductor's norm had read h and its output's gradient twice and written ḡ_k
for the pull to copy. The pull takes blocks of tokens (_agg_pull_block_kernel: a site's row of u read once for the
block). With the stack's dtype fixed (site 0's tokens had made autograd copy the whole stack to fp32), attnres full's
step went from 1.33 to 1.245-1.257 times the baseline's, and at 1.5B's width (12 layers) from 1.37 to 1.15 (calls EK,
EL, EO, EP).

Each site's forward (aggregate_site) also saves its sources' scores r s, and the backward copies them into the stats
stack, so that the pull reads v_k's score at each site above (4 bytes a token) where it summed x·u_j over the
features again: the pull's 25 sites at 124M took 16.9 ms a step where they took 23.0, and attnres full's step
1.208-1.221 times the baseline's, at 1.5B's width 1.128 (calls ES, ET, EV).

With u = g ⊙ w (RMSNorm's gain, the site's query), r_k = rsqrt(mean(v_k²) + eps), s_k = v_k·u:
score_k = r_k s_k. Backward, ḡ the output's gradient, dp_k = ḡ·v_k, dscore_k = p_k (dp_k −
Σ_j p_j dp_j): dv_k = p_k ḡ + dscore_k r_k u − dscore_k s_k r_k³ / D · v_k, and u takes
Σ_tokens Σ_k dscore_k r_k v_k (per-program sums, added up in torch); torch's autograd carries
it to g and w. Numerics: the scores are formed in fp32 from the sources as they are, where the
torch path rounds RMSNorm(v) to a bf16 source's dtype first; the output is fp32 in both; each
site's gradient for a source is rounded once, to the source's dtype. Pulled, a site's output gradient is rounded
once in the stack, to the autocast dtype (the sublayers' matmuls': bf16 in training; without autocast the
embedding's), its ḡ·h taken from the rounded one, p at each site from the score that site's forward computed, and
each source's gradient summed over its sites in fp32 and rounded once; u's gradient is a matmul of b (rounded to the
source's dtype) and the source.

`aggregate(sources, gain, query, eps)` and `aggregate_pulled(sources, U, k, tokens, eps, dtype)`: on CUDA with Triton,
the kernels; elsewhere the same computation in torch (`aggregate_reference`, `aggregate_backward_reference`, the many
kernels' rule `aggregate_many_reference`, `aggregate_many_backward_reference`, the site forward's `site_reference` and
`scores_reference`, and the pull's `aggregate_pull_reference`), which the tests hold to autograd and to the module's
own torch code.
"""

from __future__ import annotations

import torch

from .addnorm import norm_stats
from .kernels import by_width, row_chunks, row_warps, sm_count, takes, tl, triton

# Programs per SM (each looping over its share of tokens) and warps, forward and backward: the fastest of
# scripts/device/aggregate_bench.py's sweep at the 124M step's largest block-mode site (61,440 tokens x 768, five
# sources) on an H100 (call AI: 0.322 ms forward, 2.3 TB/s; 0.606 ms backward, 2.2 TB/s). The warps are those of
# rows of up to 8 chunks of 128 features; wider rows launch more (kernels.row_warps: twice at 1.5B's 1,600, call DK).
AGG_FWD, AGG_BWD = (8, 2), (8, 4)
# The most sources a kernel keeps in registers between its two passes. Past it the second pass reads them again
# (from L2), and the kernels take the sources padded to a multiple of AGG_PAD (the padding masked off): attnres full
# at 12 layers has sites of 1 to 25 sources; with a kernel compiled for each count its first window took 205 s
# (call AI), padded 154 s (call AJ). Since the many kernels below, the held ones see more than AGG_HOLD sources only
# where the sources after the first mix dtypes (no model site does).
AGG_HOLD, AGG_PAD = 8, 8
# Past AGG_HOLD sources (attnres full's later sites) the "many" kernels take them instead: a loop at run time over the
# sources AGG_GROUP at a time, their offsets read from a table, so one kernel serves every count. The forward keeps a
# running softmax (each source read once) and saves the log of its denominator; the backward takes it and the output
# (Σ_k p_k dp_k = ḡ·h), so it reads each source once too. AGG_MANY: by width (kernels.by_width, the nearest entry),
# the forward's and the backward's programs per SM, warps (scaled to the row: kernels.row_warps) and the group loop's
# software pipelining stages (tl.range's num_stages). 768: the fastest of scripts/device/aggregate_bench.py --many 25
# at attnres full's largest 124M site (61,440 tokens x 768, 25 sources) on an H100, call DR: a source at a time on one
# warp, three loads in flight, forward 1.37 ms and backward 2.56 ms (2.0 TB/s) where the held kernels took 2.66 and
# 3.74. Groups of 8 on two warps without stages took 3.1 and 5.4 ms (call DQ: each group's loads waited on the last
# group's sums). 1,600 (1.5B's rows, 16,384 x 1,600, 25 sources, call DV): the backward took 2.68 ms at 768's entry
# (row_warps' 2 warps) and 1.89 ms at its own (4 warps, no stages); the forward's best there was within 10% of 768's
# entry's 1.15 ms and keeps it.
AGG_GROUP = 1
# The pull kernel's (attnres full's backward) programs per SM, warps, stages of its loop over the sites above, and the
# tokens of a block. 768: the fastest of scripts/device/aggregate_bench.py --pull 25 at 61,440 tokens (a bf16 source,
# 24 rows of the stack) since the pull reads each site's score, call ES: blocks of 2 tokens on one warp, 1.042 ms (2.5
# TB/s); blocks of 4 on 2 warps (EL's, 1.409 ms with the sum x·u_j) 1.155, of 8 1.070, one token at a time 1.264 at
# best. 1,600: swept at 1.5B's rows (16,384 x 1,600, call ET), blocks of 2 tokens on 2 warps (launched with 4), 0.840
# ms; with the sum (call EP) blocks of 2 on one warp took 0.950 ms, one token at a time 0.965.
AGG_PULL = {768: (8, 1, 3, 2), 1600: (4, 2, 3, 2)}
AGG_MANY = {768: ((16, 1, 3), (16, 1, 3)), 1600: ((16, 1, 3), (16, 2, 1))}


def _wide(sources) -> torch.dtype:
    """The dtype the aggregation computes and returns in: fp32, or float64 for float64 sources."""
    wide = torch.float32
    for v in sources:
        wide = torch.promote_types(wide, v.dtype)
    return wide


def _stats(sources, u, eps: float):
    wide = _wide(sources)
    V = torch.stack([v.to(wide) for v in sources])  # (K, M, D)
    r = torch.rsqrt(V.pow(2).mean(-1) + eps)  # (K, M)
    s = V @ u.to(wide)
    return V, r, s, torch.softmax(r * s, dim=0)


def aggregate_reference(sources: list[torch.Tensor], u: torch.Tensor, eps: float) -> torch.Tensor:
    """Σ_k p_k v_k over sources (M, D) each, p = softmax_k(r_k v_k·u): in fp32 (or wider); differentiable."""
    V, _, _, p = _stats(sources, u, eps)
    return (p[..., None] * V).sum(0)


def aggregate_backward_reference(sources: list[torch.Tensor], u: torch.Tensor, dout: torch.Tensor, eps: float
                                 ) -> list[torch.Tensor]:
    """[dv_0, ..., dv_{K-1}, du] by hand (each dv in its source's dtype): what the backward kernel computes."""
    V, r, s, p = _stats(sources, u, eps)
    dout = dout.to(V.dtype)
    dp = (V * dout).sum(-1)  # (K, M)
    dscore = p * (dp - (p * dp).sum(0))
    b = dscore * r  # on u
    c = b * s * r * r / V.shape[-1]  # on v
    dV = p[..., None] * dout + b[..., None] * u.to(V.dtype) - c[..., None] * V
    du = (b[..., None] * V).sum((0, 1))
    return [dv.to(v.dtype, copy=True) for dv, v in zip(dV, sources)] + [du.to(u.dtype)]  # no two alias


def aggregate_many_reference(sources: list[torch.Tensor], u: torch.Tensor, eps: float
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """(aggregate_reference's output, log Σ_k exp(score_k) a token): what the many kernels' forward computes."""
    V, r, s, p = _stats(sources, u, eps)
    return (p[..., None] * V).sum(0), torch.logsumexp(r * s, dim=0).float()


def aggregate_many_backward_reference(sources: list[torch.Tensor], u: torch.Tensor, out: torch.Tensor,
                                      lse: torch.Tensor, dout: torch.Tensor, eps: float) -> list[torch.Tensor]:
    """aggregate_backward_reference's gradients by the many kernels' rule: p_k = exp(score_k − lse) from the forward's
    lse, and Σ_j p_j dp_j = ḡ·h from its output h, so that each source is needed once."""
    wide = _wide(sources)
    dout, u, out = dout.to(wide), u.to(wide), out.to(wide)
    total = (dout * out).sum(-1)  # Σ_j p_j dp_j
    dsources, du = [], torch.zeros_like(u)
    for v in sources:
        x = v.to(wide)
        r = torch.rsqrt(x.pow(2).mean(-1) + eps)
        s = x @ u
        p = torch.exp(r * s - lse.to(wide))
        b = p * ((x * dout).sum(-1) - total) * r
        c = b * s * r * r / x.shape[-1]
        dsources.append((p[:, None] * dout + b[:, None] * u - c[:, None] * x).to(v.dtype))
        du = du + (b[:, None] * x).sum(0)
    return dsources + [du.to(u.dtype)]


if triton is not None:
    # Layout: a token's row as a (DC, DL) tile, feature chunk x feature in the chunk (DL = 128: a warp's 32 lanes x
    # 4), the warps along the chunks. A sum over the features is one within each warp (over DL) and one across
    # warps (over DC), a trip through shared memory and a barrier. So each kind of sum a token needs (|v_k|², v_k·u
    # and, backward, v_k·ḡ) is gathered for all sources in one (DC, KP) tile, reduced within warps source by source
    # and across warps once: nothing stands between one source's loads and the next's. The first version, a
    # (tokens, features) tile reducing each sum on its own, waited for each source in turn: 1.2 TB/s forward,
    # 1.5 TB/s backward (call AH).

    @triton.jit
    def _tile(D, DC: tl.constexpr, DL: tl.constexpr, KP: tl.constexpr):
        """Features d (DC, DL) and their mask, sources kv (1, KP)."""
        d = tl.arange(0, DC)[:, None] * DL + tl.arange(0, DL)[None, :]
        return d, d < D, tl.arange(0, KP)[None, :]

    @triton.jit
    def _put(sums, k, kv, x):
        """Per-chunk sums (DC, KP) with source k's column set to x's sum over the features of each chunk."""
        return tl.where(kv == k, tl.sum(x, axis=1, keep_dims=True), sums)

    @triton.jit
    def _total(sums):
        """Per-chunk sums (DC, KP) summed over the chunks (across warps): (1, KP)."""
        return tl.sum(sums, axis=0, keep_dims=True)

    @triton.jit
    def _col(x, k, kv):
        """Source k's value of a (1, KP) tile: (1, 1)."""
        return tl.sum(tl.where(kv == k, x, 0.0), axis=1, keep_dims=True)

    @triton.jit
    def _load(ptr, off, mask, AGAIN: tl.constexpr):
        """A source's row; read AGAIN (the second pass) past L1 when the sources are too many to keep in registers:
        a different load, which the compiler does not merge with the first."""
        if AGAIN:
            return tl.load(ptr + off, mask=mask, other=0.0, cache_modifier=".cg").to(tl.float32)
        return tl.load(ptr + off, mask=mask, other=0.0).to(tl.float32)

    @triton.jit
    def _live(dmask, k, n_sources):
        """dmask where source k is one of the n_sources (not padding). The count is compared as a tile: Triton's
        interpreter (3.9) types `k < n_sources`, a constant against a run-time scalar, as int32, and a load takes no
        int32 mask ("mask has unsupported dtype"); compiled for sm_90 the kernels are the same either way."""
        return dmask & (tl.full(dmask.shape, k, tl.int32) < n_sources)

    @triton.jit
    def _weights(ss, s, live, D, eps):
        """(p, r) over the sources, each (1, KP): the softmax weights, rsqrt(mean v² + eps); `live`: not padding."""
        r = 1.0 / tl.sqrt(ss / D + eps)
        score = tl.where(live, s * r, float("-inf"))
        e = tl.exp(score - tl.max(score, axis=1, keep_dims=True))  # padded sources: 0
        return e / tl.sum(e, axis=1, keep_dims=True), r

    @triton.jit
    def _first_pass(srcs, n_sources, off, dmask, kv, u, go, K: tl.constexpr, KP: tl.constexpr, DC: tl.constexpr,
                    WITH_GO: tl.constexpr):
        """A token's first pass over its sources: the per-chunk sums (DC, KP) of v_k², v_k·u and (WITH_GO) v_k·ḡ, each
        kind gathered for all sources, so that _total reduces it across warps once."""
        ss = tl.zeros([DC, KP], tl.float32)
        s = tl.zeros([DC, KP], tl.float32)
        dp = tl.zeros([DC, KP], tl.float32)
        for k in tl.static_range(K):
            v = _load(srcs[k], off, _live(dmask, k, n_sources), False)
            ss = _put(ss, k, kv, v * v)
            s = _put(s, k, kv, v * u)
            if WITH_GO:
                dp = _put(dp, k, kv, v * go)
        return ss, s, dp

    @triton.jit(do_not_specialize=["n_sources", "M", "n_programs", "rows_per_program"])  # validation's shapes
    def _agg_fwd_kernel(srcs, n_sources, u_ptr, out_ptr, M, D, eps, n_programs, rows_per_program,
                        K: tl.constexpr, KP: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr, HOLD: tl.constexpr):
        d, dmask, kv = _tile(D, DC, DL, KP)
        u = tl.load(u_ptr + d, mask=dmask, other=0.0)
        for it in range(0, rows_per_program):
            m = tl.program_id(0) + it * n_programs
            if m < M:
                off = m.to(tl.int64) * D + d
                ss, s, _ = _first_pass(srcs, n_sources, off, dmask, kv, u, u, K, KP, DC, False)
                p, _ = _weights(_total(ss), _total(s), kv < n_sources, D, eps)
                acc = tl.zeros([DC, DL], tl.float32)
                for k in tl.static_range(K):
                    acc += _col(p, k, kv) * _load(srcs[k], off, _live(dmask, k, n_sources), not HOLD)
                tl.store(out_ptr + off, acc, mask=dmask)

    @triton.jit(do_not_specialize=["n_sources", "M", "n_programs", "rows_per_program"])  # validation's shapes
    def _agg_bwd_kernel(srcs, dsrcs, n_sources, u_ptr, dout_ptr, part_ptr, M, D, eps, n_programs, rows_per_program,
                        K: tl.constexpr, KP: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr, HOLD: tl.constexpr):
        d, dmask, kv = _tile(D, DC, DL, KP)
        u = tl.load(u_ptr + d, mask=dmask, other=0.0)
        a = tl.zeros([DC, DL], tl.float32)  # this program's share of u's gradient
        for it in range(0, rows_per_program):
            m = tl.program_id(0) + it * n_programs
            if m < M:
                off = m.to(tl.int64) * D + d
                go = tl.load(dout_ptr + off, mask=dmask, other=0.0)
                ss, s, dp = _first_pass(srcs, n_sources, off, dmask, kv, u, go, K, KP, DC, True)
                s = _total(s)
                dp = _total(dp)
                p, r = _weights(_total(ss), s, kv < n_sources, D, eps)
                b = p * (dp - tl.sum(p * dp, axis=1, keep_dims=True)) * r  # dscore_k r_k: on u
                c = b * s * r * r / D  # dscore_k s_k r_k³ / D: on v_k
                for k in tl.static_range(K):
                    v = _load(srcs[k], off, _live(dmask, k, n_sources), not HOLD)
                    bk = _col(b, k, kv)
                    dv = _col(p, k, kv) * go + bk * u - _col(c, k, kv) * v
                    tl.store(dsrcs[k] + off, dv.to(dsrcs[k].dtype.element_ty), mask=_live(dmask, k, n_sources))
                    a += bk * v
        tl.store(part_ptr + tl.program_id(0) * D + d, a, mask=dmask)

    # The many kernels: source 0 (the embedding, fp32 in training) from its own pointer, the others (the sublayers'
    # outputs, one dtype) from a table of their offsets from the first of them (base), in elements, a group of G at a
    # time as a (G, DC, DL) tile. Offsets rather than addresses: compiled for sm_90, rows at addresses read from memory
    # were loaded 2 bytes at a time (the compiler cannot know their alignment; tl.multiple_of on an address did not
    # carry through the cast to a pointer), at base + offset hinted a multiple of 8 elements 16 at a time.

    @triton.jit
    def _group(base, table, g, n, off, dmask, G: tl.constexpr, ALIGNED: tl.constexpr):
        """Table entries g .. g+G-1 of n: their rows' addresses (G, DC, DL), the rows' mask, and which are sources."""
        gi = g + tl.arange(0, G)
        live = gi < n
        at = tl.load(table + gi, mask=live, other=0)
        if ALIGNED:  # every offset a multiple of 8 elements (the op checks)
            at = tl.multiple_of(at, 8)
        return base + at[:, None, None] + off[None, :, :], live[:, None, None] & dmask[None, :, :], live

    @triton.jit
    def _row_sums(x):
        """(G, DC, DL) summed over each row's features: (G,)."""
        return tl.sum(tl.sum(x, axis=2), axis=1)

    @triton.jit
    def _sum(x):
        """A (DC, DL) row summed over its features."""
        return tl.sum(tl.sum(x, axis=1), axis=0)

    @triton.jit
    def _norm_row(h, dmask, D, eps, CENTER: tl.constexpr):
        """A row's (h − mean) for LayerNorm (CENTER; 0 off the row) or h for RMSNorm (mean 0), its mean and 1/std."""
        mean = _sum(h) / D if CENTER else 0.0
        if CENTER:
            h = tl.where(dmask, h - mean, 0.0)
        return h, mean, 1.0 / tl.sqrt(_sum(h * h) / D + eps)

    @triton.jit(do_not_specialize=["n_table", "M", "n_programs", "rows_per_program"])
    def _agg_many_fwd_kernel(first_ptr, base_ptr, table, n_table, u_ptr, out_ptr, lse_ptr, w_ptr, b_ptr, y_ptr,
                             nstat_ptr, sc_ptr, M, D, eps, norm_eps, n_programs, rows_per_program, G: tl.constexpr,
                             DC: tl.constexpr, DL: tl.constexpr, ALIGNED: tl.constexpr, STAGES: tl.constexpr,
                             NORM: tl.constexpr, CENTER: tl.constexpr, HAS_BIAS: tl.constexpr,
                             SCORES: tl.constexpr):
        d, dmask, _ = _tile(D, DC, DL, 1)
        u = tl.load(u_ptr + d, mask=dmask, other=0.0)
        w = tl.load(w_ptr + d, mask=dmask, other=0.0)  # the norm's gain and bias (unused, and dropped, without NORM)
        bias = tl.zeros([DC, DL], tl.float32)
        if HAS_BIAS:
            bias = tl.load(b_ptr + d, mask=dmask, other=0.0)
        for it in range(0, rows_per_program):
            m = tl.program_id(0) + it * n_programs
            if m < M:
                off = m.to(tl.int64) * D + d
                acc = tl.load(first_ptr + off, mask=dmask, other=0.0).to(tl.float32)
                top = _sum(acc * u) / tl.sqrt(_sum(acc * acc) / D + eps)  # the largest score so far
                total = tl.exp(top - top)  # Σ exp(score - top)
                if SCORES:  # each source's score r s a token, (sources, M) (attnres full's walk: for its pull)
                    tl.store(sc_ptr + m, top)
                for g in tl.range(0, n_table, G, num_stages=STAGES):
                    ptrs, mask, live = _group(base_ptr, table, g, n_table, off, dmask, G, ALIGNED)
                    V = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
                    score = tl.where(live, _row_sums(V * u[None]) / tl.sqrt(_row_sums(V * V) / D + eps),
                                     float("-inf"))
                    if SCORES:
                        tl.store(sc_ptr + (1 + g + tl.arange(0, G)).to(tl.int64) * M + m, score, mask=live)
                    new_top = tl.maximum(top, tl.max(score, axis=0))
                    scale = tl.exp(top - new_top)
                    e = tl.exp(score - new_top)  # 0 past the sources
                    acc = acc * scale + tl.sum(e[:, None, None] * V, axis=0)
                    total = total * scale + tl.sum(e, axis=0)
                    top = new_top
                h = acc / total
                tl.store(out_ptr + off, h, mask=dmask)
                tl.store(lse_ptr + m, top + tl.log(total))
                if NORM:  # the site's norm on h (attnres full's folded walk): y = N(h) in y's dtype, its mean and 1/std
                    hc, mean, rstd = _norm_row(h, dmask, D, norm_eps, CENTER)
                    tl.store(y_ptr + off, (hc * rstd * w + bias).to(y_ptr.dtype.element_ty), mask=dmask)
                    tl.store(nstat_ptr + m, mean)
                    tl.store(nstat_ptr + M + m, rstd)

    @triton.jit(do_not_specialize=["n_table", "M", "n_programs", "rows_per_program"])
    def _agg_many_bwd_kernel(first_ptr, dfirst_ptr, base_ptr, dbase_ptr, table, n_table, u_ptr, out_ptr, lse_ptr,
                             dout_ptr, part_ptr, M, D, eps, n_programs, rows_per_program, G: tl.constexpr,
                             DC: tl.constexpr, DL: tl.constexpr, ALIGNED: tl.constexpr, STAGES: tl.constexpr):
        d, dmask, _ = _tile(D, DC, DL, 1)
        u = tl.load(u_ptr + d, mask=dmask, other=0.0)
        a = tl.zeros([DC, DL], tl.float32)  # this program's share of u's gradient
        for it in range(0, rows_per_program):
            m = tl.program_id(0) + it * n_programs
            if m < M:
                off = m.to(tl.int64) * D + d
                go = tl.load(dout_ptr + off, mask=dmask, other=0.0)
                total = _sum(go * tl.load(out_ptr + off, mask=dmask, other=0.0))  # Σ_j p_j dp_j = ḡ·h
                lse = tl.load(lse_ptr + m)
                v = tl.load(first_ptr + off, mask=dmask, other=0.0).to(tl.float32)
                s = _sum(v * u)
                r = 1.0 / tl.sqrt(_sum(v * v) / D + eps)
                p = tl.exp(r * s - lse)
                b = p * (_sum(v * go) - total) * r  # dscore r: on u
                c = b * s * r * r / D  # dscore s r³ / D: on v
                tl.store(dfirst_ptr + off, (p * go + b * u - c * v).to(dfirst_ptr.dtype.element_ty), mask=dmask)
                a += b * v
                for g in tl.range(0, n_table, G, num_stages=STAGES):
                    ptrs, mask, live = _group(base_ptr, table, g, n_table, off, dmask, G, ALIGNED)
                    V = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
                    sg = _row_sums(V * u[None])  # each (G,): the group's s, r, p, b and c
                    rg = 1.0 / tl.sqrt(_row_sums(V * V) / D + eps)
                    pg = tl.where(live, tl.exp(rg * sg - lse), 0.0)
                    bg = pg * (_row_sums(V * go[None]) - total) * rg
                    cg = bg * sg * rg * rg / D
                    dV = pg[:, None, None] * go[None] + bg[:, None, None] * u[None] - cg[:, None, None] * V
                    # the gradients' rows: the table's second half, from dbase
                    dptrs = _group(dbase_ptr, table + n_table, g, n_table, off, dmask, G, ALIGNED)[0]
                    tl.store(dptrs, dV.to(dbase_ptr.dtype.element_ty), mask=mask)
                    a += tl.sum(bg[:, None, None] * V, axis=0)
        tl.store(part_ptr + tl.program_id(0) * D + d, a, mask=dmask)


    # The pull kernel (attnres full's backward; aggregate_pulled below), on blocks of BM consecutive tokens, a (BM, DC,
    # DL) tile: the block's rows of the source v in registers, the sites j = k..S-1 above it in a loop at run time,
    # each site's gradient rows ḡ_j read once from the stack as one piece of BM rows, its u_j (a row of U, the same for
    # every token: from cache) once for the block, and from the stats its log-denominator, ḡ_j·h_j and the score r s
    # of v at site j, which site j's forward computed and saved (a load in place of the sum x·u_j). One token at a
    # time, u_j's rows cost the kernel about 30% of its time (call ED: 1.680 ms at site 1 of 25, 1.171 ms with u_j not
    # loaded), and reads of 24 rows with no arithmetic ran at 2.9 TB/s, with u_j's rows, their sums and terms 1.4-1.6
    # TB/s, in blocks of 4 or 8 tokens 2.2 TB/s (call EK, scripts/device/stream_probe.py). In blocks, the sum x·u_j was
    # the cost: the probe took 1.137 ms with it, 0.912 with the score loaded instead, 0.895 without u_j (call ER).

    @triton.jit
    def _site_stats(stats_ptr, j, S, M, m):
        """Site j's stats at tokens m, in the stats stack (S, S + 2, M): its lse there, ḡ_j·h_j M further, its sources'
        scores from 2 M on."""
        return stats_ptr + j * ((S + 2) * M.to(tl.int64)) + m

    @triton.jit
    def _pull_block_term(x, r, gj, uj, score, lse, c):
        """Site j's part of dv's two sums (p ḡ_j + b u_j, and b r s for the term on v) and b = dscore r, for a block of
        tokens: x, gj (BM, DC, DL), uj (1, DC, DL), r, score, lse, c (BM,)."""
        p = tl.exp(score - lse)
        b = p * (_row_sums(x * gj) - c) * r
        return p[:, None, None] * gj + b[:, None, None] * uj, b * score, b

    @triton.jit(do_not_specialize=["k", "S", "M", "n_programs", "blocks_per_program"])
    def _agg_pull_block_kernel(v_ptr, dv_ptr, g_ptr, lse_ptr, c_ptr, stack_ptr, stats_ptr, u_ptr, b_ptr, k, S, M, D,
                               eps, n_programs, blocks_per_program, BM: tl.constexpr, DC: tl.constexpr,
                               DL: tl.constexpr, STAGES: tl.constexpr, ROW_SET: tl.constexpr):
        d, dmask, _ = _tile(D, DC, DL, 1)
        MD = M.to(tl.int64) * D
        for it in range(0, blocks_per_program):
            m = (tl.program_id(0) + it * n_programs) * BM + tl.arange(0, BM)
            live = m < M
            mask = live[:, None, None] & dmask[None]
            off = m.to(tl.int64)[:, None, None] * D + d[None]
            x = tl.load(v_ptr + off, mask=mask, other=0.0).to(tl.float32)
            r = 1.0 / tl.sqrt(_row_sums(x * x) / D + eps)
            at = _site_stats(stats_ptr, k, S, M, m)
            if ROW_SET:  # site k's rows written already (the norm's backward, _agg_norm_bwd_kernel)
                gk = tl.load(stack_ptr + k * MD + off, mask=mask, other=0.0)
                lse = tl.load(at, mask=live, other=0.0)
                c = tl.load(at + M, mask=live, other=0.0)
            else:  # site k (this source's lowest): its rows from g, stored into the stacks for the sites below
                gk = tl.load(g_ptr + off, mask=mask, other=0.0)
                tl.store(stack_ptr + k * MD + off, gk, mask=mask)
                lse = tl.load(lse_ptr + m, mask=live, other=0.0)
                c = tl.load(c_ptr + m, mask=live, other=0.0)
                tl.store(at, lse, mask=live)
                tl.store(at + M, c, mask=live)
            acc, bs, b = _pull_block_term(x, r, gk.to(tl.float32),
                                          tl.load(u_ptr + k * D + d, mask=dmask, other=0.0)[None],
                                          tl.load(at + (2 + k) * M, mask=live, other=0.0), lse, c)
            tl.store(b_ptr + m, b, mask=live)
            for j in tl.range(k + 1, S, num_stages=STAGES):
                at = _site_stats(stats_ptr, j, S, M, m)
                gj = tl.load(stack_ptr + j * MD + off, mask=mask, other=0.0).to(tl.float32)
                uj = tl.load(u_ptr + j * D + d, mask=dmask, other=0.0)[None]
                term, bsj, bj = _pull_block_term(x, r, gj, uj, tl.load(at + (2 + k) * M, mask=live, other=0.0),
                                                 tl.load(at, mask=live, other=0.0),
                                                 tl.load(at + M, mask=live, other=0.0))
                acc += term
                bs += bsj
                tl.store(b_ptr + (j - k) * M + m, bj, mask=live)
            dv = acc - (bs * r / D)[:, None, None] * x
            tl.store(dv_ptr + off, dv.to(dv_ptr.dtype.element_ty), mask=mask)

    # The site's norm folded into attnres full's walk (aggregate_pulled with a norm): the forward's epilogue above
    # writes y = N(h) beside h, and this kernel is the norm's backward, writing what the pull reads at site k: ḡ_k (the
    # gradient of h, rounded to the stack's dtype) into row k of the stack, and log Σ exp(score) and ḡ_k·h into row k
    # of the stats, with per-program sums of the norm's gain and bias gradients (added up in torch); it reads h, the
    # means and 1/stds the forward saved, and y's gradient. Compiled as written, inductor's norm backward took two
    # passes over the norm's input and output gradient, wrote ḡ_k, and the pull then read it and wrote it into the
    # stack (call EJ's generated code).

    @triton.jit(do_not_specialize=["k", "S", "M", "n_programs", "rows_per_program"])
    def _agg_norm_bwd_kernel(dy_ptr, h_ptr, nstat_ptr, w_ptr, lse_ptr, stack_ptr, stats_ptr, part_ptr, k, S, M, D,
                             n_programs, rows_per_program, DC: tl.constexpr, DL: tl.constexpr, CENTER: tl.constexpr,
                             STAGES: tl.constexpr):
        d, dmask, _ = _tile(D, DC, DL, 1)
        w = tl.load(w_ptr + d, mask=dmask, other=0.0)
        MD = M.to(tl.int64) * D
        dw = tl.zeros([DC, DL], tl.float32)
        db = tl.zeros([DC, DL], tl.float32)
        # masked rather than skipped past the last token, so that the loop's loads can be pipelined (STAGES); the token
        # as a (1, 1) tile: Triton's interpreter (3.9) types a scalar's `m < M` as int32, which no load takes as a mask
        for it in tl.range(0, rows_per_program, num_stages=STAGES):
            m = tl.program_id(0) + it * n_programs + tl.zeros([1, 1], tl.int32)
            live = m < M
            rmask = dmask & live
            off = m.to(tl.int64) * D + d
            h = tl.load(h_ptr + off, mask=rmask, other=0.0)
            dy = tl.load(dy_ptr + off, mask=rmask, other=0.0).to(tl.float32)
            rstd = tl.load(nstat_ptr + M + m, mask=live, other=0.0)
            xhat = tl.where(rmask, (h - tl.load(nstat_ptr + m, mask=live, other=0.0)) * rstd, 0.0)
            gw = dy * w
            g = gw - xhat * (_sum(gw * xhat) / D)
            if CENTER:
                g -= _sum(gw) / D
            g = (g * rstd).to(stack_ptr.dtype.element_ty)
            tl.store(stack_ptr + k * MD + off, g, mask=rmask)
            at = _site_stats(stats_ptr, k, S, M, m)
            tl.store(at, tl.load(lse_ptr + m, mask=live, other=0.0), mask=live)
            tl.store(at + M, _sum(g.to(tl.float32) * h) + tl.zeros([1, 1], tl.float32), mask=live)
            dw += dy * xhat
            db += dy
        part = part_ptr + tl.program_id(0) * 2 * D + d
        tl.store(part, dw, mask=dmask)
        tl.store(part + D, db, mask=dmask)


def _padded(tensors: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """The kernels' tuple of sources (or of their gradients): past AGG_HOLD, padded to a multiple of AGG_PAD with
    the last one (the kernels mask the padding off), so that counts in between share one compiled kernel."""
    K = len(tensors)
    return tuple(tensors) if K <= AGG_HOLD else tuple(tensors) + (tensors[-1],) * (-K % AGG_PAD)


def _launch(M: int, D: int, K: int, t: torch.Tensor, tuning: tuple[int, int]) -> tuple[int, dict, int]:
    """(programs, the kernel's meta-parameters for a tuple of K sources as _padded gives it, tokens a program)."""
    per_sm, warps = tuning
    programs = min(M, per_sm * sm_count(t))
    dc, dl = row_chunks(D)
    meta = dict(K=K, KP=triton.next_power_of_2(K), DC=dc, DL=dl, HOLD=K <= AGG_HOLD, num_warps=row_warps(warps, D))
    return programs, meta, triton.cdiv(M, programs)


@torch.library.custom_op("gptablate::aggregate", mutates_args=())
def _aggregate_op(sources: list[torch.Tensor], u: torch.Tensor, eps: float) -> torch.Tensor:
    if not all(takes(v) for v in sources):
        return aggregate_reference(sources, u, eps)
    M, D = sources[0].shape
    out = torch.empty(M, D, dtype=torch.float32, device=u.device)
    srcs = _padded(sources)
    programs, meta, per_program = _launch(M, D, len(srcs), u, AGG_FWD)
    _agg_fwd_kernel[(programs,)](srcs, len(sources), u, out, M, D, eps, programs, per_program, **meta)
    return out


@_aggregate_op.register_fake
def _(sources, u, eps):
    return sources[0].new_empty(sources[0].shape, dtype=_wide(sources))


@torch.library.custom_op("gptablate::aggregate_backward", mutates_args=())
def _aggregate_backward_op(sources: list[torch.Tensor], u: torch.Tensor, dout: torch.Tensor, eps: float
                           ) -> list[torch.Tensor]:
    if not all(takes(v) for v in sources):
        return aggregate_backward_reference(sources, u, dout, eps)
    M, D = sources[0].shape
    dsources = [torch.empty_like(v) for v in sources]
    srcs = _padded(sources)
    programs, meta, per_program = _launch(M, D, len(srcs), u, AGG_BWD)
    part = torch.empty(programs, D, dtype=torch.float32, device=u.device)
    _agg_bwd_kernel[(programs,)](srcs, _padded(dsources), len(sources), u, dout, part, M, D, eps, programs,
                                 per_program, **meta)
    return dsources + [part.sum(0)]


@_aggregate_backward_op.register_fake
def _(sources, u, dout, eps):
    return [torch.empty_like(v) for v in sources] + [u.new_empty(u.shape)]


def _setup_context(ctx, inputs, output):
    sources, u, eps = inputs
    ctx.save_for_backward(u, *sources)
    ctx.eps = eps


def _backward(ctx, dout):
    u, *sources = ctx.saved_tensors
    *dsources, du = _aggregate_backward_op(sources, u, dout.to(u.dtype).contiguous(), ctx.eps)
    return dsources, du, None


_aggregate_op.register_autograd(_backward, setup_context=_setup_context)


def _many(sources) -> bool:
    """Whether a site's sources take the many kernels: more than AGG_HOLD, those after the first of one dtype."""
    return len(sources) > AGG_HOLD and len({v.dtype for v in sources[1:]}) == 1


# Each site's table of offsets, by its offsets and device: in a training loop the allocator hands each site the same
# addresses micro-batch after micro-batch, so that a table is made and copied once, not at every call (a site's
# call then costs the host a lookup, and the stream no copy).
_TABLES: dict[tuple, tuple[torch.Tensor, bool]] = {}
_TABLES_MAX = 4096


def _table(like: torch.Tensor, *lists: list[torch.Tensor], memo: dict | None = _TABLES) -> tuple[torch.Tensor, bool]:
    """Each list's tensors' offsets from the list's first, in elements (a list has one dtype), one list after the other,
    as int64 on like's device (on CUDA copied from pinned memory, without waiting for it; kept in memo, None: not);
    and whether all are multiples of 8 elements (16 bytes or more)."""
    gaps = tuple((t.data_ptr() - ts[0].data_ptr(), t.element_size()) for ts in lists for t in ts)
    key = (like.device, gaps)
    if memo is not None and key in memo:
        return memo[key]
    table = torch.tensor([gap // size for gap, size in gaps], dtype=torch.int64)
    aligned = all(gap % (8 * size) == 0 for gap, size in gaps)
    made = (table.pin_memory().to(like.device, non_blocking=True) if like.is_cuda else table), aligned
    if memo is not None:
        if len(memo) >= _TABLES_MAX:
            memo.clear()
        memo[key] = made
    return made


def _many_launch(M: int, D: int, t: torch.Tensor, tuning: tuple[int, int, int]) -> tuple[int, dict, int]:
    """(programs, the many kernels' meta-parameters, tokens a program)."""
    per_sm, warps, stages = tuning
    programs = min(M, per_sm * sm_count(t))
    dc, dl = row_chunks(D)
    meta = dict(G=AGG_GROUP, DC=dc, DL=dl, STAGES=stages, num_warps=row_warps(warps, D))
    return programs, meta, triton.cdiv(M, programs)


@torch.library.custom_op("gptablate::aggregate_many", mutates_args=())
def _aggregate_many_op(sources: list[torch.Tensor], u: torch.Tensor, eps: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    if not all(takes(v) for v in sources):
        return aggregate_many_reference(sources, u, eps)
    none = u.new_zeros(0)
    return _many_forward(sources, u, eps, none, none, False, torch.float32, False)[:2]


def _many_forward(sources: list[torch.Tensor], u: torch.Tensor, eps: float, weight: torch.Tensor, bias: torch.Tensor,
                  center: bool, dtype: torch.dtype, scores: bool
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The many forward kernel's launch: (h, lse, y = N(h) in dtype, the norm's (2, M) means and 1/stds, each
    source's score (K, M)). weight empty: no norm (y and the means empty); bias empty: none; scores False: none kept
    (empty)."""
    norm = weight.numel() > 0
    none = lambda dtype: sources[0].new_zeros(0, dtype=dtype)  # noqa: E731 - outputs not asked for
    M, D = sources[0].shape
    out = torch.empty(M, D, dtype=torch.float32, device=u.device)
    lse = torch.empty(M, dtype=torch.float32, device=u.device)
    y = torch.empty(M, D, dtype=dtype, device=u.device) if norm else none(dtype)
    nstat = torch.empty(2, M, dtype=torch.float32, device=u.device) if norm else none(torch.float32)
    sc = torch.empty(len(sources), M, dtype=torch.float32, device=u.device) if scores else none(torch.float32)
    rest = sources[1:]
    programs, meta, per_program = _many_launch(M, D, u, by_width(AGG_MANY, D)[0])
    table, aligned = _table(u, rest)
    _agg_many_fwd_kernel[(programs,)](sources[0], rest[0], table, len(rest), u, out, lse, weight if norm else u,
                                      bias if bias.numel() else u, y if norm else out, nstat if norm else lse,
                                      sc if scores else lse, M, D, eps, NORM_EPS, programs, per_program,
                                      ALIGNED=aligned, NORM=norm, CENTER=center, HAS_BIAS=bias.numel() > 0,
                                      SCORES=scores, **meta)
    return out, lse, y, nstat, sc


@_aggregate_many_op.register_fake
def _(sources, u, eps):
    M = sources[0].shape[0]
    return sources[0].new_empty(sources[0].shape, dtype=_wide(sources)), sources[0].new_empty(M, dtype=torch.float32)


# The many backward writes into tensors it is given (mutates_args) and returns nothing, where the held one returns its
# gradients. Inductor's code keeps an operation's list of outputs, and so every tensor in it, until the last is taken
# out of it; in attnres full's backward (before it was pulled) u's gradient was taken out at the end, so that every
# site's list would have stayed in memory to the end (seen in the generated code, on the CPU). A custom operation that
# mutates an argument cannot return a list. The held backward keeps its list: written the same way it made attnres
# (block) 6.8 ms slower at 124M (call DZ: 141.87 against 135.06 ms, the same peak memory). attnres full's sites now
# take the pull (below); the many backward serves sites past AGG_HOLD sources elsewhere (mode block with many groups).
@torch.library.custom_op("gptablate::aggregate_many_backward", mutates_args=("dsources", "du"))
def _aggregate_many_backward_op(sources: list[torch.Tensor], u: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                                dout: torch.Tensor, dsources: list[torch.Tensor], du: torch.Tensor, eps: float) -> None:
    if not all(takes(v) for v in sources):
        for into, grad in zip([*dsources, du], aggregate_many_backward_reference(sources, u, out, lse, dout, eps)):
            into.copy_(grad)
        return
    M, D = sources[0].shape
    rest, drest = sources[1:], dsources[1:]
    programs, meta, per_program = _many_launch(M, D, u, by_width(AGG_MANY, D)[1])
    part = torch.empty(programs, D, dtype=torch.float32, device=u.device)
    table, aligned = _table(u, rest, drest)
    _agg_many_bwd_kernel[(programs,)](sources[0], dsources[0], rest[0], drest[0], table, len(rest), u, out, lse, dout,
                                      part, M, D, eps, programs, per_program, ALIGNED=aligned, **meta)
    torch.sum(part, 0, out=du)


def many_backward(sources: list[torch.Tensor], u: torch.Tensor, out: torch.Tensor, lse: torch.Tensor,
                  dout: torch.Tensor, eps: float) -> list[torch.Tensor]:
    """The many kernels' backward: [dv_0, ..., dv_{K-1}, du]."""
    grads = [torch.empty_like(v) for v in sources] + [torch.empty_like(u)]
    _aggregate_many_backward_op(sources, u, out, lse, dout, grads[:-1], grads[-1], eps)
    return grads


def _many_setup_context(ctx, inputs, output):
    sources, u, eps = inputs
    ctx.save_for_backward(u, *output, *sources)
    ctx.mark_non_differentiable(output[1])
    ctx.eps = eps


def _many_backward(ctx, dout, dlse):
    u, out, lse, *sources = ctx.saved_tensors
    *dsources, du = many_backward(sources, u, out, lse, dout.to(u.dtype).contiguous(), ctx.eps)
    return dsources, du, None


_aggregate_many_op.register_autograd(_many_backward, setup_context=_many_setup_context)


# attnres full's backward, pulled (aggregate_pulled): site k of S reads sources v_0..v_k, and v_k's lowest site is k.
# No site returns its gradient for a source below its newest. Each writes its output's gradient ḡ_k (in the sublayers'
# dtype) into row k of a stack of S rows, and log Σ exp(score) and ḡ_k·h_k a token, and its sources' scores (which its
# forward saved), into row k of a second, of S + 2 rows a site: (S, S + 2, M). Each forms its newest source's whole
# gradient from rows k..S-1 (aggregate_pull). Each (site, source) pair then costs one read of the site's gradient;
# summing site by site costs three: the source, the running sum, and its new value.


def scores_reference(sources: list[torch.Tensor], u: torch.Tensor, eps: float) -> torch.Tensor:
    """Each source's score r_k s_k a token, (K, M) in the wide dtype: what the many forward saves for the pull."""
    _, r, s, _ = _stats(sources, u, eps)
    return r * s


def aggregate_pull_reference(v: torch.Tensor, stack: torch.Tensor, stats: torch.Tensor, scores: torch.Tensor,
                             U: torch.Tensor, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """A source's whole gradient from every site that reads it (what the pull kernel computes): v (M, D) the source;
    stack (J, M, D) those sites' output gradients ḡ_j; stats (J, 2, M) their log Σ exp(score) and ḡ_j·h_j a token;
    scores (J, M) v's score r s at each (their forwards'); U (J, D) their u. Returns (dv in v's dtype, b (J, M):
    dscore r of each site, in the wide dtype) with dv = Σ_j p_j ḡ_j + b_j u_j − b_j s_j r² / D · v, and u_j's gradient
    Σ_tokens b_j v."""
    wide = _wide([v, stack, U])
    x, G, U, scores = v.to(wide), stack.to(wide), U.to(wide), scores.to(wide)
    r = torch.rsqrt(x.pow(2).mean(-1) + eps)  # (M,)
    p = torch.exp(scores - stats[:, 0].to(wide))
    b = p * ((G * x).sum(-1) - stats[:, 1].to(wide)) * r
    c = (b * scores).sum(0) * r / x.shape[-1]
    dv = (p[..., None] * G).sum(0) + b.T @ U - c[:, None] * x
    return dv.to(v.dtype), b


@torch.library.custom_op("gptablate::aggregate_pull", mutates_args=("stack", "stats"))
def _aggregate_pull_op(v: torch.Tensor, g: torch.Tensor, lse: torch.Tensor, c: torch.Tensor, scores: torch.Tensor,
                       stack: torch.Tensor, stats: torch.Tensor, U: torch.Tensor, k: int, eps: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """Site k's row of the stacks set to (g, lse, c) (g empty: set already, by the site's norm backward) and to its
    sources' scores (k + 1, M); then aggregate_pull_reference over rows k.. : (dv, b)."""
    row_set = g.numel() == 0
    stats[k, 2:3 + k].copy_(scores)
    if takes(v):
        M, D = v.shape
        v = v.contiguous()
        g, lse, c = (v, stats, stats) if row_set else (g.contiguous(), lse, c)
        dv = torch.empty_like(v)
        b = torch.empty(stack.shape[0] - k, M, dtype=stats.dtype, device=v.device)
        programs, meta, per_program = _pull_launch(M, D, v)
        _agg_pull_block_kernel[(programs,)](v, dv, g, lse, c, stack, stats, U, b, k, stack.shape[0], M, D, eps,
                                            programs, per_program, ROW_SET=row_set, **meta)
        return dv, b
    if not row_set:
        stack[k].copy_(g)
        stats[k, 0].copy_(lse)
        stats[k, 1].copy_(c)
    return aggregate_pull_reference(v, stack[k:], stats[k:, :2], stats[k:, 2 + k], U[k:], eps)


def _pull_launch(M: int, D: int, t: torch.Tensor) -> tuple[int, dict, int]:
    """(programs, the pull kernel's meta-parameters, blocks of BM tokens a program), at AGG_PULL's tuning for the
    width: (programs per SM, warps, stages, BM)."""
    per_sm, warps, stages, bm = by_width(AGG_PULL, D)
    blocks = triton.cdiv(M, bm)
    programs = min(blocks, per_sm * sm_count(t))
    dc, dl = row_chunks(D)
    meta = dict(BM=bm, DC=dc, DL=dl, STAGES=stages, num_warps=row_warps(warps, D))
    return programs, meta, triton.cdiv(blocks, programs)


@_aggregate_pull_op.register_fake
def _(v, g, lse, c, scores, stack, stats, U, k, eps):
    return torch.empty_like(v), stats.new_empty(stack.shape[0] - k, stack.shape[1])


# attnres full's folded walk (AttentionResiduals.walk_final): each site's norm (LayerNorm or RMSNorm, the sublayer's
# own, or the final norm after the top site) applied by the site's aggregation, which returns y = N(h) in the stack's
# dtype (what the sublayer's first matmul reads) and keeps h for its backward; the norm's backward writes site k's rows
# of the stacks itself (_agg_norm_bwd_kernel), and the pull takes them from there.
NORM_EPS = 1e-5  # norms.py's LayerNorm and RMSNorm
# The norm backward's programs per SM, warps (scaled by kernels.row_warps) and stages of its loop over tokens, by width
# (kernels.by_width). 768: the fastest of aggregate_bench.py --norm 25 (61,440 tokens) in call EL, 0.232 ms (1.6
# TB/s); one warp, no stages and the mean and 1/std recomputed, 0.315 ms (call EK). 1,600: at 1.5B's rows (16,384 x
# 1,600, call EP), 0.161 ms, where 768's entry took 0.198.
AGG_NORM = {768: (4, 2, 3), 1600: (8, 1, 3)}


def norm_stats_reference(h: torch.Tensor, center: bool) -> torch.Tensor:
    """(2, M): each row's mean (LayerNorm; 0 for RMSNorm) and 1/std, in h's dtype (addnorm.norm_stats, stacked)."""
    return torch.stack(norm_stats(h, NORM_EPS, center))


def norm_reference(h: torch.Tensor, nstat: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """The norm of h's rows (nstat: norm_stats_reference's) in h's dtype (bias empty: none): the forward's epilogue."""
    y = (h - nstat[0, :, None]) * nstat[1, :, None] * weight.to(h.dtype)
    return y + bias.to(h.dtype) if bias.numel() else y


def norm_backward_reference(h: torch.Tensor, nstat: torch.Tensor, weight: torch.Tensor, dy: torch.Tensor,
                            center: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the gradient of h, of the gain, of the bias) by the rule _agg_norm_bwd_kernel follows, in h's dtype."""
    rstd = nstat[1, :, None]
    xhat, dy = (h - nstat[0, :, None]) * rstd, dy.to(h.dtype)
    gw = dy * weight.to(h.dtype)
    g = gw - xhat * (gw * xhat).mean(-1, keepdim=True)
    if center:
        g = g - gw.mean(-1, keepdim=True)
    return g * rstd, (dy * xhat).sum(0), dy.sum(0)


def site_reference(sources: list[torch.Tensor], u: torch.Tensor, eps: float, weight: torch.Tensor, bias: torch.Tensor,
                   center: bool, dtype: torch.dtype
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What _aggregate_site_op computes, in torch (and where the many kernels do not take the sources)."""
    out, lse = aggregate_many_reference(sources, u, eps)
    scores = scores_reference(sources, u, eps)
    if weight.numel() == 0:  # y and the means empty, as separate tensors (no two outputs of an op may alias)
        return out, lse, out.new_zeros(0, dtype=dtype), out.new_zeros(0), scores
    nstat = norm_stats_reference(out, center)
    return out, lse, norm_reference(out, nstat, weight, bias).to(dtype), nstat, scores


@torch.library.custom_op("gptablate::aggregate_site", mutates_args=())
def _aggregate_site_op(sources: list[torch.Tensor], u: torch.Tensor, eps: float, weight: torch.Tensor,
                       bias: torch.Tensor, center: bool, dtype: torch.dtype
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """attnres full's site forward: _many_forward's outputs, the scores kept."""
    if not all(takes(v) for v in sources):
        return site_reference(sources, u, eps, weight, bias, center, dtype)
    return _many_forward(sources, u, eps, weight, bias, center, dtype, True)


@_aggregate_site_op.register_fake
def _(sources, u, eps, weight, bias, center, dtype):
    (M, D), wide, norm = sources[0].shape, _wide(sources), weight.numel() > 0
    return (sources[0].new_empty((M, D), dtype=wide), sources[0].new_empty(M, dtype=torch.float32),
            sources[0].new_empty((M, D) if norm else (0,), dtype=dtype),
            sources[0].new_empty((2, M) if norm else (0,), dtype=wide),
            sources[0].new_empty(len(sources), M, dtype=wide))


@torch.library.custom_op("gptablate::aggregate_norm_back", mutates_args=("stack", "stats"))
def _aggregate_norm_back_op(dy: torch.Tensor, h: torch.Tensor, nstat: torch.Tensor, weight: torch.Tensor,
                            lse: torch.Tensor, stack: torch.Tensor, stats: torch.Tensor, k: int, center: bool
                            ) -> torch.Tensor:
    """The norm's backward at site k (h its input, nstat its means and 1/stds, dy its output's gradient): row k of the
    stacks set to (ḡ_k rounded to the stack's dtype; lse, ḡ_k·h). Returns the gain's and the bias's gradients, (2, D)
    in h's dtype."""
    if takes(h) and takes(dy):
        M, D = h.shape
        per_sm, warps, stages = by_width(AGG_NORM, D)
        programs = min(M, per_sm * sm_count(h))
        dc, dl = row_chunks(D)
        part = torch.empty(programs, 2, D, dtype=torch.float32, device=h.device)
        _agg_norm_bwd_kernel[(programs,)](dy, h, nstat, weight, lse, stack, stats, part, k, stack.shape[0], M, D,
                                          programs, triton.cdiv(M, programs), DC=dc, DL=dl, CENTER=center,
                                          STAGES=stages, num_warps=row_warps(warps, D))
        return part.sum(0)
    g, dw, db = norm_backward_reference(h, nstat, weight, dy, center)
    g = g.to(stack.dtype)
    stack[k].copy_(g)
    stats[k, 0].copy_(lse)
    stats[k, 1].copy_((g.to(h.dtype) * h).sum(-1))
    return torch.stack((dw, db))


@_aggregate_norm_back_op.register_fake
def _(dy, h, nstat, weight, lse, stack, stats, k, center):
    return h.new_empty(2, h.shape[1])


class _Pulled(torch.autograd.Function):
    """attnres full's site k: its output, and (below the top site) two tokens that hold no memory (a zero expanded to
    the stacks' shapes) whose gradients are the stacks, so that they reach the site below through autograd, which
    orders the sites, and a compiled graph keeps each write in place. The top site allocates the stacks. With a norm
    (weight not None), the output is y = N(h) in the stack's dtype, and the norm's backward writes site k's rows."""

    @staticmethod
    def forward(ctx, U, eps, k, dtype, center, weight, bias, stack_token, stats_token, *sources):
        D = sources[0].shape[-1]
        rows = [v.reshape(-1, D).contiguous() for v in sources]
        M = rows[0].shape[0]
        none = U.new_zeros(0)
        # the many kernels: one dtype past the first (else the same in torch, as the op's own CPU path)
        site = (site_reference if len(rows) == 1 or len({v.dtype for v in rows[1:]}) > 1
                else _aggregate_site_op)
        out, lse, y, nstat, scores = site(rows, U[k], eps, none if weight is None else weight,
                                          none if bias is None else bias, center, dtype)
        ctx.save_for_backward(U, out, lse, rows[-1], weight, None if weight is None else nstat, scores)
        ctx.eps, ctx.k, ctx.dtype, ctx.below = eps, k, dtype, stack_token is not None
        ctx.center, ctx.has_bias = center, bias is not None
        ctx.shape = sources[-1].shape
        ctx.set_materialize_grads(False)
        S = U.shape[0]
        result = (out if weight is None else y).view(sources[0].shape)
        if k == S - 1:
            return result
        # the tokens in the stacks' dtypes: autograd casts an output's gradient to the output's dtype, and a token of
        # site 0's source's (the embedding's fp32) had the whole stack copied to fp32 there (2.4 ms a step, call EJ)
        return (result, torch.zeros((), dtype=dtype, device=U.device).expand(S, M, D),
                torch.zeros((), dtype=out.dtype, device=U.device).expand(S, S + 2, M))

    @staticmethod
    def backward(ctx, dout, stack=None, stats=None):
        U, out, lse, v, weight, nstat, scores = ctx.saved_tensors
        k, (M, D), S = ctx.k, out.shape, U.shape[0]
        if k == S - 1:
            stack = torch.empty(S, M, D, dtype=ctx.dtype, device=v.device)
            stats = torch.empty(S, S + 2, M, dtype=out.dtype, device=v.device)
        dweight = dbias = None
        if weight is None:
            g = (torch.zeros_like(out) if dout is None else dout.reshape(M, D)).to(ctx.dtype)
            c = (g.to(out.dtype) * out).sum(-1)  # ḡ·h, ḡ as stacked (rounded): b then sums to 0 over the sources
            dv, b = _aggregate_pull_op(v, g, lse, c, scores, stack, stats, U, k, ctx.eps)
        else:
            dy = torch.zeros(M, D, dtype=ctx.dtype, device=v.device) if dout is None else dout.reshape(M, D)
            sums = _aggregate_norm_back_op(dy.contiguous(), out, nstat, weight, lse, stack, stats, k, ctx.center)
            dweight, dbias = sums[0].to(weight.dtype), (sums[1].to(weight.dtype) if ctx.has_bias else None)
            empty = out.new_zeros(0)
            dv, b = _aggregate_pull_op(v, empty, empty, empty, scores, stack, stats, U, k, ctx.eps)
        # u's gradients of sites k.. from this source. Site 0 reads one source, so its u's gradient is exactly zero (a
        # softmax over one score), as the torch path gives; computed, it would be rounding's ~1e-6, which AdamW would
        # turn into full-size steps of a parameter that changes nothing
        first = max(k, 1)
        dU = torch.cat([torch.zeros_like(U[:first]), (b[first - k:].to(v.dtype) @ v).to(U.dtype)])
        return (dU, None, None, None, None, dweight, dbias, *((stack, stats) if ctx.below else (None, None)),
                *([None] * k), dv.view(ctx.shape))


def aggregate_pulled(sources: list[torch.Tensor], U: torch.Tensor, k: int, tokens: tuple, eps: float,
                     dtype: torch.dtype, norm: tuple | None = None) -> tuple[torch.Tensor, tuple]:
    """attnres full's site k (sources v_0..v_k, U the (S, D) table of every site's u): (its input h, the tokens for
    site k + 1; none at the top site). tokens: site k - 1's, or () at site 0. dtype: the stack's (the sites' output
    gradients rounded to it), the same at every site. norm: None, or the site's norm as (weight, bias or None,
    center: LayerNorm, else RMSNorm), and then the site's input is N(h) in dtype."""
    weight, bias, center = norm if norm is not None else (None, None, False)
    with torch.autocast(sources[0].device.type, enabled=False):
        got = _Pulled.apply(U, float(eps), k, dtype, center, weight, bias, *(tokens or (None, None)), *sources)
    return (got, ()) if k == U.shape[0] - 1 else (got[0], tuple(got[1:]))


def _query(sources, gain, query) -> torch.Tensor:
    """u = gain ⊙ query, in the aggregation's dtype."""
    return (gain * query).to(_wide(sources))


def aggregate(sources: list[torch.Tensor], gain: torch.Tensor, query: torch.Tensor, eps: float) -> torch.Tensor:
    """Σ_k softmax_k(queryᵀ RMSNorm(v_k)) v_k, RMSNorm's gain `gain`, over sources (..., D) of one shape: fp32
    (or wider), autocast or not."""
    shape = sources[0].shape
    D = shape[-1]
    with torch.autocast(sources[0].device.type, enabled=False):
        u = _query(sources, gain, query)
        rows = [v.reshape(-1, D).contiguous() for v in sources]
        out = _aggregate_many_op(rows, u, float(eps))[0] if _many(sources) else _aggregate_op(rows, u, float(eps))
    return out.view(shape)
