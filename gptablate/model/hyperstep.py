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
time before it, 1.80× with its first kernels, 1.48× with these; hyper static 1.33×.
The model takes it for the dynamic case only: the static one, whose A and B are the same for every
token, takes hyperstatic.py's element-wise kernels (its backward 0.92 ms a site where these take 1.30).

Layout: H (M, n, D) with M = B·T tokens, fp32; C (M, n, n+2) the per-token coefficients, A in
columns 0..n and B in column n+1. Norms: LayerNorm (`center`) or RMSNorm, their gain and bias
folded into the projection (wt = (g ⊙ W)ᵀ, bw = b W). The forward saves the coefficients'
pre-activations z (not tanh z): the norm's backward needs Σ_d dx̂·x̂ = Σ_j dz_j (z_j − bw_j), which
then costs no sum over the features. What the backward leaves to torch is small: the projection's
weight gradient (one fp32 matmul over H', autocast off) and sums over tokens.

With the site's own norm (the block's ln_1 or ln_2, LayerNorm or RMSNorm as the streams' norms; `norm` in
hyper_step) the forward writes h = N(x_in') in the autocast dtype and the token's mean and 1/std in place of x_in'
in fp32, and the backward takes dh: it forms x_in' again from H' and C', sums Σ w·dh·x̂ and Σ w·dh over the row it
holds, and keeps the norm's gain and bias gradients as per-program sums. At the 124M step this left the step time as
it was (the kernels' extra time what inductor's norms had cost) and the peak memory 9% lower (calls CL, CM).

On CUDA with Triton: the kernels below. Elsewhere the same computation in torch
(`hyper_step_reference`, `hyper_step_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .addnorm import add_norm_backward_reference, add_norm_reference, norm_stats
from .kernels import autocast_dtype, empties, narrow, row_chunks, row_warps, tanh, tl, triton, use_kernel

# Tokens per program, and the warps and register cap (maxnreg, None: the compiler's choice) of the
# forward and backward kernels, for a dynamic site and a static one: the fastest of
# scripts/device/hyperstep_bench.py's sweep on the 124M step's streams (61,440 x 4 x 768, one H100). The warps are
# those of rows of up to 8 chunks (768 and 1,024 features); wider rows launch more (kernels.row_warps: twice at 1.5B's
# 1,600, call DK).
# The grid is M / tokens programs, many waves of them, so that how many fit on an SM at once (which the
# registers decide) leaves no half-empty last wave: with 4 programs an SM, each looping over its share,
# the backward took 1.91 ms against 1.57 ms at 8 an SM (call P; 3 fit an SM by its registers, so our
# reading is one full wave and one a third full). The layout the compiler picks for a tile
# changes with the warps, and a bad one costs several times: the static backward took 5.4 ms at 4 warps
# and 1.5 ms at 8 (call O). "norm": the dynamic site with its norm folded in (`--norm-only`, call CL: forward 0.924 ms,
# backward 1.850 ms; since the coefficients are loaded as columns and the backward's 2-byte rows narrowed, forward
# 0.909 and backward 1.424 ms at these caps and STAGES, the fastest of scripts/device/hyperstep_ab.py's sweep, call CW).
TUNING = {
    True: (16, (4, 128), (4, 168)),  # dynamic
    False: (4, (4, 128), (8, 128)),  # static
    "norm": (16, (4, 128), (4, None)),  # dynamic, with the site's norm folded in
}
# Software pipelining of the token loops (tl.range's num_stages), forward and backward: 1, none. The norm case's
# backward took 1.597 ms at 2 stages against 1.858 at 1 (2.27 at 3); the forward and the case without the norm were
# fastest at 1 (`hyperstep_bench.py --stages-only`, call CQ). One setting for both cases: the model takes the norm case.
STAGES = (1, 2)


def hyper_step_reference(Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps: float, has_write: bool, dynamic: bool,
                         center: bool, h_dtype: torch.dtype):
    """(H1, y, C1, z, mean, rstd, nmean, nrstd) in torch, z the coefficients' pre-activations; differentiable, the
    tests' oracle. y is x_in, or with the site's norm (nw not empty) h = N(x_in) in h_dtype, its per-token mean and
    1/std in nmean and nrstd (else empty)."""
    n = Hk.shape[1]
    if has_write:
        H1 = (Ck[:, :, 1:n + 1, None] * Hk[:, :, None, :]).sum(1) + Ck[:, :, n + 1, None] * out[:, None, :].to(Hk.dtype)
    else:
        H1 = Hk.clone()
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
    # Layout of a token's streams in a program: a (NP, DC, DL) tile, stream x feature chunk x feature in
    # the chunk (DL = 128: a warp's 32 lanes x 4). A reduction over the features is one within each warp
    # (over DL) and one across warps (over DC); the across-warps step is a trip through shared memory and
    # a barrier, so the kernels gather every feature sum a step needs into one (NP, DC, SP) tile of slots
    # and reduce it once. The first version reduced each sum on its own: 78 barriers a token forward
    # (compiled for sm_90), 210 registers a thread, 1.1 TB/s.

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
    def _tile(D, N: tl.constexpr, NP: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr, SP: tl.constexpr):
        """Streams ic (NP, 1, 1), features d (1, DC, DL), slots kk (1, 1, SP), and the masks of a row."""
        ic = tl.arange(0, NP)[:, None, None]
        d = tl.arange(0, DC)[None, :, None] * DL + tl.arange(0, DL)[None, None, :]
        kk = tl.arange(0, SP)[None, None, :]
        return ic, d, kk, ic < N, d < D, (ic < N) & (d < D)

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
            h += _column(ck_ptr, c0, ic, i, N, J) * tl.load(hk_ptr + row0 + i * D + d, mask=dmask, other=0.0)
        return tl.where(hmask, h, 0.0)

    @triton.jit
    def _hyper_fwd_kernel(hk_ptr, out_ptr, ck_ptr, wt_ptr, bw_ptr, s_ptr, as_ptr, bs_ptr, nw_ptr, nb_ptr,
                          h1_ptr, y_ptr, c1_ptr, z_ptr, mean_ptr, rstd_ptr, nmean_ptr, nrstd_ptr,
                          M, D, eps, n_programs, tokens_per_program,
                          N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr,
                          SP: tl.constexpr, HAS_WRITE: tl.constexpr, DYNAMIC: tl.constexpr, CENTER: tl.constexpr,
                          NORM: tl.constexpr, HAS_BIAS: tl.constexpr, FWD_STAGES: tl.constexpr):
        ic, d, kk, imask, dmask, hmask = _tile(D, N, NP, DC, DL, SP)
        jmask = imask & (kk < J)
        # the site's constants in C's layout (stream i, column j): A_s in columns 0..N, B_s in N+1
        const = tl.load(as_ptr + ic * (N + 1) + kk, mask=imask & (kk < N + 1), other=0.0)
        const = tl.where(kk == N + 1, tl.load(bs_ptr + ic + 0 * kk, mask=imask, other=0.0), const)
        if DYNAMIC:
            scale, bw = _coefficient_scale(s_ptr, bw_ptr, kk, N, J)
        for it in tl.range(0, tokens_per_program, num_stages=FWD_STAGES):
            m, _ = _nth_token(it, n_programs, M)
            m64, row0, c0 = _token(m, D, N, J)
            if HAS_WRITE:
                h = _write(hk_ptr, out_ptr, ck_ptr, m64, row0, c0, D, ic, d, dmask, hmask, N, J, False)
            else:
                h = tl.load(hk_ptr + row0 + ic * D + d, mask=hmask, other=0.0)
            tl.store(h1_ptr + row0 + ic * D + d, h, mask=hmask)
            if DYNAMIC:
                if CENTER:
                    mean = _feature_sum(h) / D
                    xc = tl.where(hmask, h - mean, 0.0)
                else:
                    mean = tl.zeros([NP, 1, 1], tl.float32)
                    xc = h
                # slots 0..J-1: Σ xc·w_j; slot J: Σ xc²; one reduction across warps for all
                slots = _put(tl.zeros([NP, DC, SP], tl.float32), J, kk, xc * xc)
                for j in tl.static_range(J):
                    slots = _put(slots, j, kk, xc * tl.load(wt_ptr + j * D + d, mask=dmask, other=0.0))
                sums = tl.sum(slots, axis=1, keep_dims=True)  # (NP, 1, SP)
                rstd = 1.0 / tl.sqrt(_slot(sums, J, kk) / D + eps)
                z = sums * rstd + bw
                c = const + scale * tanh(z)
                tl.store(z_ptr + c0 + ic * J + kk, z, mask=jmask)
                tl.store(mean_ptr + m64 * N + ic, mean, mask=imask)
                tl.store(rstd_ptr + m64 * N + ic, rstd, mask=imask)
            else:
                c = const
            tl.store(c1_ptr + c0 + ic * J + kk, c, mask=jmask)
            x = tl.sum(_slot(c, 0, kk) * h, axis=0, keep_dims=True)  # x_in' = Σ_i A'[i, 0] H'_i
            if NORM:  # the site's own norm of x_in' (its input h), over the row this program holds
                if CENTER:
                    xm = _feature_sum(x) / D
                    xc = tl.where(dmask, x - xm, 0.0)
                else:
                    xm = tl.zeros([1, 1, 1], tl.float32)
                    xc = x
                xr = 1.0 / tl.sqrt(_feature_sum(xc * xc) / D + eps)
                hn = xc * xr * tl.load(nw_ptr + d, mask=dmask, other=0.0)
                if HAS_BIAS:
                    hn += tl.load(nb_ptr + d, mask=dmask, other=0.0)
                tl.store(y_ptr + m64 * D + d, hn.to(y_ptr.dtype.element_ty), mask=dmask)
                tl.store(nmean_ptr + m64 + 0 * ic, xm + 0.0 * ic, mask=ic == 0)
                tl.store(nrstd_ptr + m64 + 0 * ic, xr + 0.0 * ic, mask=ic == 0)
            else:
                tl.store(y_ptr + m64 * D + d, x, mask=dmask)

    @triton.jit
    def _hyper_bwd_kernel(hk_ptr, out_ptr, ck_ptr, wt_ptr, bw_ptr, wsum_ptr, s_ptr, h1_ptr, c1_ptr, z_ptr, mean_ptr,
                          rstd_ptr, dh1_ptr, dx_ptr, dc1_ptr, nw_ptr, nmean_ptr, nrstd_ptr,
                          dhk_ptr, dout_ptr, dck_ptr, dz_ptr, dct_ptr, wpart_ptr,
                          M, D, n_programs, tokens_per_program,
                          N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, DC: tl.constexpr, DL: tl.constexpr,
                          SP: tl.constexpr, HAS_WRITE: tl.constexpr, DYNAMIC: tl.constexpr, CENTER: tl.constexpr,
                          NORM: tl.constexpr, BWD_STAGES: tl.constexpr):
        ic, d, kk, imask, dmask, hmask = _tile(D, N, NP, DC, DL, SP)
        jmask = imask & (kk < J)
        if DYNAMIC:
            scale, bw = _coefficient_scale(s_ptr, bw_ptr, kk, N, J)
            wsum = tl.load(wsum_ptr + kk, mask=kk < J, other=0.0)  # Σ_d w_j
        # with the site's norm: this program's share of its gain's and bias's gradients, Σ dh·x̂ and Σ dh
        acc_dw = tl.zeros([1, DC, DL], tl.float32)
        acc_db = tl.zeros([1, DC, DL], tl.float32)
        for it in tl.range(0, tokens_per_program, num_stages=BWD_STAGES):
            m, valid = _nth_token(it, n_programs, M)  # valid: not a repeat, for the norm's per-program sums
            m64, row0, c0 = _token(m, D, N, J)
            hoff = row0 + ic * D + d
            coff = c0 + ic * J + kk
            if HAS_WRITE:  # H' again from H and out, which the backward reads anyway: one read of the streams less
                h = _write(hk_ptr, out_ptr, ck_ptr, m64, row0, c0, D, ic, d, dmask, hmask, N, J, True)
            else:
                h = tl.load(h1_ptr + hoff, mask=hmask, other=0.0)
            a0 = tl.load(c1_ptr + c0 + ic * J, mask=imask, other=0.0)  # A'[i, 0]
            dx = tl.load(dx_ptr + m64 * D + narrow(d), mask=dmask, other=0.0).to(tl.float32)  # with the norm: dh
            if NORM:  # x_in' again from H' and C'; dx = rstd·(w·dh - x̂·Σ w·dh·x̂ / D - Σ w·dh / D)
                xhat = tl.sum(a0 * h, axis=0, keep_dims=True)
                xhat = tl.where(dmask, (xhat - tl.load(nmean_ptr + m64)) * tl.load(nrstd_ptr + m64), 0.0)
                gw = dx * tl.load(nw_ptr + d, mask=dmask, other=0.0)
                acc_dw += tl.where(valid, dx * xhat, 0.0)
                acc_db += tl.where(valid, dx, 0.0)
                sums = _put(_put(tl.zeros([1, DC, SP], tl.float32), 0, kk, gw * xhat), 1, kk, gw)
                sums = tl.sum(sums, axis=1, keep_dims=True) / D  # (1, 1, SP)
                dx = gw - xhat * _slot(sums, 0, kk)
                if CENTER:
                    dx -= _slot(sums, 1, kk)
                dx = tl.where(dmask, dx * tl.load(nrstd_ptr + m64), 0.0)
            dct = tl.load(dc1_ptr + coff, mask=jmask, other=0.0) + tl.where(kk == 0, _feature_sum(h * dx), 0.0)
            tl.store(dct_ptr + coff, dct, mask=jmask)
            dht = tl.load(dh1_ptr + hoff, mask=hmask, other=0.0) + a0 * dx
            if DYNAMIC:
                z = tl.load(z_ptr + coff, mask=jmask, other=0.0)
                t = tanh(z)
                dz = tl.where(jmask, dct * scale * (1.0 - t * t), 0.0)
                tl.store(dz_ptr + coff, dz, mask=jmask)
                rstd = tl.load(rstd_ptr + m64 * N + ic, mask=imask, other=0.0)
                xhat = tl.where(hmask, (h - tl.load(mean_ptr + m64 * N + ic, mask=imask, other=0.0)) * rstd, 0.0)
                dxhat = tl.zeros([NP, DC, DL], tl.float32)
                for j in tl.static_range(J):
                    dxhat += _slot(dz, j, kk) * tl.load(wt_ptr + j * D + d, mask=dmask, other=0.0)
                # the norm's backward needs Σ dxhat·xhat = Σ_j dz_j (z_j - bw_j) and Σ dxhat = Σ_j dz_j Σ w_j:
                # no feature sums
                g = dxhat - xhat * (tl.sum(dz * (z - bw), axis=2, keep_dims=True) / D)
                if CENTER:
                    g = g - tl.sum(dz * wsum, axis=2, keep_dims=True) / D
                dht += tl.where(hmask, g * rstd, 0.0)
            if HAS_WRITE:
                b = tl.load(ck_ptr + c0 + ic * J + (N + 1), mask=imask, other=0.0)  # B_j
                d_out = tl.sum(b * dht, axis=0, keep_dims=True)
                tl.store(dout_ptr + m64 * D + narrow(d), d_out.to(dout_ptr.dtype.element_ty), mask=dmask)
                o = tl.load(out_ptr + m64 * D + narrow(d), mask=dmask, other=0.0).to(tl.float32)
                # slots[j, :, i+1]: <H_i, dht_j> (dA[i, j+1]); slots[j, :, N+1]: <dht_j, out> (dB_j)
                slots = _put(tl.zeros([NP, DC, SP], tl.float32), N + 1, kk, dht * o)
                for i in tl.static_range(N):
                    row = tl.load(hk_ptr + row0 + i * D + d, mask=dmask, other=0.0)
                    slots = _put(slots, i + 1, kk, dht * row)
                    dhk = tl.sum(_column(ck_ptr, c0, ic, i, N, J) * dht, axis=0, keep_dims=True)  # Σ_j A[i, j+1] dht_j
                    tl.store(dhk_ptr + row0 + i * D + d, dhk, mask=dmask)
                sums = tl.sum(slots, axis=1, keep_dims=True)  # (NP, 1, SP)
                # dCk[i, j+1] = sums[j, i+1] (stored transposed), dCk[j, N+1] = sums[j, N+1], dCk[j, 0] = 0
                own = (kk == 0) | (kk == N + 1)
                dck_off = tl.where(own, coff, c0 + (kk - 1) * J + 1 + ic)
                tl.store(dck_ptr + dck_off, tl.where(kk == 0, 0.0, sums), mask=imask & (kk < N + 2))
            else:
                tl.store(dhk_ptr + hoff, dht, mask=hmask)
        if NORM:  # (programs, 2, D)
            tl.store(wpart_ptr + tl.program_id(0) * 2 * D + d, acc_dw, mask=dmask)
            tl.store(wpart_ptr + tl.program_id(0) * 2 * D + D + d, acc_db, mask=dmask)


def _launch_shape(Hk: torch.Tensor, dynamic: bool, norm: bool = False) -> dict:
    M, n, D = Hk.shape
    tokens, fwd, bwd = TUNING["norm" if norm and dynamic else dynamic]
    programs = triton.cdiv(M, tokens)
    dc, dl = row_chunks(D)
    return dict(grid=(programs,), programs=programs, per_program=triton.cdiv(M, programs),
                N=n, NP=triton.next_power_of_2(n), J=n + 2, DC=dc, DL=dl,
                SP=triton.next_power_of_2(n + 3), fwd=_tuning(*fwd, D), bwd=_tuning(*bwd, D))


def _tuning(warps: int, maxnreg: int | None, D: int) -> dict:
    """A kernel's launch options from TUNING's (warps, register cap), the warps scaled to the row (row_warps)."""
    return dict(num_warps=row_warps(warps, D), **({"maxnreg": maxnreg} if maxnreg else {}))


@torch.library.custom_op("gptablate::hyper_step", mutates_args=())
def _hyper_step_op(Hk: torch.Tensor, out: torch.Tensor, Ck: torch.Tensor, wt: torch.Tensor, bw: torch.Tensor,
                   s: torch.Tensor, a_s: torch.Tensor, b_s: torch.Tensor, nw: torch.Tensor, nb: torch.Tensor,
                   eps: float, has_write: bool, dynamic: bool, center: bool, h_dtype: torch.dtype
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                              torch.Tensor, torch.Tensor]:
    """(H1, y, C1, z, mean, rstd, nmean, nrstd): y is x_in, or with the site's norm (nw not empty) h = N(x_in) in
    h_dtype, whose per-token mean and 1/std are nmean and nrstd (else empty)."""
    if not use_kernel(Hk):
        return tuple(r.contiguous() for r in hyper_step_reference(Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps,
                                                                   has_write, dynamic, center, h_dtype))
    return forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, has_write, dynamic, center, nw, nb, h_dtype)


def _constexprs(k: dict, has_write: bool, dynamic: bool, center: bool, norm: bool) -> dict:
    return dict(N=k["N"], NP=k["NP"], J=k["J"], DC=k["DC"], DL=k["DL"], SP=k["SP"], HAS_WRITE=has_write,
                DYNAMIC=dynamic, CENTER=center, NORM=norm)


def forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps: float, has_write: bool, dynamic: bool, center: bool,
                   nw=None, nb=None, h_dtype=None):
    """The forward kernel's outputs (H1, y, C1, z, mean, rstd, nmean, nrstd): H1 in the streams' dtype (fp32 in the
    op; scripts/device/stream_dtype_bench.py passes bf16 streams), y in h_dtype with the norm, the rest fp32."""
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
    _hyper_fwd_kernel[k["grid"]](Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nw if nb is None else nb, H1, y, C1, z, mean,
                                 rstd, nmean, nrstd, M, D, eps, k["programs"], k["per_program"],
                                 **_constexprs(k, has_write, dynamic, center, norm), HAS_BIAS=nb is not None,
                                 FWD_STAGES=STAGES[0], **k["fwd"])
    return H1, y, C1, z, mean, rstd, nmean, nrstd


@_hyper_step_op.register_fake
def _(Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps, has_write, dynamic, center, h_dtype):
    M, n, D = Hk.shape
    norm = nw.numel() > 0
    small = (M, n, n + 2) if dynamic else (0,)
    return (Hk.new_empty(M, n, D), Hk.new_empty(M, D, dtype=h_dtype if norm else Hk.dtype),
            Hk.new_empty(M, n, n + 2), Hk.new_empty(small), Hk.new_empty((M, n) if dynamic else (0,)),
            Hk.new_empty((M, n) if dynamic else (0,)), Hk.new_empty(M if norm else 0), Hk.new_empty(M if norm else 0))


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
    if not use_kernel(H1):
        grads = hyper_step_backward_reference(Hk, out, Ck, wt, s, H1, C1, torch.tanh(z), mean, rstd, dH1, dy, dC1,
                                              has_write, dynamic, center, (nmean, nrstd, nw) if norm else None)
        dHk, d_out, dCk, dz, dCt = grads[:5]
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
                                 BWD_STAGES=STAGES[1], **k["bwd"])
    return dHk, d_out, dCk, dz, dCt, wpart.sum(0) if norm else None


@_hyper_step_backward_op.register_fake
def _(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy, dC1, nw, nmean, nrstd, has_write, dynamic, center):
    M, n, D = H1.shape
    small = H1.new_empty(M, n, n + 2)
    return (H1.new_empty(M, n, D), out.new_empty(M, D) if has_write else H1.new_empty(0),
            small if has_write else H1.new_empty(0), H1.new_empty(M, n, n + 2) if dynamic else H1.new_empty(0),
            H1.new_empty(M, n, n + 2), H1.new_empty(2, D) if nw.numel() else H1.new_empty(0))


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
        dy = torch.zeros(M, D, dtype=h_dtype if norm else H1.dtype, device=H1.device)
    dC1 = torch.zeros_like(C1) if dC1 is None else dC1.contiguous()
    dHk, d_out, dCk, dz, dCt, wsums = _hyper_step_backward_op(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1,
                                                              dy.contiguous(), dC1, nw, nmean, nrstd, has_write,
                                                              dynamic, center)
    dwt = dbw = ds = None
    if dynamic:
        # the projection's weight: Σ x̂ᵀ dz over tokens and streams = dzᵀ(rstd·H') − (dz·rstd·μ) summed, in the
        # streams' dtype (TF32 where allowed). Compiled under autocast this backward is traced with autocast on, and
        # the matmul cast H' to bf16 first: a stream-sized copy a site (0.35 ms in call CM's profile), then a bf16
        # matmul
        sz = (dz * rstd[..., None]).reshape(M * n, n + 2)
        with torch.autocast(H1.device.type, enabled=False):
            dwt = sz.t() @ H1.reshape(M * n, D)
        if center:
            dwt = dwt - (sz * mean.reshape(M * n, 1)).sum(0)[:, None]
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

    Everything but `out` in the streams' dtype (fp32 in training; float64 in some tests, which the
    torch path serves).
    """
    dt = Hk.dtype
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
