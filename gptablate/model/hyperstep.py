"""Hyper-Connections' stream work between two sites as one operation, forward and backward.

Per site k, Hyper-Connections (VARIANTS.md) read x_in = Σ_i A[i,0]·H_i, run the sublayer, and
write H'_j = Σ_i A[i,j+1]·H_i + B_j·out, where (dynamic) A = A_s + s_a·tanh(N(H_i) W_a) and
B = B_s + s_b·tanh(N(H_i) W_b) per token and stream. The streams H are n × D fp32 numbers a
token, n times the baseline's residual stream, so what the step costs is how often they cross
memory. Compiled as written, a 12-layer hyper step took 2.1 times the baseline's: inductor
reads and writes the streams in several kernels a site, and autograd adds up the streams'
gradients from each use.

`hyper_step` does, in one kernel a token at a time with its n streams in registers, site k's
write and site k+1's read: H' from (H, out, A, B); then N(H'), the coefficients A', B' and
x_in' from H'. Its backward, one kernel too, takes the gradients of H', x_in' and (A', B')
and returns those of H, out and (A, B): H' never has two gradients to add, because its only
users are this operation and the next one. The backward forms H' again from H and out, which it
reads anyway, rather than reading it. The first site's read is the same operation without the
write (`has_write=False`); the last site's write and the exit's sum over the streams stay in
torch. Measured on an H100 at the 124M step (docs/performance.md): hyper 2.11× the baseline's step
time before it, 1.80× with its first kernels, 1.48× with these, 1.36-1.39× since they hold a row in parts (below);
hyper static 1.33×.
The model takes it for the dynamic case only: the static one, whose A and B are the same for every
token, takes hyperstatic.py's element-wise kernels (its backward 0.92 ms a site where these take 1.30).

Layout: H (M, n, D) with M = B·T tokens, fp32 (or bf16: arch.hyper.stream_dtype, below); C (M, n, n+2) the
per-token coefficients, A in columns 0..n and B in column n+1. Norms: LayerNorm (`center`) or RMSNorm, their gain
and bias folded into the projection (wt = (g ⊙ W)ᵀ, bw = b W). The forward saves the coefficients'
pre-activations z (not tanh z): the norm's backward needs Σ_d dx̂·x̂ = Σ_j dz_j (z_j − bw_j), which
then costs no sum over the features. The projection's weight gradient is one more pass over H'
(`_hyper_wgrad_kernel`, fp32 FMAs); what the backward leaves to torch is small: sums over tokens.

With the site's own norm (the block's ln_1 or ln_2, LayerNorm or RMSNorm as the streams' norms; `norm` in
hyper_step) the forward writes h = N(x_in') in the autocast dtype and the token's mean and 1/std in place of x_in'
in fp32, and the backward takes dh: it forms x_in' again from H' and C', sums Σ w·dh·x̂ and Σ w·dh over the row it
holds, and keeps the norm's gain and bias gradients as per-program sums. At the 124M step this left the step time as
it was (the kernels' extra time what inductor's norms had cost) and the peak memory 9% lower (calls CL, CM).

With arch.hyper.stream_dtype=bfloat16 the streams H, H' and their gradients are stored in bf16: the kernels load
them into fp32, compute as above and round what they store (everything else stays fp32), halving the bytes that cross
memory; the torch rule does the same arithmetic in fp32 and rounds its stream outputs alike. Two things differ on the
kernels' side: the forward takes a LayerNorm's stream statistics in one pass (forward_kernel says why only there), and
the projection's weight gradient runs on the tensor cores (weight_grad: fp32 sums of exact products, within about 1e-5
of float64 where the fp32 kernel is within 5e-7). With both, hyper's 124M step with bf16 streams went from 1.28-1.29 to
1.24-1.25 times the baseline's (calls GF, GG, GK).

On CUDA with Triton: the kernels below. Elsewhere the same computation in torch
(`hyper_step_reference`, `hyper_step_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .addnorm import add_norm_backward_reference, add_norm_reference, norm_stats
from .kernels import (autocast_dtype, compute_dtype, empties, kernel_op, narrow, row_chunks, sm_count, tanh, tl,
                      triton, use_stream_kernel)

# Tokens per program, and the warps and register cap (maxnreg, None: the compiler's choice) of the
# forward and backward kernels, for a dynamic site and a static one: the fastest of
# scripts/device/hyperstep_bench.py's sweep on the 124M step's streams (61,440 x 4 x 768, one H100). The warps are
# those of rows of up to TUNED_WIDTH features; wider rows launch more (launch_warps).
# The grid is M / tokens programs, many waves of them, so that how many fit on an SM at once (which the
# registers decide) leaves no half-empty last wave: with 4 programs an SM, each looping over its share,
# the backward took 1.91 ms against 1.57 ms at 8 an SM (call P; 3 fit an SM by its registers, so our
# reading is one full wave and one a third full). The layout the compiler picks for a tile
# changes with the warps, and a bad one costs several times: the static backward took 5.4 ms at 4 warps
# and 1.5 ms at 8 (call O). "norm": the dynamic site with its norm folded in (`--norm-only`, call CL: forward 0.924 ms,
# backward 1.850 ms; since the coefficients are loaded as columns and the backward's 2-byte rows narrowed, forward
# 0.909 and backward 1.424 ms, call CW; since the row is held in parts (768 features: 3 parts of 2 chunks on 2 warps),
# forward 0.723 and backward 1.138 ms, the fastest of `hyperstep_ab.py --warps 1,2,4`, call EX). The dynamic case
# without the norm takes the same shapes, not swept since the parts.
TUNING = {
    True: (16, (2, 168), (2, None)),  # dynamic
    False: (4, (4, 128), (8, 128)),  # static
    "norm": (16, (2, 168), (2, None)),  # dynamic, with the site's norm folded in
}
# Software pipelining of the token loops (tl.range's num_stages), forward and backward: 1, none. The norm case's
# backward took 1.597 ms at 2 stages against 1.858 at 1 (2.27 at 3; `hyperstep_bench.py --stages-only`, call CQ); in
# parts on 2 warps (call EX) the forward 0.723 ms at 2 stages (cap 168) against 0.763 at 1, the backward 1.138 against
# 1.569. One setting for both cases: the model takes the norm case.
STAGES = (2, 2)
# The same with bf16 streams: the forward with its one-pass statistics took 1.206 ms at 2 stages and 0.527 at 1 (cap
# 168; the code before, two passes, 0.576 and 0.552; `hyperstep_ab.py --streams bf16 --warps 2`, call GE).
STAGES_BF16 = (1, 2)


def _written(Hk, out, Ck):
    """Site k's write H'_j = Σ_i A[i, j+1] H_i + B_j out, in Hk's dtype."""
    n = Hk.shape[1]
    return (Ck[:, :, 1:n + 1, None] * Hk[:, :, None, :]).sum(1) + Ck[:, :, n + 1, None] * out[:, None, :].to(Hk.dtype)


def hyper_step_reference(Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps: float, has_write: bool, dynamic: bool,
                         center: bool, h_dtype: torch.dtype):
    """(H1, y, C1, z, mean, rstd, nmean, nrstd) in torch, z the coefficients' pre-activations; differentiable, the
    tests' oracle. y is x_in, or with the site's norm (nw not empty) h = N(x_in) in h_dtype, its per-token mean and
    1/std in nmean and nrstd (else empty)."""
    n = Hk.shape[1]
    H1 = _written(Hk, out, Ck) if has_write else Hk.clone()
    M = H1.shape[0]
    if dynamic:
        mean, rstd = norm_stats(H1, eps, center)
        xhat = (H1 - mean[..., None]) * rstd[..., None]
        z = xhat @ wt.t() + bw  # (M, n, n+2)
        t = torch.tanh(z)
        C1 = torch.cat((a_s + s[0] * t[..., :n + 1], (b_s + s[1] * t[..., n + 1])[..., None]), dim=-1)
    else:
        mean, rstd, z = H1.new_zeros(0), H1.new_zeros(0), H1.new_zeros(0)  # none for a static site
        C1 = torch.cat((a_s, b_s[:, None]), dim=-1).expand(M, n, n + 2).contiguous()
    x_in = (C1[:, :, 0, None] * H1).sum(1)
    if not nw.numel():
        return H1, x_in, C1, z, mean, rstd, H1.new_zeros(0), H1.new_zeros(0)
    _, h, nmean, nrstd = add_norm_reference(x_in, None, None, nw, nb, eps, False, center, h_dtype)
    return H1, h, C1, z, mean, rstd, nmean, nrstd


def hyper_step_backward_reference(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx, dC1, has_write: bool,
                                  dynamic: bool, center: bool, norm=None):
    """(dHk, d_out, dCk, dz, dCt) by hand: what the backward kernel computes. With norm = (nmean, nrstd, nw), dx is the
    gradient of h = N(x_in) and the result has a sixth entry, the norm's gain and bias gradients (2, D)."""
    n = H1.shape[1]
    if norm is not None:
        nmean, nrstd, nw = norm
        x_in = (C1[:, :, 0, None] * H1).sum(1)  # again from H' and C', as the kernel forms it
        dx, _, d_weight, d_bias, _ = add_norm_backward_reference(x_in, nmean, nrstd, nw, None, dx, False, center, None)
        return (*hyper_step_backward_reference(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx, dC1, has_write,
                                               dynamic, center), torch.stack((d_weight, d_bias)))
    dA0 = (H1 * dx[:, None, :]).sum(-1)  # (M, n)
    dCt = dC1.clone()
    dCt[:, :, 0] += dA0
    dHt = dH1 + C1[:, :, 0, None] * dx[:, None, :]
    dz = None
    if dynamic:
        scale = torch.cat((s[0].expand(n + 1), s[1].expand(1)))
        dz = dCt * scale * (1 - t * t)
        xhat = (H1 - mean[..., None]) * rstd[..., None]
        dxhat = dz @ wt  # (M, n, D)
        g = dxhat - xhat * (dxhat * xhat).mean(-1, keepdim=True)
        if center:
            g = g - dxhat.mean(-1, keepdim=True)
        dHt = dHt + g * rstd[..., None]
    if not has_write:
        return dHt, None, None, dz, dCt
    d_out = (Ck[:, :, n + 1, None] * dHt).sum(1)
    dHk = (Ck[:, :, 1:n + 1, None] * dHt[:, None, :, :]).sum(2)  # dH_i = Σ_j A[i,j+1] dHt_j
    dCk = torch.zeros_like(Ck)
    dCk[:, :, 1:n + 1] = torch.einsum("mid,mjd->mij", Hk, dHt)  # <H_i, dHt_j>
    dCk[:, :, n + 1] = (dHt * out[:, None, :].to(H1.dtype)).sum(-1)
    return dHk, d_out.to(out.dtype), dCk, dz, dCt


if triton is not None:
    # Layout of a token's streams in a program: P parts of the row, each a (NP, DC, DL) tile, stream x feature
    # chunk x feature in the chunk (DL = 128: a warp's 32 lanes x 4; DC = the warps, one chunk each), held as a tuple.
    # A reduction over the features adds the parts element-wise in each thread, then reduces once within each warp
    # (over DL) and once across warps (over DC); the across-warps step is a trip through shared memory and a barrier,
    # so the kernels gather every feature sum a step needs into one (NP, DC, SP) tile of slots and reduce it once. The
    # first version reduced each sum on its own: 78 barriers a token forward (compiled for sm_90), 210 registers a
    # thread, 1.1 TB/s. Until call EX the row was one tile of a power of two of chunks: 768 features were 8 chunks on 4
    # warps, 2 of them masked and paid for in full (a token cost the same at 768 and 1,024 features, call CU). In parts
    # a row pays only for the chunks it has: 768 features are 3 parts on 2 warps. Compiled for sm_90
    # (kernel_resources.py), each warp's code is 2,544 and 3,648 instructions (forward, backward; the token loop is
    # nearly all of it) where the one tile on 4 warps was 2,288 and 3,088: a token issues about 2 x 2,544 warp
    # instructions forward where it issued 4 x 2,288.

    @triton.jit
    def _slot(x, k, kk):
        """Slot k of a (NP, 1, SP) tile of per-stream values: (NP, 1, 1)."""
        return tl.sum(tl.where(kk == k, x, 0.0), axis=2, keep_dims=True)

    @triton.jit
    def _column(ck_ptr, c0, ic, i, N: tl.constexpr, J: tl.constexpr):
        """A[i, j+1] for the streams j = ic, (NP, 1, 1): stream i's row of site k's write, loaded as the streams' column
        (picking it out of a loaded (NP, 1, SP) tile with _slot cost a reduction across lanes)."""
        return tl.load(ck_ptr + c0 + i * J + 1 + ic, mask=ic < N, other=0.0)

    @triton.jit
    def _put(slots, k, kk, x):
        """Slots with slot k set to x's partial sum over the features of each chunk (over DL; within a warp)."""
        return tl.where(kk == k, tl.sum(x, axis=2, keep_dims=True), slots)

    @triton.jit
    def _feature_sum(x):
        """Σ over the features of each stream of a (NP, DC, DL) tile: (NP, 1, 1)."""
        return tl.sum(tl.sum(x, axis=2, keep_dims=True), axis=1, keep_dims=True)

    @triton.jit
    def _tile(N: tl.constexpr, NP: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr, SP: tl.constexpr,
              EVEN: tl.constexpr):
        """Streams ic (NP, 1, 1), the first part's features d (1, DC, DL), slots kk (1, 1, SP), and the streams' mask
        (each part's feature masks: _part). EVEN: the streams fill the tile and the row its parts (124M's 4 x 768), so
        that the masks are constants the compiler drops, with the selects and predicates they cost."""
        ic = tl.arange(0, NP)[:, None, None]
        d = tl.arange(0, DC)[None, :, None] * DL + tl.arange(0, DL)[None, None, :]
        kk = tl.arange(0, SP)[None, None, :]
        if EVEN:
            imask = tl.full([NP, 1, 1], 1, tl.int1)
        else:
            imask = ic < N
        return ic, d, kk, imask

    @triton.jit
    def _coefficient_scale(s_ptr, bw_ptr, kk, N: tl.constexpr, J: tl.constexpr):
        """A dynamic site's s_a (columns 0..N) or s_b (column N+1), and the projection's bias bw, over the slots."""
        return tl.where(kk < N + 1, tl.load(s_ptr), tl.load(s_ptr + 1)), tl.load(bw_ptr + kk, mask=kk < J, other=0.0)

    @triton.jit
    def _nth_token(it, n_programs, M):
        """This program's token in the loop's iteration `it`, and whether it is a token of its own: past the last one
        (a grid that does not divide M) the last token again, its values written twice alike. No branch, so that
        the loop's loads can be pipelined (STAGES)."""
        m = tl.program_id(0) + it * n_programs
        return tl.minimum(m, M - 1), m < M

    @triton.jit
    def _token(m, D, N: tl.constexpr, J: tl.constexpr):
        """Token m as int64, and where its streams (m·N·D) and its coefficients (m·N·J) start."""
        m64 = m.to(tl.int64)
        return m64, m64 * N * D, m64 * N * J

    @triton.jit
    def _write(hk_ptr, out_ptr, ck_ptr, m64, row0, c0, D, ic, d, dmask, hmask, N: tl.constexpr, J: tl.constexpr,
               NARROW: tl.constexpr):
        """Site k's write of token m64 (streams at row0, coefficients at c0): H'_j = Σ_i A[i, j+1] H_i + B_j out,
        a (NP, DC, DL) tile. The backward addresses its 2-byte rows (out, dh, d_out) through kernels.narrow: 1.58 → 1.43
        ms with the coefficients loaded as columns (call CV). The forward does not (NARROW False): narrowed, its store
        of H' left shared memory but it ran slower at every register cap (0.92-0.99 against 0.85-0.91 ms, CU, CV)."""
        b = tl.load(ck_ptr + c0 + ic * J + (N + 1), mask=ic < N, other=0.0)  # B_j
        h = b * tl.load(out_ptr + m64 * D + (narrow(d) if NARROW else d), mask=dmask, other=0.0).to(tl.float32)
        for i in tl.static_range(N):
            h += _column(ck_ptr, c0, ic, i, N, J) * tl.load(hk_ptr + row0 + i * D + d, mask=dmask,
                                                            other=0.0).to(tl.float32)
        return tl.where(hmask, h, 0.0)

    @triton.jit
    def _part(d0, p, D, imask, DC: tl.constexpr, DL: tl.constexpr, EVEN: tl.constexpr):
        """Part p of a row (P parts of DC chunks of DL features, the first at d0): its features d (1, DC, DL) and its
        masks, of the features and of the streams' tile (constants if EVEN, see _tile)."""
        d = d0 + p * (DC * DL)
        if EVEN:
            dmask = tl.full([1, DC, DL], 1, tl.int1)
        else:
            dmask = d < D
        return d, dmask, imask & dmask

    @triton.jit
    def _total(parts, P: tl.constexpr):
        """The element-wise sum of a row's P parts: what a sum over its features reduces, once."""
        acc = parts[0]
        for p in tl.static_range(1, P):
            acc += parts[p]
        return acc

    @triton.jit
    def _products(a, b, P: tl.constexpr):
        """The element-wise sum of the products of two rows' P parts, a[p]·b[p]: what Σ over the features of a·b
        reduces, once."""
        acc = a[0] * b[0]
        for p in tl.static_range(1, P):
            acc += a[p] * b[p]
        return acc

    @triton.jit
    def _centred(parts, rows, d0, D, P: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr, EVEN: tl.constexpr):
        """A row's parts less their mean over the features (for each row of the tile), the lanes past D and outside
        `rows` 0: (the parts, the mean)."""
        mean = _feature_sum(_total(parts, P)) / D
        centred = ()
        for p in tl.static_range(P):
            d, dmask, keep = _part(d0, p, D, rows, DC, DL, EVEN)
            centred = centred + (tl.where(keep, parts[p] - mean, 0.0),)
        return centred, mean

    @triton.jit
    def _hyper_fwd_kernel(hk_ptr, out_ptr, ck_ptr, wt_ptr, bw_ptr, s_ptr, as_ptr, bs_ptr, nw_ptr, nb_ptr,
                          h1_ptr, y_ptr, c1_ptr, z_ptr, mean_ptr, rstd_ptr, nmean_ptr, nrstd_ptr,
                          M, D, eps, n_programs, tokens_per_program,
                          N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr,
                          P: tl.constexpr, SP: tl.constexpr, HAS_WRITE: tl.constexpr, DYNAMIC: tl.constexpr,
                          CENTER: tl.constexpr, NORM: tl.constexpr, HAS_BIAS: tl.constexpr, FWD_STAGES: tl.constexpr,
                          EVEN: tl.constexpr, ONE_PASS: tl.constexpr):
        # ONE_PASS (bf16 streams, a LayerNorm's streams): the streams' mean, Σ h² and Σ h·w_j in one reduction across
        # warps, the variance as E[h²] - mean² (see forward_kernel)
        # every name bound, none `_`: Triton 3.6 took a `_` rebound in the token loop (to masks of another shape) for a
        # loop-carried variable whose type changed, and failed (call EX)
        ic, d0, kk, imask = _tile(N, NP, DC, DL, SP, EVEN)
        jmask = imask & (kk < J)
        # the site's constants in C's layout (stream i, column j): A_s in columns 0..N, B_s in N+1
        const = tl.load(as_ptr + ic * (N + 1) + kk, mask=imask & (kk < N + 1), other=0.0)
        const = tl.where(kk == N + 1, tl.load(bs_ptr + ic + 0 * kk, mask=imask, other=0.0), const)
        if DYNAMIC:
            scale, bw = _coefficient_scale(s_ptr, bw_ptr, kk, N, J)
        if ONE_PASS:  # Σ_d w_j over the slots, once a program: the projection of H' - mean is Σ h·w_j - mean·Σ w_j
            wslots = tl.zeros([1, DC, SP], tl.float32)
            for j in tl.static_range(J):
                wacc = tl.zeros([1, DC, DL], tl.float32)
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    wacc += tl.load(wt_ptr + j * D + d, mask=dmask, other=0.0)
                wslots = _put(wslots, j, kk, wacc)
            wsum = tl.sum(wslots, axis=1, keep_dims=True)
        for it in tl.range(0, tokens_per_program, num_stages=FWD_STAGES):
            m, valid = _nth_token(it, n_programs, M)
            m64, row0, c0 = _token(m, D, N, J)
            hs = ()  # the token's streams H', part by part
            for p in tl.static_range(P):
                d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                if HAS_WRITE:
                    h = _write(hk_ptr, out_ptr, ck_ptr, m64, row0, c0, D, ic, d, dmask, hmask, N, J, False)
                else:
                    h = tl.load(hk_ptr + row0 + ic * D + d, mask=hmask, other=0.0).to(tl.float32)
                tl.store(h1_ptr + row0 + ic * D + d, h, mask=hmask)  # rounded to the streams' dtype
                hs = hs + (h,)
            shift = tl.zeros([NP, 1, 1], tl.float32)  # H' = hs + shift
            mean = shift  # the streams' means, where a LayerNorm's: H' less them is hs less (mean - shift)
            if DYNAMIC:
                if CENTER and not ONE_PASS:  # from here on the parts are H' - mean, and H' itself their sum with it
                    hs, shift = _centred(hs, imask, d0, D, P, DC, DL, EVEN)
                    mean = shift
                # slots 0..J-1: Σ xc·w_j; slot J: Σ xc²; (ONE_PASS) slot J+1: Σ h; one reduction across warps for all
                slots = _put(tl.zeros([NP, DC, SP], tl.float32), J, kk, _products(hs, hs, P))
                if CENTER and ONE_PASS:
                    slots = _put(slots, J + 1, kk, _total(hs, P))
                for j in tl.static_range(J):
                    acc = tl.zeros([NP, DC, DL], tl.float32)
                    for p in tl.static_range(P):
                        d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                        acc += hs[p] * tl.load(wt_ptr + j * D + d, mask=dmask, other=0.0)
                    slots = _put(slots, j, kk, acc)
                sums = tl.sum(slots, axis=1, keep_dims=True)  # (NP, 1, SP)
                if CENTER and ONE_PASS:
                    mean = _slot(sums, J + 1, kk) / D
                    rstd = 1.0 / tl.sqrt(tl.maximum(_slot(sums, J, kk) / D - mean * mean, 0.0) + eps)
                    z = (sums - mean * wsum) * rstd + bw
                else:
                    rstd = 1.0 / tl.sqrt(_slot(sums, J, kk) / D + eps)
                    z = sums * rstd + bw
                c = const + scale * tanh(z)
                tl.store(z_ptr + c0 + ic * J + kk, z, mask=jmask)
                tl.store(mean_ptr + m64 * N + ic, mean, mask=imask)
                tl.store(rstd_ptr + m64 * N + ic, rstd, mask=imask)
            else:
                c = const
            tl.store(c1_ptr + c0 + ic * J + kk, c, mask=jmask)
            a0 = _slot(c, 0, kk)
            # x_in' = Σ_i A'[i, 0] H'_i, part by part, the shift's share Σ_i A'[i, 0] shift_i added once a token. With
            # the site's LayerNorm and the streams' means at hand (dynamic), x_in' less its mean is Σ_i A'[i, 0]
            # (H'_i - mean_i): no sum over the features for it
            centre: tl.constexpr = NORM and CENTER and DYNAMIC
            x0 = tl.sum(a0 * shift, axis=0, keep_dims=True)
            if centre:
                xm = tl.sum(a0 * mean, axis=0, keep_dims=True)  # x_in''s mean
                x0 = x0 - xm
            xs = ()
            for p in tl.static_range(P):
                d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                xs = xs + (tl.where(dmask, tl.sum(a0 * hs[p], axis=0, keep_dims=True) + x0, 0.0),)
            if NORM:  # the site's own norm of x_in' (its input h), over the row this program holds
                if not centre:  # (where centre, xs is x_in' - xm already)
                    if CENTER:
                        xs, xm = _centred(xs, tl.full([1, 1, 1], 1, tl.int1), d0, D, P, DC, DL, EVEN)
                    else:
                        xm = tl.zeros([1, 1, 1], tl.float32)
                xr = 1.0 / tl.sqrt(_feature_sum(_products(xs, xs, P)) / D + eps)
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    hn = xs[p] * xr * tl.load(nw_ptr + d, mask=dmask, other=0.0)
                    if HAS_BIAS:
                        hn += tl.load(nb_ptr + d, mask=dmask, other=0.0)
                    tl.store(y_ptr + m64 * D + d, hn.to(y_ptr.dtype.element_ty), mask=dmask)
                tl.store(nmean_ptr + m64 + 0 * ic, xm + 0.0 * ic, mask=ic == 0)
                tl.store(nrstd_ptr + m64 + 0 * ic, xr + 0.0 * ic, mask=ic == 0)
            else:
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    tl.store(y_ptr + m64 * D + d, xs[p], mask=dmask)

    @triton.jit
    def _hyper_bwd_kernel(hk_ptr, out_ptr, ck_ptr, wt_ptr, bw_ptr, wsum_ptr, s_ptr, h1_ptr, c1_ptr, z_ptr, mean_ptr,
                          rstd_ptr, dh1_ptr, dx_ptr, dc1_ptr, nw_ptr, nmean_ptr, nrstd_ptr,
                          dhk_ptr, dout_ptr, dck_ptr, dz_ptr, dct_ptr, wpart_ptr,
                          M, D, n_programs, tokens_per_program,
                          N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr,
                          P: tl.constexpr, SP: tl.constexpr, HAS_WRITE: tl.constexpr, DYNAMIC: tl.constexpr,
                          CENTER: tl.constexpr, NORM: tl.constexpr, BWD_STAGES: tl.constexpr, EVEN: tl.constexpr):
        ic, d0, kk, imask = _tile(N, NP, DC, DL, SP, EVEN)
        jmask = imask & (kk < J)
        if DYNAMIC:
            scale, bw = _coefficient_scale(s_ptr, bw_ptr, kk, N, J)
            wsum = tl.load(wsum_ptr + kk, mask=kk < J, other=0.0)  # Σ_d w_j
        # with the site's norm: this program's share of its gain's and bias's gradients, Σ dh·x̂ and Σ dh, by part
        acc_dw = ()
        acc_db = ()
        for p in tl.static_range(P):
            acc_dw = acc_dw + (tl.zeros([1, DC, DL], tl.float32),)
            acc_db = acc_db + (tl.zeros([1, DC, DL], tl.float32),)
        for it in tl.range(0, tokens_per_program, num_stages=BWD_STAGES):
            m, valid = _nth_token(it, n_programs, M)  # valid: not a repeat, for the norm's per-program sums
            m64, row0, c0 = _token(m, D, N, J)
            coff = c0 + ic * J + kk
            a0 = tl.load(c1_ptr + c0 + ic * J, mask=imask, other=0.0)  # A'[i, 0]
            hs = ()  # H', part by part
            dxs = ()  # the gradient of x_in' (with the norm: of h)
            for p in tl.static_range(P):
                d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                if HAS_WRITE:  # H' again from H and out, which the backward reads anyway: one read of the streams less
                    h = _write(hk_ptr, out_ptr, ck_ptr, m64, row0, c0, D, ic, d, dmask, hmask, N, J, True)
                else:
                    h = tl.load(h1_ptr + row0 + ic * D + d, mask=hmask, other=0.0).to(tl.float32)
                hs = hs + (h,)
                dxs = dxs + (tl.load(dx_ptr + m64 * D + narrow(d), mask=dmask, other=0.0).to(tl.float32),)
            if NORM:  # x_in' again from H' and C'; dx = rstd·(w·dh - x̂·Σ w·dh·x̂ / D - Σ w·dh / D)
                nmean = tl.load(nmean_ptr + m64)
                nrstd = tl.load(nrstd_ptr + m64)
                xhats = ()
                gws = ()
                dws = ()
                dbs = ()
                s_gx = tl.zeros([1, DC, DL], tl.float32)
                s_g = tl.zeros([1, DC, DL], tl.float32)
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    xhat = tl.where(dmask, (tl.sum(a0 * hs[p], axis=0, keep_dims=True) - nmean) * nrstd, 0.0)
                    gw = dxs[p] * tl.load(nw_ptr + d, mask=dmask, other=0.0)
                    dws = dws + (acc_dw[p] + tl.where(valid, dxs[p] * xhat, 0.0),)
                    dbs = dbs + (acc_db[p] + tl.where(valid, dxs[p], 0.0),)
                    s_gx += gw * xhat
                    s_g += gw
                    xhats = xhats + (xhat,)
                    gws = gws + (gw,)
                acc_dw = dws
                acc_db = dbs
                sums = _put(_put(tl.zeros([1, DC, SP], tl.float32), 0, kk, s_gx), 1, kk, s_g)
                sums = tl.sum(sums, axis=1, keep_dims=True) / D  # (1, 1, SP)
                dxs = ()
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    dx = gws[p] - xhats[p] * _slot(sums, 0, kk)
                    if CENTER:
                        dx -= _slot(sums, 1, kk)
                    dxs = dxs + (tl.where(dmask, dx * nrstd, 0.0),)
            hdx = _feature_sum(_products(hs, dxs, P))  # Σ_d H'_i·dx: dA'[i, 0]
            dct = tl.load(dc1_ptr + coff, mask=jmask, other=0.0) + tl.where(kk == 0, hdx, 0.0)
            tl.store(dct_ptr + coff, dct, mask=jmask)
            if DYNAMIC:
                z = tl.load(z_ptr + coff, mask=jmask, other=0.0)
                t = tanh(z)
                dz = tl.where(jmask, dct * scale * (1.0 - t * t), 0.0)
                tl.store(dz_ptr + coff, dz, mask=jmask)
                rstd = tl.load(rstd_ptr + m64 * N + ic, mask=imask, other=0.0)
                mean = tl.load(mean_ptr + m64 * N + ic, mask=imask, other=0.0)
                # the norm's backward needs Σ dxhat·xhat = Σ_j dz_j (z_j - bw_j) and Σ dxhat = Σ_j dz_j Σ w_j: no
                # feature sums. Its share of dH', rstd (dxhat - x̂ gx - g0), is taken as Σ_j (rstd dz_j) w_j - k1 H' +
                # k0 with the token's constants k1 = rstd² gx and k0 = k1 mean - rstd g0: x̂ is not formed. (k1 H' and
                # k1 mean cancel as far as a stream's mean exceeds its spread: by our arithmetic, at mean/std = 15,
                # about 1e-6 of the term.) With dH' formed below, the backward took 0.832 ms where it took 0.856 with
                # bf16 streams, 1.074 where 1.086 with fp32 (call GL; compiled for sm_90 with bf16 streams, 2,927
                # instructions a token's loop where 2,983, and no stack where 80 bytes)
                gx = tl.sum(dz * (z - bw), axis=2, keep_dims=True) / D
                k1 = rstd * rstd * gx
                k0 = k1 * mean
                if CENTER:
                    k0 -= rstd * tl.sum(dz * wsum, axis=2, keep_dims=True) / D
                dzr = dz * rstd
            # the gradient of H', part by part, each part's H' used for the last time here (H' and dH' are not both
            # held whole)
            dhts = ()
            for p in tl.static_range(P):
                d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                dht = tl.load(dh1_ptr + row0 + ic * D + d, mask=hmask, other=0.0).to(tl.float32) + a0 * dxs[p]
                if DYNAMIC:
                    acc = dht + k0
                    for j in tl.static_range(J):
                        acc += _slot(dzr, j, kk) * tl.load(wt_ptr + j * D + d, mask=dmask, other=0.0)
                    acc -= k1 * hs[p]
                    dht = tl.where(hmask, acc, dht)
                dhts = dhts + (dht,)
            if HAS_WRITE:
                b = tl.load(ck_ptr + c0 + ic * J + (N + 1), mask=imask, other=0.0)  # B_j
                # slots[j, :, i+1]: <H_i, dht_j> (dA[i, j+1]); slots[j, :, N+1]: <dht_j, out> (dB_j)
                acc = tl.zeros([NP, DC, DL], tl.float32)
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    d_out = tl.sum(b * dhts[p], axis=0, keep_dims=True)
                    tl.store(dout_ptr + m64 * D + narrow(d), d_out.to(dout_ptr.dtype.element_ty), mask=dmask)
                    acc += dhts[p] * tl.load(out_ptr + m64 * D + narrow(d), mask=dmask, other=0.0).to(tl.float32)
                slots = _put(tl.zeros([NP, DC, SP], tl.float32), N + 1, kk, acc)
                for i in tl.static_range(N):
                    col = _column(ck_ptr, c0, ic, i, N, J)
                    acc = tl.zeros([NP, DC, DL], tl.float32)
                    for p in tl.static_range(P):
                        d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                        acc += dhts[p] * tl.load(hk_ptr + row0 + i * D + d, mask=dmask, other=0.0).to(tl.float32)
                        dhk = tl.sum(col * dhts[p], axis=0, keep_dims=True)  # Σ_j A[i, j+1] dht_j
                        tl.store(dhk_ptr + row0 + i * D + d, dhk, mask=dmask)
                    slots = _put(slots, i + 1, kk, acc)
                sums = tl.sum(slots, axis=1, keep_dims=True)  # (NP, 1, SP)
                # dCk[i, j+1] = sums[j, i+1] (stored transposed), dCk[j, N+1] = sums[j, N+1], dCk[j, 0] = 0
                own = (kk == 0) | (kk == N + 1)
                dck_off = tl.where(own, coff, c0 + (kk - 1) * J + 1 + ic)
                tl.store(dck_ptr + dck_off, tl.where(kk == 0, 0.0, sums), mask=imask & (kk < N + 2))
            else:
                for p in tl.static_range(P):
                    d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                    tl.store(dhk_ptr + row0 + ic * D + d, dhts[p], mask=hmask)
        if NORM:  # (programs, 2, D)
            for p in tl.static_range(P):
                d, dmask, hmask = _part(d0, p, D, imask, DC, DL, EVEN)
                tl.store(wpart_ptr + tl.program_id(0) * 2 * D + d, acc_dw[p], mask=dmask)
                tl.store(wpart_ptr + tl.program_id(0) * 2 * D + D + d, acc_db[p], mask=dmask)

    @triton.jit
    def _hyper_wgrad_kernel(h1_ptr, dz_ptr, mean_ptr, rstd_ptr, part_ptr, R, D, rows_per_program,
                            J: tl.constexpr, JP: tl.constexpr, BR: tl.constexpr, BD: tl.constexpr,
                            STAGES: tl.constexpr):
        """This program's share of the projection's weight gradient, Σ_r dz[r, j]·x̂[r, d] over its rows r (a token's
        stream each) for features d in its block: x̂ = (H' - mean)·rstd formed from H' and the stats, in fp32 FMAs
        into a (BR, JP, BD) tile summed over its rows at the end; (J, BD) into part[program]. Each step loads BR rows
        of dz as one (BR, JP) tile (column by column, as first written, each column was a pipelined copy of its own;
        no faster or slower that the sweeps could tell, calls FF and FG)."""
        rr = tl.arange(0, BR)[:, None, None]
        jj = tl.arange(0, JP)[None, :, None]
        d = tl.program_id(1) * BD + tl.arange(0, BD)[None, None, :]
        dmask = d < D
        acc = tl.zeros([BR, JP, BD], tl.float32)
        first = tl.program_id(0) * rows_per_program
        for it in tl.range(0, rows_per_program, BR, num_stages=STAGES):
            r = first + it + rr
            live = r < R
            r64 = r.to(tl.int64)
            h = tl.load(h1_ptr + r64 * D + d, mask=live & dmask, other=0.0).to(tl.float32)
            xhat = (h - tl.load(mean_ptr + r64, mask=live, other=0.0)) * tl.load(rstd_ptr + r64, mask=live, other=0.0)
            acc += tl.load(dz_ptr + r64 * J + jj, mask=live & (jj < J), other=0.0) * xhat
        jo = tl.arange(0, JP)[:, None]
        do = tl.program_id(1) * BD + tl.arange(0, BD)[None, :]
        tl.store(part_ptr + (tl.program_id(0) * J + jo) * D + do, tl.sum(acc, axis=0), mask=(jo < J) & (do < D))

    @triton.jit
    def _hyper_wgrad_dot_kernel(h1_ptr, a_ptr, part_ptr, R, D, rows_per_program, K: tl.constexpr, BR: tl.constexpr,
                                BD: tl.constexpr, STAGES: tl.constexpr):
        """bf16 streams: this program's share of Aᵀ H' on the tensor cores (tl.dot, fp32 sums), A (R, K) bf16 and H'
        (R, D) bf16 as stored, over its rows, for features d in its block: (K, BD) into part[program]. weight_grad
        says what A is."""
        kk = tl.arange(0, K)[None, :]
        rr = tl.arange(0, BR)[:, None]
        d = tl.program_id(1) * BD + tl.arange(0, BD)[None, :]
        dmask = d < D
        acc = tl.zeros([K, BD], tl.float32)
        first = tl.program_id(0) * rows_per_program
        for it in tl.range(0, rows_per_program, BR, num_stages=STAGES):
            row = first + it + rr
            live = row < R
            r64 = row.to(tl.int64)
            a = tl.load(a_ptr + r64 * K + kk, mask=live, other=0.0)
            h = tl.load(h1_ptr + r64 * D + d, mask=live & dmask, other=0.0)
            acc = tl.dot(tl.trans(a), h, acc)
        ko = tl.arange(0, K)[:, None]
        tl.store(part_ptr + (tl.program_id(0) * K + ko) * D + d, acc, mask=dmask)


def _launch_shape(Hk: torch.Tensor, dynamic: bool, norm: bool = False) -> dict:
    M, n, D = Hk.shape
    tokens, fwd, bwd = TUNING["norm" if norm and dynamic else dynamic]
    programs = triton.cdiv(M, tokens)
    dl = row_chunks(D)[1]
    return dict(grid=(programs,), programs=programs, per_program=triton.cdiv(M, programs),
                N=n, NP=triton.next_power_of_2(n), J=n + 2, DL=dl, SP=triton.next_power_of_2(n + 3),
                fwd=_tuning(*fwd, n, D, dl, PARTS[0]), bwd=_tuning(*bwd, n, D, dl, PARTS[1]))


def _tuning(warps: int, maxnreg: int | None, n: int, D: int, dl: int, parts: int) -> dict:
    """A kernel's launch options and row layout from TUNING's (warps, register cap): a chunk of DL features a warp
    (DC, the warps) and the row in P parts of DC chunks (launch_warps, at most `parts` past the tuned width); EVEN
    where the n streams and the row fill their tiles, no lane masked."""
    w = launch_warps(warps, D, dl, parts)
    return dict(num_warps=w, DC=w, P=triton.cdiv(D, w * dl), EVEN=n == triton.next_power_of_2(n) and D % (w * dl) == 0,
                **({"maxnreg": maxnreg} if maxnreg else {}))


# The width TUNING's warps were swept at (the 124M step's streams), and past it the most parts of a row a thread of the
# forward and of the backward kernel holds (launch_warps). At 1.5B's 1,600 features (calls EZ, FA, one H100, 16,384
# tokens): the forward 0.517 ms at 4 warps (4 parts), 0.714-0.760 at 8 (2 parts); the backward 0.821 ms at 8, 0.950
# at 4; the code before this layout, one tile of 16 chunks at 8 warps, 0.531 and 0.881 ms.
TUNED_WIDTH = 768
PARTS = (4, 2)


def launch_warps(warps: int, D: int, dl: int = 128, parts: int = 2) -> int:
    """The warps for rows of D features in chunks of dl: TUNING's up to the tuned width; past it doubled until the row
    is at most `parts` parts (a part's tile is a thread's 4 streams x 4 features whatever the warps). At 2 warps,
    1,024 features are 4 parts or 2 at 4 warps, 1,600 features 4 parts at 4 warps or 2 at 8 (448 of them masked)."""
    w = warps
    while D > TUNED_WIDTH and w < 32 and -(-D // (w * dl)) > parts:
        w *= 2
    return w


@torch.library.custom_op("gptablate::hyper_step", mutates_args=())
def _hyper_step_op(Hk: torch.Tensor, out: torch.Tensor, Ck: torch.Tensor, wt: torch.Tensor, bw: torch.Tensor,
                   s: torch.Tensor, a_s: torch.Tensor, b_s: torch.Tensor, nw: torch.Tensor, nb: torch.Tensor,
                   eps: float, has_write: bool, dynamic: bool, center: bool, h_dtype: torch.dtype
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                              torch.Tensor, torch.Tensor]:
    """(H1, y, C1, z, mean, rstd, nmean, nrstd): y is x_in, or with the site's norm (nw not empty) h = N(x_in) in
    h_dtype, whose per-token mean and 1/std are nmean and nrstd (else empty). H1 in the streams' dtype (Hk's: fp32, or
    bf16 with arch.hyper.stream_dtype), the rest in the arithmetic's (compute_dtype)."""
    if not use_stream_kernel(Hk):
        H1, *rest = hyper_step_reference(Hk.to(compute_dtype(Hk)), out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps,
                                         has_write, dynamic, center, h_dtype)
        return (H1.to(Hk.dtype).contiguous(), *(r.contiguous() for r in rest))
    return forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, has_write, dynamic, center, nw, nb, h_dtype)


def stages(H: torch.Tensor) -> tuple[int, int]:
    """The token loops' pipeline stages (forward, backward) for streams of H's dtype."""
    return STAGES_BF16 if H.dtype == torch.bfloat16 else STAGES


def _constexprs(k: dict, has_write: bool, dynamic: bool, center: bool, norm: bool) -> dict:
    return dict(N=k["N"], NP=k["NP"], J=k["J"], DL=k["DL"], SP=k["SP"], HAS_WRITE=has_write,
                DYNAMIC=dynamic, CENTER=center, NORM=norm)


def forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps: float, has_write: bool, dynamic: bool, center: bool,
                   nw=None, nb=None, h_dtype=None):
    """The forward kernel's outputs (H1, y, C1, z, mean, rstd, nmean, nrstd): H1 in the streams' dtype (fp32 or bf16),
    y in h_dtype with the norm, the rest fp32."""
    M, n, D = Hk.shape
    norm = nw is not None and nw.numel() > 0
    f32 = dict(dtype=torch.float32, device=Hk.device)
    H1, C1 = torch.empty_like(Hk), torch.empty(M, n, n + 2, **f32)
    y = torch.empty(M, D, dtype=h_dtype if norm else torch.float32, device=Hk.device)
    z, mean, rstd = (torch.empty(M, n, n + 2, **f32), torch.empty(M, n, **f32), torch.empty(M, n, **f32)
                     ) if dynamic else empties(Hk, 3)
    nmean, nrstd = (torch.empty(M, **f32), torch.empty(M, **f32)) if norm else empties(Hk, 2)
    nw = nw if norm else Hk.new_zeros(0)
    nb = nb if norm and nb is not None and nb.numel() else None
    k = _launch_shape(Hk, dynamic, norm)
    # bf16 streams under a LayerNorm: the streams' statistics in one pass, Σ h and Σ h² in the reduction that takes
    # Σ h·w_j, the variance as E[h²] - mean² (one reduction across warps a token fewer). In fp32 that loses precision as
    # a stream's mean grows against its spread (by our arithmetic, about 1e-4 of rstd at mean/std = 15 and 768
    # features), so fp32 streams keep the two passes; bf16 streams are rounded by 2^-9 of themselves at every site
    one_pass = dynamic and center and Hk.dtype == torch.bfloat16
    consts = {**_constexprs(k, has_write, dynamic, center, norm), "SP": triton.next_power_of_2(n + 3 + one_pass)}
    _hyper_fwd_kernel[k["grid"]](Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nw if nb is None else nb, H1, y, C1, z, mean,
                                 rstd, nmean, nrstd, M, D, eps, k["programs"], k["per_program"], **consts,
                                 HAS_BIAS=nb is not None, FWD_STAGES=stages(Hk)[0], ONE_PASS=one_pass, **k["fwd"])
    return H1, y, C1, z, mean, rstd, nmean, nrstd


@_hyper_step_op.register_fake
def _(Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps, has_write, dynamic, center, h_dtype):
    M, n, D = Hk.shape
    norm = nw.numel() > 0
    small = (M, n, n + 2) if dynamic else (0,)
    ct = dict(dtype=compute_dtype(Hk))
    return (Hk.new_empty(M, n, D), Hk.new_empty(M, D, dtype=h_dtype if norm else ct["dtype"]),
            Hk.new_empty(M, n, n + 2, **ct), Hk.new_empty(small, **ct), Hk.new_empty((M, n) if dynamic else (0,), **ct),
            Hk.new_empty((M, n) if dynamic else (0,), **ct), Hk.new_empty(M if norm else 0, **ct),
            Hk.new_empty(M if norm else 0, **ct))


@torch.library.custom_op("gptablate::hyper_step_backward", mutates_args=())
def _hyper_step_backward_op(Hk: torch.Tensor, out: torch.Tensor, Ck: torch.Tensor, wt: torch.Tensor, bw: torch.Tensor,
                            s: torch.Tensor, H1: torch.Tensor, C1: torch.Tensor, z: torch.Tensor, mean: torch.Tensor,
                            rstd: torch.Tensor, dH1: torch.Tensor, dy: torch.Tensor, dC1: torch.Tensor,
                            nw: torch.Tensor, nmean: torch.Tensor, nrstd: torch.Tensor,
                            has_write: bool, dynamic: bool, center: bool
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                       torch.Tensor]:
    """(dHk, d_out, dCk, dz, dCt, and with the site's norm its gain's and bias's gradients (2, D), else empty).
    dy: the gradient of x_in, or with the norm (nw not empty) of h."""
    norm = nw.numel() > 0
    if not use_stream_kernel(H1):
        ct = compute_dtype(H1)
        Hc = Hk.to(ct)
        # bf16 streams: H' before its rounding, formed again from H and out as the backward kernel forms it
        H1c = _written(Hc, out, Ck) if has_write and H1.dtype != ct else H1.to(ct)
        grads = hyper_step_backward_reference(Hc, out, Ck, wt, s, H1c, C1, torch.tanh(z), mean, rstd,
                                              dH1.to(ct), dy, dC1, has_write, dynamic, center,
                                              (nmean, nrstd, nw) if norm else None)
        dHk, d_out, dCk, dz, dCt = grads[:5]
        dHk = dHk.to(H1.dtype)
        wsums = grads[5] if norm else None
    else:
        dHk, d_out, dCk, dz, dCt, wsums = backward_kernel(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy, dC1,
                                                          has_write, dynamic, center, nw, nmean, nrstd)

    def absent(t):  # an output this case has none of: a fresh empty tensor (outputs may not alias)
        return t if t is not None else H1.new_zeros(0)

    return dHk, absent(d_out), absent(dCk), absent(dz), dCt, absent(wsums)


def backward_kernel(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dx, dC1, has_write: bool, dynamic: bool,
                    center: bool, nw=None, nmean=None, nrstd=None):
    """The backward kernel's outputs (dHk, d_out, dCk, dz, dCt, the norm's sums (2, D); None for a case's absent ones):
    dHk in the streams' dtype (H1's), d_out in out's, the rest fp32. dx: with the norm (nw), the gradient of h."""
    M, n, D = H1.shape
    norm = nw is not None and nw.numel() > 0
    f32 = dict(dtype=torch.float32, device=H1.device)
    dHk = torch.empty_like(H1)
    d_out = torch.empty(M, D, dtype=out.dtype, device=H1.device) if has_write else None
    dCk = torch.empty(M, n, n + 2, **f32) if has_write else None
    dz = torch.empty(M, n, n + 2, **f32) if dynamic else None
    dCt = torch.empty(M, n, n + 2, **f32)
    k = _launch_shape(H1, dynamic, norm)
    wpart = torch.empty(k["programs"], 2, D, **f32) if norm else None
    dummy = dCt
    wsum = wt.sum(1) if dynamic else wt
    _hyper_bwd_kernel[k["grid"]](Hk, out, Ck, wt, bw, wsum, s, H1, C1, z, mean, rstd, dH1, dx, dC1,
                                 nw if norm else dummy, nmean if norm else dummy, nrstd if norm else dummy,
                                 dHk, d_out if has_write else dummy, dCk if has_write else dummy,
                                 dz if dynamic else dummy, dCt, wpart if norm else dummy, M, D, k["programs"],
                                 k["per_program"], **_constexprs(k, has_write, dynamic, center, norm),
                                 BWD_STAGES=stages(H1)[1], **k["bwd"])
    return dHk, d_out, dCk, dz, dCt, wpart.sum(0) if norm else None


@_hyper_step_backward_op.register_fake
def _(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy, dC1, nw, nmean, nrstd, has_write, dynamic, center):
    M, n, D = H1.shape
    ct = dict(dtype=compute_dtype(H1))
    small = H1.new_empty(M, n, n + 2, **ct)
    return (H1.new_empty(M, n, D), out.new_empty(M, D) if has_write else H1.new_empty(0, **ct),
            small if has_write else H1.new_empty(0, **ct),
            H1.new_empty(M, n, n + 2, **ct) if dynamic else H1.new_empty(0, **ct),
            H1.new_empty(M, n, n + 2, **ct), H1.new_empty(2, D, **ct) if nw.numel() else H1.new_empty(0, **ct))


# The weight-gradient kernel's shape: programs an SM (one wave of them, each a share of the rows: a grid of fixed rows a
# program left a last wave part full), rows a step (BR), features a program (BD), warps, pipeline stages.
WGRAD = (4, 2, 512, 4, 3)
# The same for bf16 streams, _hyper_wgrad_dot_kernel (its BR at least 16, tl.dot's least).
WGRAD_DOT = (2, 64, 256, 4, 4)


def hyper_weight_grad_reference(H1, dz, mean, rstd):
    """The projection's weight gradient (J, D), Σ over tokens and streams of dz ⊗ x̂, in torch."""
    M, n, D = H1.shape
    xhat = (H1 - mean[..., None]) * rstd[..., None]
    return dz.reshape(M * n, -1).t() @ xhat.reshape(M * n, D)


@kernel_op("gptablate::hyper_weight_grad")
def _hyper_weight_grad_op(H1: torch.Tensor, dz: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor
                          ) -> torch.Tensor:
    if not use_stream_kernel(H1):
        return hyper_weight_grad_reference(H1.to(compute_dtype(H1)), dz, mean, rstd)
    return weight_grad_kernel(H1, dz, mean, rstd)


def _row_grid(H1, per_sm: int, br: int, bd: int) -> tuple[int, int, int]:
    """(feature blocks, rows a program, programs) of a weight-gradient kernel over H1's M·n rows: one wave of per_sm
    programs an SM, each a share of the rows in steps of br."""
    M, n, D = H1.shape
    blocks = triton.cdiv(D, bd)
    rows = triton.cdiv(triton.cdiv(M * n, max(1, per_sm * sm_count(H1) // blocks)), br) * br
    return blocks, rows, triton.cdiv(M * n, rows)


def weight_grad_kernel(H1, dz, mean, rstd, shape=None):
    """The weight gradient by _hyper_wgrad_kernel, at WGRAD's shape or `shape`: per-program sums, then their sum."""
    M, n, D = H1.shape
    J = dz.shape[-1]
    per_sm, br, bd, warps, stages = shape or WGRAD
    blocks, rows, programs = _row_grid(H1, per_sm, br, bd)
    part = torch.empty(programs, J, D, dtype=torch.float32, device=H1.device)
    torch.library.wrap_triton(_hyper_wgrad_kernel)[(programs, blocks)](
        H1, dz, mean, rstd, part, M * n, D, rows, J=J, JP=triton.next_power_of_2(J), BR=br, BD=bd, STAGES=stages,
        num_warps=warps)
    return part.sum(0)


@kernel_op("gptablate::hyper_weight_grad_dot")
def _hyper_weight_grad_dot_op(H1: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    return weight_grad_dot_kernel(H1, A)


def weight_grad_dot_kernel(H1, A, shape=None):
    """Aᵀ H' (K, D) fp32 by _hyper_wgrad_dot_kernel at WGRAD_DOT's shape or `shape`: per-program sums, then their
    sum. H1 (M, n, D) bf16, A (M·n, K) bf16."""
    M, n, D = H1.shape
    K = A.shape[1]
    per_sm, br, bd, warps, stages = shape or WGRAD_DOT
    blocks, rows, programs = _row_grid(H1, per_sm, br, bd)
    part = torch.empty(programs, K, D, dtype=torch.float32, device=H1.device)
    torch.library.wrap_triton(_hyper_wgrad_dot_kernel)[(programs, blocks)](
        H1, A, part, M * n, D, rows, K=K, BR=br, BD=bd, STAGES=stages, num_warps=warps)
    return part.sum(0)


def weight_grad(H1, dz, mean, rstd, shape=None):
    """The projection's weight gradient (J, D), Σ over tokens and streams of dz ⊗ x̂, as the backward takes it: fp32
    streams (or no kernels), _hyper_weight_grad_op; bf16 streams on the kernels' device, on the tensor cores.

    There, Σ_r a_r (H'_r - mean_r) with a = dz·rstd is formed as Aᵀ H' less Σ_r a_r mean_r: H' as stored (bf16, no x̂
    formed) and A = [hi | lo | 0] (M·n, K) bf16, hi = a rounded, lo = a - hi rounded, so that hi + lo is a within
    2^-17 of itself and each product with H' exact in fp32; the two halves of Aᵀ H' added, and the mean's term taken
    with the same hi + lo, so that the two terms cancel as H' - mean does. A and the mean's term are element-wise work
    that inductor fuses where the backward is compiled. `shape`: the dot kernel's (weight_grad_dot_kernel)."""
    if H1.dtype != torch.bfloat16 or not use_stream_kernel(H1):
        return _hyper_weight_grad_op(H1, dz, mean, rstd)
    J = dz.shape[-1]
    A, shift = dot_operand(dz, mean, rstd)
    P = _hyper_weight_grad_dot_op(H1, A) if shape is None else weight_grad_dot_kernel(H1, A, shape)
    return P[:J] + P[J:2 * J] - shift[:, None]


def dot_operand(dz, mean, rstd):
    """weight_grad's A = [hi | lo | 0] (M·n, K) bf16 of a = dz·rstd, and the mean's term Σ_r (hi + lo)_r mean_r (J,)."""
    M, n, J = dz.shape
    a = (dz * rstd[..., None]).reshape(M * n, J)
    hi = a.to(torch.bfloat16)
    lo = (a - hi.float()).to(torch.bfloat16)
    K = max(16, triton.next_power_of_2(2 * J))
    A = torch.cat((hi, lo, hi.new_zeros(M * n, K - 2 * J)), dim=1)
    return A, ((hi.float() + lo.float()) * mean.reshape(M * n, 1)).sum(0)


def _setup_context(ctx, inputs, output):
    Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps, has_write, dynamic, center, h_dtype = inputs
    H1, _, C1, z, mean, rstd, nmean, nrstd = output
    ctx.save_for_backward(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, nw, nmean, nrstd)
    ctx.flags = (has_write, dynamic, center, h_dtype, nb.numel() > 0)


def _backward(ctx, dH1, dy, dC1, _dz, _dmean, _drstd, _dnmean, _dnrstd):
    Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, nw, nmean, nrstd = ctx.saved_tensors
    has_write, dynamic, center, h_dtype, has_bias = ctx.flags
    M, n, D = H1.shape
    norm = nw.numel() > 0
    dH1 = torch.zeros_like(H1) if dH1 is None else dH1.contiguous()
    if dy is None:
        dy = torch.zeros(M, D, dtype=h_dtype if norm else compute_dtype(H1), device=H1.device)
    dC1 = torch.zeros_like(C1) if dC1 is None else dC1.contiguous()
    dHk, d_out, dCk, dz, dCt, wsums = _hyper_step_backward_op(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1,
                                                              dy.contiguous(), dC1, nw, nmean, nrstd, has_write,
                                                              dynamic, center)
    dwt = dbw = ds = None
    if dynamic:
        # the projection's weight: Σ dz ⊗ x̂ over tokens and streams, one pass over H' (_hyper_wgrad_kernel): 0.31-0.33
        # ms a site at the 124M step, 4e-7 of its largest entry from float64 (calls FF, FG); with bf16 streams on the
        # tensor cores (weight_grad): 0.133 ms a site in the step where the fp32 kernel took 0.280 (calls GB, GJ).
        # Until then an fp32 matmul dzᵀ(rstd·H') less Σ dz·rstd·μ: 0.36 ms, 3e-4 from float64 (TF32, which the engine
        # allows). Either is kept out of autocast, under which the matmul had cast H' to bf16 first (0.35 ms a site in
        # call CM's profile)
        with torch.autocast(H1.device.type, enabled=False):
            dwt = weight_grad(H1, dz, mean, rstd)
        dbw = dz.sum((0, 1))
        t = torch.tanh(z)
        ds = torch.stack(((dCt[..., :n + 1] * t[..., :n + 1]).sum(), (dCt[..., n + 1] * t[..., n + 1]).sum()))
    da_s = dCt[..., :n + 1].sum(0)
    db_s = dCt[..., n + 1].sum(0)
    if not has_write:
        d_out = dCk = None
    d_nw, d_nb = (wsums[0], wsums[1] if has_bias else None) if norm else (None, None)
    return dHk, d_out, dCk, dwt, dbw, ds, da_s, db_s, d_nw, d_nb, None, None, None, None, None


_hyper_step_op.register_autograd(_backward, setup_context=_setup_context)


def hyper_step(Hk, out, Ck, wt, bw, s, a_s, b_s, eps: float, has_write: bool, dynamic: bool, center: bool,
               norm: tuple | None = None):
    """(H', x_in', C') from the streams H (M, n, D), the site output `out` (M, D) and C (M, n, n+2); see above. With
    `norm` = (weight, bias or None) of the next site's norm (LayerNorm if `center`, else RMSNorm, as the streams'
    norms): (H', h, C'), h = N(x_in') in the autocast dtype (x_in's own without autocast), as the sublayer's matmul
    reads it.

    Everything but `out` in the arithmetic's dtype (compute_dtype: fp32 in training; float64 in some tests, which the
    torch path serves), the streams H in theirs: fp32, or bf16 with arch.hyper.stream_dtype (the dynamic site only),
    H' then too.
    """
    dt = compute_dtype(Hk)
    h_dtype = autocast_dtype(Hk)
    empty = Hk.new_zeros(0)
    nw, nb = norm if norm is not None else (empty, None)
    with torch.autocast(Hk.device.type, enabled=False):
        H1, y, C1, *_ = _hyper_step_op(Hk.contiguous(), out.contiguous(), Ck.to(dt).contiguous(),
                                       wt.to(dt).contiguous(), bw.to(dt).contiguous(), s.to(dt).contiguous(),
                                       a_s.to(dt).contiguous(), b_s.to(dt).contiguous(), nw.to(dt),
                                       nb.to(dt) if nb is not None else empty, float(eps), has_write, dynamic,
                                       center, h_dtype)
    return H1, y, C1
