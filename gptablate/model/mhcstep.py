"""mHC's stream work between two sites as one operation, forward and backward.

Per site, mHC (VARIANTS.md) normalises the flattened streams u = RMSNorm(flatten(H)) ∈ R^{nD},
projects them to 2n + n² numbers z = u Φ, and takes p = σ(α_pre z_pre + b_pre) (the read),
q = 2σ(α_post z_post + b_post) and R = Sinkhorn(α_res z_res + b_res) (the write):
x_in = Σ_i p_i H_i, H'_i = Σ_j R[i,j] H_j + q_i out. Compiled as written, the 124M step took
2.0 times the baseline's: the streams (n × D fp32 numbers a token) crossed memory in several
kernels a site, and autograd summed their gradients from each use.

`mhc_step` is site k's write and site k+1's read up to its coefficients: H' from (H, out, R, q),
then rstd = (mean(H'²) + ε)^-½, z = rstd · H' W with W = g ⊙ Φ (the norm's gain folded into the
projection), p from z, and x_in' = Σ_i p_i H'_i. The write's coefficients q', R' of site k+1 are
left to torch (a few numbers a token; the Sinkhorn is sinkhorn.py's op). Unlike Hyper-Connections'
per-stream coefficients (hyperstep.py, a token at a time), z needs every feature of every stream,
a (tokens × nD) by (nD × 2n + n²) product: so a program takes a block of BM tokens and walks the
features in chunks of BK, forming H' (BM, n, BK) in registers, storing it and adding its product
with W's rows to z on the tensor cores (TF32; torch's per-site code runs this product in bf16 under
autocast). p is known only after the last chunk, so x_in' is a second walk over the chunks, which
forms H' again from H and out rather than reading back what the program stored.

The backward, one kernel, takes the gradients of H', x_in' and z and returns those of H, out, R
and q, and the projection's pre-activation gradient (dzraw, for W's gradient: one fp32 matmul
over H' in torch), with the same two walks: the first gathers dp_i = <H'_i, dx>, which the second
needs through p's and rstd's gradients:
    dz̃ = dz + α_pre·p(1 − p)·dp (columns 0..n-1),  dzraw = rstd·dz̃,
    dH̃' = dH' + p ⊗ dx + dzraw Wᵀ − (Σ_j dz̃_j z_j)·rstd²/(nD)·H',
    dH_j = Σ_i R[i,j] dH̃'_i,  d_out = Σ_i q_i dH̃'_i,  dR[i,j] = <dH̃'_i, H_j>,  dq_i = <dH̃'_i, out>.
The first site's read is the same operation without the write (`has_write=False`); the last
site's write and the exit's mean over the streams stay in torch.

Layout: H (M, n, D) fp32 with M = B·T tokens; R (M, n, n); q, p (M, n); z (M, 2n + n²).
On CUDA with Triton: the kernels below. Elsewhere the same computation in torch
(`mhc_step_reference`, `mhc_step_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .kernels import tl, triton, use_kernel

# (tokens per program BM, features per chunk BK, warps, stages) of the forward kernel and of the backward: the
# fastest of scripts/device/mhcstep_bench.py's sweep on the 124M step's streams (61,440 x 4 x 768, one H100).
# Stages past 1 let the compiler fetch the next chunk's W rows into shared memory during this one's product.
TUNING = ((16, 32, 4, 1), (16, 32, 4, 2))


def mhc_step_reference(Hk, out, Rk, qk, w, a_pre, b_pre, eps: float, has_write: bool):
    """(H1, x_in, z, p, rstd) in torch; differentiable, the tests' oracle."""
    if has_write:
        H1 = (Rk[:, :, :, None] * Hk[:, None, :, :]).sum(2) + qk[:, :, None] * out[:, None, :].to(Hk.dtype)
    else:
        H1 = Hk.clone()
    M, n, D = H1.shape
    flat = H1.reshape(M, n * D)
    rstd = torch.rsqrt(flat.pow(2).mean(-1) + eps)
    z = (flat @ w) * rstd[:, None]
    p = torch.sigmoid(a_pre * z[:, :n] + b_pre)
    x_in = (p[:, :, None] * H1).sum(1)
    return H1, x_in, z, p, rstd


def mhc_step_backward_reference(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, has_write: bool):
    """(dHk, d_out, dRk, dqk, dzraw, dps) by the rule in the module docstring: what the backward kernel computes.
    dps = p(1 − p)·dp, the gradient of p's pre-activations over α_pre (for α_pre's and b_pre's gradients)."""
    M, n, D = H1.shape
    dps = (H1 * dx[:, None, :]).sum(-1) * p * (1 - p)
    dzt = dz.clone()
    dzt[:, :n] += a_pre * dps
    dzraw = dzt * rstd[:, None]
    c = -(dzt * z).sum(-1) * rstd * rstd / (n * D)
    g = dH1 + p[:, :, None] * dx[:, None, :] + (dzraw @ w.t()).view(M, n, D) + c[:, None, None] * H1
    if not has_write:
        return g, None, None, None, dzraw, dps
    dHk = (Rk[:, :, :, None] * g[:, :, None, :]).sum(1)  # dH_j = Σ_i R[i,j] g_i
    d_out = (qk[:, :, None] * g).sum(1)
    dRk = torch.einsum("mid,mjd->mij", g, Hk)
    dqk = (g * out[:, None, :].to(g.dtype)).sum(-1)
    return dHk, d_out.to(out.dtype), dRk, dqk, dzraw, dps


if triton is not None:
    # A program's tiles: tokens (BM), streams (NP: n padded to a power of two), features of a chunk (BK);
    # z's columns (JP: 2n + n² padded, at least 16 for the tensor cores).

    @triton.jit
    def _column(x3, jc3, j):
        """Column j of a (BM, NP, NP) tile: (BM, NP, 1)."""
        return tl.sum(tl.where(jc3 == j, x3, 0.0), axis=2, keep_dims=True)

    @triton.jit
    def _chunk(hk_ptr, out_ptr, r3, q3, srow, orow, c0, k2, mk2, t3, i3, k3, hm, jc3, D,
               N: tl.constexpr, HAS_WRITE: tl.constexpr):
        """H' at features c0 + k of the block's tokens, (BM, NP, BK): Σ_j R[i,j] H_j + q_i out, or H itself."""
        if HAS_WRITE:
            o = tl.load(out_ptr + orow + c0 + k2, mask=mk2, other=0.0).to(tl.float32)  # (BM, BK)
            h = q3 * o[:, None, :]
            for j in tl.static_range(N):
                hj = tl.load(hk_ptr + srow + j * D + c0 + k2, mask=mk2, other=0.0)
                h += _column(r3, jc3, j) * hj[:, None, :]
        else:
            h = tl.load(hk_ptr + t3 * (N * D) + i3 * D + c0 + k3, mask=hm, other=0.0)
        return h

    @triton.jit
    def _block(M, D, N: tl.constexpr, NP: tl.constexpr, JP: tl.constexpr, BM: tl.constexpr, BK: tl.constexpr):
        """The block's token indices (int64) and the index vectors of its tiles."""
        tok = tl.program_id(0) * BM + tl.arange(0, BM)
        return tok.to(tl.int64), tok < M, tl.arange(0, NP), tl.arange(0, BK), tl.arange(0, JP)

    @triton.jit
    def _w_rows(D, N: tl.constexpr, NP: tl.constexpr, BK: tl.constexpr):
        """W's row index (i·D + k) and stream mask of a flattened (stream, feature-in-chunk) axis of NP·BK."""
        r = tl.arange(0, NP * BK)
        return (r // BK) * D + r % BK, r // BK < N, r % BK

    @triton.jit
    def _mhc_fwd_kernel(hk_ptr, out_ptr, r_ptr, q_ptr, w_ptr, a_ptr, b_ptr,
                        h1_ptr, x_ptr, z_ptr, p_ptr, rstd_ptr, M, D, eps,
                        N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, JP: tl.constexpr,
                        BM: tl.constexpr, BK: tl.constexpr, HAS_WRITE: tl.constexpr):
        t64, tmask, i, k, jj = _block(M, D, N, NP, JP, BM, BK)
        t3, i3, k3, jc3 = t64[:, None, None], i[None, :, None], k[None, None, :], i[None, None, :]
        m3 = tmask[:, None, None] & (i3 < N)  # (BM, NP, 1)
        k2, srow, orow = k[None, :], t64[:, None] * (N * D), t64[:, None] * D
        r3 = tl.load(r_ptr + t3 * (N * N) + i3 * N + jc3, mask=m3 & (jc3 < N), other=0.0) if HAS_WRITE else 0.0
        q3 = tl.load(q_ptr + t3 * N + i3, mask=m3, other=0.0) if HAS_WRITE else 0.0
        wrow, wmask, wk = _w_rows(D, N, NP, BK)
        acc = tl.zeros([BM, JP], tl.float32)
        ss = tl.zeros([BM], tl.float32)
        for c0 in range(0, D, BK):
            mk2 = tmask[:, None] & (c0 + k2 < D)
            hm = m3 & (c0 + k3 < D)
            h = _chunk(hk_ptr, out_ptr, r3, q3, srow, orow, c0, k2, mk2, t3, i3, k3, hm, jc3, D, N, HAS_WRITE)
            tl.store(h1_ptr + t3 * (N * D) + i3 * D + c0 + k3, h, mask=hm)
            ss += tl.sum(tl.sum(h * h, axis=2), axis=1)
            w = tl.load(w_ptr + (wrow[:, None] + c0) * J + jj[None, :],
                        mask=(wmask & (c0 + wk < D))[:, None] & (jj[None, :] < J), other=0.0)  # (NP·BK, JP)
            acc += tl.dot(tl.reshape(h, (BM, NP * BK)), w)
        rstd = 1.0 / tl.sqrt(ss / (N * D) + eps)
        z = acc * rstd[:, None]
        tl.store(z_ptr + t64[:, None] * J + jj[None, :], z, mask=tmask[:, None] & (jj[None, :] < J))
        tl.store(rstd_ptr + t64, rstd, mask=tmask)
        zpre = tl.sum(tl.where(jj[None, None, :] == i3, z[:, None, :], 0.0), axis=2, keep_dims=True)  # (BM, NP, 1)
        pre = tl.load(a_ptr) * zpre + tl.load(b_ptr + i3, mask=i3 < N, other=0.0)
        p = tl.where(m3, 1.0 / (1.0 + tl.exp(-pre)), 0.0)
        tl.store(p_ptr + t3 * N + i3, p, mask=m3)
        for c0 in range(0, D, BK):  # x_in' = Σ_i p_i H'_i, H' formed again
            mk2 = tmask[:, None] & (c0 + k2 < D)
            hm = m3 & (c0 + k3 < D)
            h = _chunk(hk_ptr, out_ptr, r3, q3, srow, orow, c0, k2, mk2, t3, i3, k3, hm, jc3, D, N, HAS_WRITE)
            tl.store(x_ptr + orow + c0 + k2, tl.sum(p * h, axis=1), mask=mk2)

    @triton.jit
    def _mhc_bwd_kernel(hk_ptr, out_ptr, r_ptr, q_ptr, w_ptr, a_ptr, z_ptr, p_ptr, rstd_ptr, dh1_ptr, dx_ptr, dz_ptr,
                        dhk_ptr, dout_ptr, dr_ptr, dq_ptr, dzraw_ptr, dps_ptr, M, D,
                        N: tl.constexpr, NP: tl.constexpr, J: tl.constexpr, JP: tl.constexpr,
                        BM: tl.constexpr, BK: tl.constexpr, HAS_WRITE: tl.constexpr):
        t64, tmask, i, k, jj = _block(M, D, N, NP, JP, BM, BK)
        t3, i3, k3, jc3 = t64[:, None, None], i[None, :, None], k[None, None, :], i[None, None, :]
        m3 = tmask[:, None, None] & (i3 < N)
        k2, srow, orow = k[None, :], t64[:, None] * (N * D), t64[:, None] * D
        rmask = m3 & (jc3 < N)
        r3 = tl.load(r_ptr + t3 * (N * N) + i3 * N + jc3, mask=rmask, other=0.0) if HAS_WRITE else 0.0
        q3 = tl.load(q_ptr + t3 * N + i3, mask=m3, other=0.0) if HAS_WRITE else 0.0
        # first walk: dp_i = <H'_i, dx>
        dp = tl.zeros([BM, NP, 1], tl.float32)
        for c0 in range(0, D, BK):
            mk2 = tmask[:, None] & (c0 + k2 < D)
            hm = m3 & (c0 + k3 < D)
            h = _chunk(hk_ptr, out_ptr, r3, q3, srow, orow, c0, k2, mk2, t3, i3, k3, hm, jc3, D, N, HAS_WRITE)
            dx = tl.load(dx_ptr + orow + c0 + k2, mask=mk2, other=0.0).to(tl.float32)
            dp += tl.sum(h * dx[:, None, :], axis=2, keep_dims=True)
        p = tl.load(p_ptr + t3 * N + i3, mask=m3, other=0.0)
        dps = dp * p * (1.0 - p)
        tl.store(dps_ptr + t3 * N + i3, dps, mask=m3)
        zmask = tmask[:, None] & (jj[None, :] < J)
        zoff = t64[:, None] * J + jj[None, :]
        z = tl.load(z_ptr + zoff, mask=zmask, other=0.0)
        dzt = tl.load(dz_ptr + zoff, mask=zmask, other=0.0)
        dzt += tl.sum(tl.where(jj[None, None, :] == i3, tl.load(a_ptr) * dps, 0.0), axis=1)  # (BM, JP)
        rstd = tl.load(rstd_ptr + t64, mask=tmask, other=0.0)
        dzraw = dzt * rstd[:, None]
        tl.store(dzraw_ptr + zoff, dzraw, mask=zmask)
        cc = (-tl.sum(dzt * z, axis=1) * rstd * rstd / (N * D))[:, None, None]
        wrow, wmask, wk = _w_rows(D, N, NP, BK)
        dr = tl.zeros([BM, NP, NP], tl.float32)
        dq = tl.zeros([BM, NP, 1], tl.float32)
        # second walk: dH̃' and what it gives
        for c0 in range(0, D, BK):
            mk2 = tmask[:, None] & (c0 + k2 < D)
            hm = m3 & (c0 + k3 < D)
            h = _chunk(hk_ptr, out_ptr, r3, q3, srow, orow, c0, k2, mk2, t3, i3, k3, hm, jc3, D, N, HAS_WRITE)
            dx = tl.load(dx_ptr + orow + c0 + k2, mask=mk2, other=0.0).to(tl.float32)
            wt = tl.load(w_ptr + (wrow[None, :] + c0) * J + jj[:, None],
                         mask=(wmask & (c0 + wk < D))[None, :] & (jj[:, None] < J), other=0.0)  # (JP, NP·BK)
            g = tl.load(dh1_ptr + t3 * (N * D) + i3 * D + c0 + k3, mask=hm, other=0.0) + p * dx[:, None, :] + cc * h
            g += tl.reshape(tl.dot(dzraw, wt), (BM, NP, BK))
            g = tl.where(hm, g, 0.0)
            if HAS_WRITE:
                o = tl.load(out_ptr + orow + c0 + k2, mask=mk2, other=0.0).to(tl.float32)
                tl.store(dout_ptr + orow + c0 + k2, tl.sum(q3 * g, axis=1).to(dout_ptr.dtype.element_ty), mask=mk2)
                dq += tl.sum(g * o[:, None, :], axis=2, keep_dims=True)
                for j in tl.static_range(N):
                    tl.store(dhk_ptr + srow + j * D + c0 + k2, tl.sum(_column(r3, jc3, j) * g, axis=1), mask=mk2)
                    hj = tl.load(hk_ptr + srow + j * D + c0 + k2, mask=mk2, other=0.0)
                    dr += tl.where(jc3 == j, tl.sum(g * hj[:, None, :], axis=2, keep_dims=True), 0.0)
            else:
                tl.store(dhk_ptr + t3 * (N * D) + i3 * D + c0 + k3, g, mask=hm)
        if HAS_WRITE:
            tl.store(dr_ptr + t3 * (N * N) + i3 * N + jc3, dr, mask=rmask)
            tl.store(dq_ptr + t3 * N + i3, dq, mask=m3)


def _launch(kernel, tuning, M: int, n: int, *args, has_write: bool) -> None:
    bm, bk, warps, stages = tuning
    kernel[(triton.cdiv(M, bm),)](*args, N=n, NP=triton.next_power_of_2(n), J=2 * n + n * n,
                                  JP=max(16, triton.next_power_of_2(2 * n + n * n)), BM=bm, BK=bk,
                                  HAS_WRITE=has_write, num_warps=warps, num_stages=stages)


@torch.library.custom_op("gptablate::mhc_step", mutates_args=())
def _mhc_step_op(Hk: torch.Tensor, out: torch.Tensor, Rk: torch.Tensor, qk: torch.Tensor, w: torch.Tensor,
                 a_pre: torch.Tensor, b_pre: torch.Tensor, eps: float, has_write: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if not use_kernel(Hk):
        return tuple(r.contiguous() for r in mhc_step_reference(Hk, out, Rk, qk, w, a_pre, b_pre, eps, has_write))
    M, n, D = Hk.shape
    f32 = dict(dtype=torch.float32, device=Hk.device)
    H1, x_in, z = torch.empty(M, n, D, **f32), torch.empty(M, D, **f32), torch.empty(M, w.shape[1], **f32)
    p, rstd = torch.empty(M, n, **f32), torch.empty(M, **f32)
    _launch(_mhc_fwd_kernel, TUNING[0], M, n, Hk, out, Rk, qk, w, a_pre, b_pre, H1, x_in, z, p, rstd, M, D, eps,
            has_write=has_write)
    return H1, x_in, z, p, rstd


@_mhc_step_op.register_fake
def _(Hk, out, Rk, qk, w, a_pre, b_pre, eps, has_write):
    M, n, D = Hk.shape
    return (Hk.new_empty(M, n, D), Hk.new_empty(M, D), Hk.new_empty(M, w.shape[1]), Hk.new_empty(M, n),
            Hk.new_empty(M))


@torch.library.custom_op("gptablate::mhc_step_backward", mutates_args=())
def _mhc_step_backward_op(Hk: torch.Tensor, out: torch.Tensor, Rk: torch.Tensor, qk: torch.Tensor, w: torch.Tensor,
                          a_pre: torch.Tensor, H1: torch.Tensor, z: torch.Tensor, p: torch.Tensor, rstd: torch.Tensor,
                          dH1: torch.Tensor, dx: torch.Tensor, dz: torch.Tensor, has_write: bool
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor,
                                     torch.Tensor]:
    M, n, D = H1.shape
    if not use_kernel(H1):
        dHk, d_out, dRk, dqk, dzraw, dps = mhc_step_backward_reference(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd,
                                                                       dH1, dx, dz, has_write)
    else:
        f32 = dict(dtype=torch.float32, device=H1.device)
        dHk, dzraw, dps = torch.empty(M, n, D, **f32), torch.empty_like(z), torch.empty(M, n, **f32)
        d_out = torch.empty(M, D, dtype=out.dtype, device=H1.device) if has_write else None
        dRk = torch.empty(M, n, n, **f32) if has_write else None
        dqk = torch.empty(M, n, **f32) if has_write else None
        _launch(_mhc_bwd_kernel, TUNING[1], M, n, Hk, out, Rk, qk, w, a_pre, z, p, rstd, dH1, dx, dz,
                dHk, d_out if has_write else dps, dRk if has_write else dps, dqk if has_write else dps, dzraw, dps,
                M, D, has_write=has_write)

    def absent(t):  # an output this case has none of: a fresh empty tensor (outputs may not alias)
        return t if t is not None else H1.new_zeros(0)

    return dHk, absent(d_out), absent(dRk), absent(dqk), dzraw, dps


@_mhc_step_backward_op.register_fake
def _(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, has_write):
    M, n, D = H1.shape
    written = (out.new_empty(M, D), H1.new_empty(M, n, n), H1.new_empty(M, n)) if has_write else (
        H1.new_empty(0), H1.new_empty(0), H1.new_empty(0))
    return (H1.new_empty(M, n, D), *written, z.new_empty(z.shape), H1.new_empty(M, n))


def _setup_context(ctx, inputs, output):
    Hk, out, Rk, qk, w, a_pre, b_pre, eps, has_write = inputs
    H1, _, z, p, rstd = output
    ctx.save_for_backward(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd)
    ctx.has_write = has_write


def _backward(ctx, dH1, dx, dz, _dp, _drstd):
    Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd = ctx.saved_tensors
    M, n, D = H1.shape
    dH1 = torch.zeros_like(H1) if dH1 is None else dH1.contiguous()
    dx = torch.zeros(M, D, dtype=H1.dtype, device=H1.device) if dx is None else dx.contiguous()
    dz = torch.zeros_like(z) if dz is None else dz.contiguous()
    dHk, d_out, dRk, dqk, dzraw, dps = _mhc_step_backward_op(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz,
                                                             ctx.has_write)
    dw = H1.reshape(M, n * D).t() @ dzraw  # the projection's weight: H'ᵀ dzraw over the tokens
    da_pre = (dps * z[:, :n]).sum().reshape(a_pre.shape)
    db_pre = dps.sum(0)
    if not ctx.has_write:
        d_out = dRk = dqk = None
    return dHk, d_out, dRk, dqk, dw, da_pre, db_pre, None, None


_mhc_step_op.register_autograd(_backward, setup_context=_setup_context)


def mhc_step(Hk, out, Rk, qk, w, a_pre, b_pre, eps: float, has_write: bool):
    """(H', x_in', z') from the streams H (M, n, D), the site output `out` (M, D), its write's R (M, n, n) and q (M, n),
    and the next site's projection w = g ⊙ Φ (nD, 2n + n²), α_pre and b_pre; see above.

    Everything but `out` in the streams' dtype (fp32 in training; float64 in some tests, which the
    torch path serves).
    """
    dt = Hk.dtype
    with torch.autocast(Hk.device.type, enabled=False):
        H1, x_in, z, _, _ = _mhc_step_op(Hk.contiguous(), out.contiguous(), Rk.to(dt).contiguous(),
                                         qk.to(dt).contiguous(), w.to(dt).contiguous(),
                                         a_pre.to(dt).reshape(1).contiguous(), b_pre.to(dt).contiguous(),
                                         float(eps), has_write)
    return H1, x_in, z
