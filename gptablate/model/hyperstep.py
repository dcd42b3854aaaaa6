"""Hyper-Connections' stream work between two sites as one operation, forward and backward.

Per site k, Hyper-Connections (VARIANTS.md) read x_in = Σ_i A[i,0]·H_i, run the sublayer, and
write H'_j = Σ_i A[i,j+1]·H_i + B_j·out, where (dynamic) A = A_s + s_a·tanh(N(H_i) W_a) and
B = B_s + s_b·tanh(N(H_i) W_b) per token and stream. The streams H are n × D fp32 numbers a
token, n times the baseline's residual stream, so what the step costs is how often they cross
memory. Compiled as written, a 12-layer hyper step took 2.1 times the baseline's: inductor
reads and writes the streams in several kernels a site, and autograd adds up the streams'
gradients from each use.

`hyper_step` does, in one kernel a token row at a time with the row in registers, site k's
write and site k+1's read: H' from (H, out, A, B); then N(H'), the coefficients A', B' and
x_in' from H'. Its backward, one kernel too, takes the gradients of H', x_in' and (A', B')
and returns those of H, out and (A, B): H' never has two gradients to add, because its only
users are this operation and the next one. The first site's read is the same operation
without the write (`has_write=False`); the last site's write and the exit's sum over the
streams stay in torch. Measured on an H100 at the 124M step: 2.11× → 1.80× the baseline's step
time (docs/performance.md).

Layout: H (M, n, D) with M = B·T tokens, fp32; C (M, n, n+2) the per-token coefficients, A in
columns 0..n and B in column n+1. Norms: LayerNorm (`center`) or RMSNorm, their gain and bias
folded into the projection (wt = (g ⊙ W)ᵀ, bw = b W). What the backward leaves to torch is
small: the projection's weight gradient (one fp32 matmul over H') and sums over tokens.

On CUDA with Triton: the kernels below. Elsewhere the same computation in torch
(`hyper_step_reference`, `hyper_step_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .kernels import tl, triton, use_kernel

# The grid and warps, from a sweep on the 124M step's streams (61,440 x 4 x 768; call N,
# scripts/device/hyperstep_bench.py, one H100): programs per SM (2, 4, 8) made no difference; 4 warps
# were best forward (1.64 ms), 8 backward (2.15 ms), 16 twice as slow for both. Both kernels run at
# 1.1-1.6 TB/s, a third to a half of the memory's rate: a program works on one token at a time, so
# its loads wait on the previous token's reductions (the lead for a faster version: several tokens,
# or a pipelined loop, per iteration).
PROGRAMS_PER_SM = 4


def _norm_stats(H: torch.Tensor, eps: float, center: bool):
    mean = H.mean(-1) if center else torch.zeros(H.shape[:-1], dtype=H.dtype, device=H.device)
    xc = H - mean[..., None]
    rstd = torch.rsqrt((xc * xc).mean(-1) + eps)
    return mean, rstd


def hyper_step_reference(Hk, out, Ck, wt, bw, s, a_s, b_s, eps: float, has_write: bool, dynamic: bool,
                         center: bool):
    """(H1, x_in, C1, t, mean, rstd) in torch; differentiable, the tests' oracle."""
    n = Hk.shape[1]
    if has_write:
        H1 = (Ck[:, :, 1:n + 1, None] * Hk[:, :, None, :]).sum(1) + Ck[:, :, n + 1, None] * out[:, None, :].float()
    else:
        H1 = Hk.clone()
    M = H1.shape[0]
    if dynamic:
        mean, rstd = _norm_stats(H1, eps, center)
        xhat = (H1 - mean[..., None]) * rstd[..., None]
        t = torch.tanh(xhat @ wt.t() + bw)  # (M, n, n+2)
        C1 = torch.cat((a_s + s[0] * t[..., :n + 1], (b_s + s[1] * t[..., n + 1])[..., None]), dim=-1)
    else:
        mean, rstd, t = H1.new_zeros(0), H1.new_zeros(0), H1.new_zeros(0)  # none for a static site
        C1 = torch.cat((a_s, b_s[:, None]), dim=-1).expand(M, n, n + 2).contiguous()
    x_in = (C1[:, :, 0, None] * H1).sum(1)
    return H1, x_in, C1, t, mean, rstd


def hyper_step_backward_reference(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx, dC1, has_write: bool,
                                  dynamic: bool, center: bool):
    """(dHk, d_out, dCk, dz, dCt) by hand: what the backward kernel computes."""
    n = H1.shape[1]
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
    dCk[:, :, n + 1] = (dHt * out[:, None, :].float()).sum(-1)
    return dHk, d_out.to(out.dtype), dCk, dz, dCt


if triton is not None:
    @triton.jit
    def _tanh(z):
        return 1.0 - 2.0 / (tl.exp(2.0 * z) + 1.0)

    @triton.jit
    def _indices(D, N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, JP: tl.constexpr, BLOCK_D: tl.constexpr):
        """Streams ii, coefficient columns jj, features dd, and the masks of a row (NP, BLOCK_D) and of C (NP, JP)."""
        ii = tl.arange(0, NP)
        jj = tl.arange(0, JP)
        dd = tl.arange(0, BLOCK_D)
        imask = ii < N
        dmask = dd < D
        return ii, jj, dd, imask, dmask, imask[:, None] & dmask[None, :], imask[:, None] & (jj[None, :] < J)

    @triton.jit
    def _hyper_fwd_kernel(hk_ptr, out_ptr, ck_ptr, wt_ptr, bw_ptr, s_ptr, as_ptr, bs_ptr,
                          h1_ptr, x_ptr, c1_ptr, t_ptr, mean_ptr, rstd_ptr,
                          M, D, eps, n_programs, tokens_per_program,
                          N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, JP: tl.constexpr, BLOCK_D: tl.constexpr,
                          HAS_WRITE: tl.constexpr, DYNAMIC: tl.constexpr, CENTER: tl.constexpr):
        ii, jj, dd, imask, dmask, hmask, cmask = _indices(D, N, NP, J, JP, BLOCK_D)
        # constants of the site: A_s, B_s as a (NP, JP) tile in C's layout; s_a, s_b; bw
        a_s = tl.load(as_ptr + ii[:, None] * (N + 1) + jj[None, :], mask=imask[:, None] & (jj[None, :] < N + 1), other=0.0)
        b_s = tl.load(bs_ptr + ii, mask=imask, other=0.0)
        const = tl.where(jj[None, :] == N + 1, b_s[:, None], a_s)
        if DYNAMIC:
            s_a = tl.load(s_ptr)
            s_b = tl.load(s_ptr + 1)
            bw = tl.load(bw_ptr + jj, mask=jj < J, other=0.0)
            scale = tl.where(jj < N + 1, s_a, s_b)
        for it in range(0, tokens_per_program):
            m = tl.program_id(0) + it * n_programs
            if m < M:
                row0 = m.to(tl.int64) * N * D
                c0 = m.to(tl.int64) * N * J
                if HAS_WRITE:
                    o = tl.load(out_ptr + m.to(tl.int64) * D + dd, mask=dmask, other=0.0).to(tl.float32)
                    b = tl.load(ck_ptr + c0 + ii * J + (N + 1), mask=imask, other=0.0)
                    h = b[:, None] * o[None, :]
                    for i in tl.static_range(N):
                        a_i = tl.load(ck_ptr + c0 + i * J + 1 + ii, mask=imask, other=0.0)  # A[i, j+1] over j
                        row = tl.load(hk_ptr + row0 + i * D + dd, mask=dmask, other=0.0)
                        h += a_i[:, None] * row[None, :]
                    h = tl.where(hmask, h, 0.0)
                else:
                    h = tl.load(hk_ptr + row0 + ii[:, None] * D + dd[None, :], mask=hmask, other=0.0)
                tl.store(h1_ptr + row0 + ii[:, None] * D + dd[None, :], h, mask=hmask)
                if DYNAMIC:
                    if CENTER:
                        mean = tl.sum(h, axis=1) / D
                        xc = tl.where(hmask, h - mean[:, None], 0.0)
                    else:
                        mean = tl.zeros([NP], tl.float32)
                        xc = h
                    rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=1) / D + eps)
                    xhat = xc * rstd[:, None]
                    z = tl.zeros([NP, JP], tl.float32) + bw[None, :]
                    for j in tl.static_range(J):
                        w = tl.load(wt_ptr + j * D + dd, mask=dmask, other=0.0)
                        zj = tl.sum(xhat * w[None, :], axis=1)
                        z += tl.where(jj[None, :] == j, zj[:, None], 0.0)
                    t = _tanh(z)
                    c = tl.where(cmask, const + scale[None, :] * t, 0.0)
                    tl.store(t_ptr + c0 + ii[:, None] * J + jj[None, :], t, mask=cmask)
                    tl.store(mean_ptr + m.to(tl.int64) * N + ii, mean, mask=imask)
                    tl.store(rstd_ptr + m.to(tl.int64) * N + ii, rstd, mask=imask)
                else:
                    c = const
                tl.store(c1_ptr + c0 + ii[:, None] * J + jj[None, :], c, mask=cmask)
                a0 = tl.sum(tl.where(jj[None, :] == 0, c, 0.0), axis=1)  # A'[i, 0]
                tl.store(x_ptr + m.to(tl.int64) * D + dd, tl.sum(a0[:, None] * h, axis=0), mask=dmask)

    @triton.jit
    def _hyper_bwd_kernel(hk_ptr, out_ptr, ck_ptr, wt_ptr, s_ptr, h1_ptr, c1_ptr, t_ptr, mean_ptr, rstd_ptr,
                          dh1_ptr, dx_ptr, dc1_ptr,
                          dhk_ptr, dout_ptr, dck_ptr, dz_ptr, dct_ptr,
                          M, D, n_programs, tokens_per_program,
                          N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, JP: tl.constexpr, BLOCK_D: tl.constexpr,
                          HAS_WRITE: tl.constexpr, DYNAMIC: tl.constexpr, CENTER: tl.constexpr):
        ii, jj, dd, imask, dmask, hmask, cmask = _indices(D, N, NP, J, JP, BLOCK_D)
        if DYNAMIC:
            scale = tl.where(jj < N + 1, tl.load(s_ptr), tl.load(s_ptr + 1))
        for it in range(0, tokens_per_program):
            m = tl.program_id(0) + it * n_programs
            if m < M:
                row0 = m.to(tl.int64) * N * D
                c0 = m.to(tl.int64) * N * J
                hoff = row0 + ii[:, None] * D + dd[None, :]
                coff = c0 + ii[:, None] * J + jj[None, :]
                h = tl.load(h1_ptr + hoff, mask=hmask, other=0.0)
                dx = tl.load(dx_ptr + m.to(tl.int64) * D + dd, mask=dmask, other=0.0).to(tl.float32)
                dA0 = tl.sum(h * dx[None, :], axis=1)
                dct = tl.load(dc1_ptr + coff, mask=cmask, other=0.0) + tl.where(jj[None, :] == 0, dA0[:, None], 0.0)
                tl.store(dct_ptr + coff, dct, mask=cmask)
                a0 = tl.load(c1_ptr + c0 + ii * J, mask=imask, other=0.0)
                dht = tl.load(dh1_ptr + hoff, mask=hmask, other=0.0) + a0[:, None] * dx[None, :]
                if DYNAMIC:
                    t = tl.load(t_ptr + coff, mask=cmask, other=0.0)
                    dz = tl.where(cmask, dct * scale[None, :] * (1.0 - t * t), 0.0)
                    tl.store(dz_ptr + coff, dz, mask=cmask)
                    mean = tl.load(mean_ptr + m.to(tl.int64) * N + ii, mask=imask, other=0.0)
                    rstd = tl.load(rstd_ptr + m.to(tl.int64) * N + ii, mask=imask, other=0.0)
                    xhat = tl.where(hmask, (h - mean[:, None]) * rstd[:, None], 0.0)
                    dxhat = tl.zeros([NP, BLOCK_D], tl.float32)
                    for j in tl.static_range(J):
                        w = tl.load(wt_ptr + j * D + dd, mask=dmask, other=0.0)
                        dzj = tl.sum(tl.where(jj[None, :] == j, dz, 0.0), axis=1)
                        dxhat += dzj[:, None] * w[None, :]
                    g = dxhat - xhat * (tl.sum(dxhat * xhat, axis=1) / D)[:, None]
                    if CENTER:
                        g = g - (tl.sum(dxhat, axis=1) / D)[:, None]
                    dht += tl.where(hmask, g * rstd[:, None], 0.0)
                if HAS_WRITE:
                    b = tl.load(ck_ptr + c0 + ii * J + (N + 1), mask=imask, other=0.0)
                    d_out = tl.sum(b[:, None] * dht, axis=0)
                    tl.store(dout_ptr + m.to(tl.int64) * D + dd, d_out.to(dout_ptr.dtype.element_ty), mask=dmask)
                    o = tl.load(out_ptr + m.to(tl.int64) * D + dd, mask=dmask, other=0.0).to(tl.float32)
                    tl.store(dck_ptr + c0 + ii * J + (N + 1), tl.sum(dht * o[None, :], axis=1), mask=imask)
                    tl.store(dck_ptr + c0 + ii * J, tl.zeros([NP], tl.float32), mask=imask)
                    for i in tl.static_range(N):
                        a_i = tl.load(ck_ptr + c0 + i * J + 1 + ii, mask=imask, other=0.0)  # A[i, j+1] over j
                        row = tl.load(hk_ptr + row0 + i * D + dd, mask=dmask, other=0.0)
                        tl.store(dhk_ptr + row0 + i * D + dd, tl.sum(a_i[:, None] * dht, axis=0), mask=dmask)
                        tl.store(dck_ptr + c0 + i * J + 1 + ii, tl.sum(dht * row[None, :], axis=1), mask=imask)
                else:
                    tl.store(dhk_ptr + hoff, dht, mask=hmask)


def _launch_shape(Hk: torch.Tensor) -> dict:
    M, n, D = Hk.shape
    sms = torch.cuda.get_device_properties(Hk.device).multi_processor_count if Hk.is_cuda else 2
    programs = max(1, min(M, PROGRAMS_PER_SM * sms))
    block_d = triton.next_power_of_2(D)
    return dict(grid=(programs,), programs=programs, per_program=triton.cdiv(M, programs),
                N=n, NP=triton.next_power_of_2(n), J=n + 2, JP=triton.next_power_of_2(n + 2), BLOCK_D=block_d,
                fwd_warps=4 if n * block_d <= 4096 else 8, bwd_warps=8 if n * block_d <= 4096 else 16)


@torch.library.custom_op("gptablate::hyper_step", mutates_args=())
def _hyper_step_op(Hk: torch.Tensor, out: torch.Tensor, Ck: torch.Tensor, wt: torch.Tensor, bw: torch.Tensor,
                   s: torch.Tensor, a_s: torch.Tensor, b_s: torch.Tensor, eps: float, has_write: bool, dynamic: bool,
                   center: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                          torch.Tensor]:
    if not use_kernel(Hk):
        return tuple(r.contiguous() for r in hyper_step_reference(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, has_write,
                                                                   dynamic, center))
    M, n, D = Hk.shape
    f32 = dict(dtype=torch.float32, device=Hk.device)
    H1, x_in, C1 = torch.empty(M, n, D, **f32), torch.empty(M, D, **f32), torch.empty(M, n, n + 2, **f32)
    t = torch.empty(M, n, n + 2, **f32) if dynamic else Hk.new_zeros(0)
    mean = torch.empty(M, n, **f32) if dynamic else Hk.new_zeros(0)
    rstd = torch.empty(M, n, **f32) if dynamic else Hk.new_zeros(0)
    k = _launch_shape(Hk)
    _hyper_fwd_kernel[k["grid"]](Hk, out, Ck, wt, bw, s, a_s, b_s, H1, x_in, C1, t, mean, rstd, M, D, eps,
                                 k["programs"], k["per_program"], N=k["N"], NP=k["NP"], J=k["J"], JP=k["JP"],
                                 BLOCK_D=k["BLOCK_D"], HAS_WRITE=has_write, DYNAMIC=dynamic, CENTER=center,
                                 num_warps=k["fwd_warps"])
    return H1, x_in, C1, t, mean, rstd


@_hyper_step_op.register_fake
def _(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, has_write, dynamic, center):
    M, n, D = Hk.shape
    small = (M, n, n + 2) if dynamic else (0,)
    return (Hk.new_empty(M, n, D), Hk.new_empty(M, D), Hk.new_empty(M, n, n + 2), Hk.new_empty(small),
            Hk.new_empty((M, n) if dynamic else (0,)), Hk.new_empty((M, n) if dynamic else (0,)))


@torch.library.custom_op("gptablate::hyper_step_backward", mutates_args=())
def _hyper_step_backward_op(Hk: torch.Tensor, out: torch.Tensor, Ck: torch.Tensor, wt: torch.Tensor,
                            s: torch.Tensor, H1: torch.Tensor, C1: torch.Tensor, t: torch.Tensor, mean: torch.Tensor,
                            rstd: torch.Tensor, dH1: torch.Tensor, dx: torch.Tensor, dC1: torch.Tensor,
                            has_write: bool, dynamic: bool, center: bool
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    M, n, D = H1.shape
    if not use_kernel(H1):
        dHk, d_out, dCk, dz, dCt = hyper_step_backward_reference(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx,
                                                                 dC1, has_write, dynamic, center)
    else:
        f32 = dict(dtype=torch.float32, device=H1.device)
        dHk = torch.empty(M, n, D, **f32)
        d_out = torch.empty(M, D, dtype=out.dtype, device=H1.device) if has_write else None
        dCk = torch.empty(M, n, n + 2, **f32) if has_write else None
        dz = torch.empty(M, n, n + 2, **f32) if dynamic else None
        dCt = torch.empty(M, n, n + 2, **f32)
        k = _launch_shape(H1)
        dummy = dCt
        _hyper_bwd_kernel[k["grid"]](Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx, dC1,
                                     dHk, d_out if has_write else dummy, dCk if has_write else dummy,
                                     dz if dynamic else dummy, dCt, M, D, k["programs"], k["per_program"],
                                     N=k["N"], NP=k["NP"], J=k["J"], JP=k["JP"], BLOCK_D=k["BLOCK_D"],
                                     HAS_WRITE=has_write, DYNAMIC=dynamic, CENTER=center, num_warps=k["bwd_warps"])
    def absent(t):  # an output this case has none of: a fresh empty tensor (outputs may not alias)
        return t if t is not None else H1.new_zeros(0)

    return dHk, absent(d_out), absent(dCk), absent(dz), dCt


@_hyper_step_backward_op.register_fake
def _(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx, dC1, has_write, dynamic, center):
    M, n, D = H1.shape
    small = H1.new_empty(M, n, n + 2)
    return (H1.new_empty(M, n, D), out.new_empty(M, D) if has_write else H1.new_empty(0),
            small if has_write else H1.new_empty(0), H1.new_empty(M, n, n + 2) if dynamic else H1.new_empty(0),
            H1.new_empty(M, n, n + 2))


def _setup_context(ctx, inputs, output):
    Hk, out, Ck, wt, bw, s, a_s, b_s, eps, has_write, dynamic, center = inputs
    H1, _, C1, t, mean, rstd = output
    ctx.save_for_backward(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd)
    ctx.flags = (has_write, dynamic, center)


def _backward(ctx, dH1, dx, dC1, _dt, _dmean, _drstd):
    Hk, out, Ck, wt, s, H1, C1, t, mean, rstd = ctx.saved_tensors
    has_write, dynamic, center = ctx.flags
    M, n, D = H1.shape
    dH1 = torch.zeros_like(H1) if dH1 is None else dH1.contiguous()
    dx = torch.zeros(M, D, dtype=H1.dtype, device=H1.device) if dx is None else dx.contiguous()
    dC1 = torch.zeros_like(C1) if dC1 is None else dC1.contiguous()
    dHk, d_out, dCk, dz, dCt = _hyper_step_backward_op(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd, dH1, dx, dC1,
                                                       has_write, dynamic, center)
    dwt = dbw = ds = None
    if dynamic:
        # the projection's weight: Σ x̂ᵀ dz over tokens and streams = dzᵀ(rstd·H') − (dz·rstd·μ) summed
        sz = (dz * rstd[..., None]).reshape(M * n, n + 2)
        dwt = sz.t() @ H1.reshape(M * n, D)
        if center:
            dwt = dwt - (sz * mean.reshape(M * n, 1)).sum(0)[:, None]
        dbw = dz.sum((0, 1))
        ds = torch.stack(((dCt[..., :n + 1] * t[..., :n + 1]).sum(), (dCt[..., n + 1] * t[..., n + 1]).sum()))
    da_s = dCt[..., :n + 1].sum(0)
    db_s = dCt[..., n + 1].sum(0)
    if not has_write:
        d_out = dCk = None
    return dHk, d_out, dCk, dwt, dbw, ds, da_s, db_s, None, None, None, None


_hyper_step_op.register_autograd(_backward, setup_context=_setup_context)


def hyper_step(Hk, out, Ck, wt, bw, s, a_s, b_s, eps: float, has_write: bool, dynamic: bool, center: bool):
    """(H', x_in', C') from the streams H (M, n, D), the site output `out` (M, D) and C (M, n, n+2); see above.

    Everything but `out` in the streams' dtype (fp32 in training; float64 in some tests, which the
    torch path serves).
    """
    dt = Hk.dtype
    with torch.autocast(Hk.device.type, enabled=False):
        H1, x_in, C1, _, _, _ = _hyper_step_op(Hk.contiguous(), out.contiguous(), Ck.to(dt).contiguous(),
                                               wt.to(dt).contiguous(), bw.to(dt).contiguous(), s.to(dt).contiguous(),
                                               a_s.to(dt).contiguous(), b_s.to(dt).contiguous(), float(eps),
                                               has_write, dynamic, center)
    return H1, x_in, C1
