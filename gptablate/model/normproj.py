"""A row-wise norm followed by a thin projection, z = norm(x) @ W, as one operation (Hyper-Connections).

Dynamic Hyper-Connections compute, per site and per stream, `tanh(N_k(H) @ [W_a W_b])`: a
LayerNorm (or RMSNorm) of each of the n streams followed by a projection to n + 2 numbers.
Compiled as written, that was the largest kernel of the hyper step: on a (B·T·n, 768) fp32
stream it took 0.71 ms a site at micro-batch 30 (profile, 12 layers, H100), about 4 times what
reading the stream needs, and its backward two more kernels of that size.

Here the norm's gain and bias are folded into the projection by the caller (z = x̂ (g ⊙ W) +
b W, x̂ the normalised row), and this operation computes x̂ @ W' for each row with the row
in registers: one read of the stream forward, in fp32 (the plain path rounded the normalised
stream to bf16 for a bf16 matmul under autocast; this is at least as exact). The backward
reads the stream once more for the rows' gradient (the norm's backward through W'ᵀ dz, in a
kernel) and once for W''s gradient (x̂ᵀ dz = xᵀ(rstd·dz) − μ·Σ rstd·dz, one fp32 matmul).

On CUDA with Triton: the kernels below. Elsewhere the same computation in torch
(`norm_proj_reference`, the tests' oracle).
"""

from __future__ import annotations

import torch

from .kernels import tl, triton, use_kernel

PROGRAMS_PER_SM = 8


def norm_proj_reference(x: torch.Tensor, weight: torch.Tensor, eps: float, center: bool):
    """(z, mean, rstd) in torch: x (M, K) rows, weight (K, J)."""
    mean = x.mean(-1) if center else torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
    xc = x - mean[:, None]
    rstd = torch.rsqrt((xc * xc).mean(-1) + eps)
    return (xc * rstd[:, None]) @ weight, mean, rstd


def norm_proj_backward_reference(x, weight, mean, rstd, dz, center: bool) -> torch.Tensor:
    """The rows' gradient: the norm's backward of dz @ weightᵀ."""
    xhat = (x - mean[:, None]) * rstd[:, None]
    dxhat = dz @ weight.t()
    dx = dxhat - xhat * (dxhat * xhat).mean(-1, keepdim=True)
    if center:
        dx = dx - dxhat.mean(-1, keepdim=True)
    return dx * rstd[:, None]


if triton is not None:
    @triton.jit
    def _tile(x_ptr, tile, M, K, R: tl.constexpr, BLOCK_K: tl.constexpr):
        rows = tile * R + tl.arange(0, R)
        cols = tl.arange(0, BLOCK_K)
        rmask = rows < M
        mask = rmask[:, None] & (cols[None, :] < K)
        offs = rows[:, None].to(tl.int64) * K + cols[None, :]
        return rows, cols, rmask, mask, offs

    @triton.jit
    def _norm_proj_fwd_kernel(x_ptr, wt_ptr, z_ptr, mean_ptr, rstd_ptr, M, K, J, eps, n_programs, tiles_per_program,
                              CENTER: tl.constexpr, R: tl.constexpr, BLOCK_K: tl.constexpr):
        for it in range(0, tiles_per_program):
            rows, cols, rmask, mask, offs = _tile(x_ptr, tl.program_id(0) + it * n_programs, M, K, R, BLOCK_K)
            x = tl.load(x_ptr + offs, mask=mask, other=0.0)
            if CENTER:
                mean = tl.sum(x, axis=1) / K
                x = tl.where(mask, x - mean[:, None], 0.0)
            else:
                mean = tl.zeros([R], tl.float32)
            rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=1) / K + eps)
            xhat = x * rstd[:, None]
            for j in range(0, J):
                w = tl.load(wt_ptr + j * K + cols, mask=cols < K, other=0.0)
                tl.store(z_ptr + rows * J + j, tl.sum(xhat * w[None, :], axis=1), mask=rmask)
            tl.store(mean_ptr + rows, mean, mask=rmask)
            tl.store(rstd_ptr + rows, rstd, mask=rmask)

    @triton.jit
    def _norm_proj_bwd_kernel(x_ptr, wt_ptr, mean_ptr, rstd_ptr, dz_ptr, dx_ptr, M, K, J, n_programs,
                              tiles_per_program, CENTER: tl.constexpr, R: tl.constexpr, BLOCK_K: tl.constexpr):
        for it in range(0, tiles_per_program):
            rows, cols, rmask, mask, offs = _tile(x_ptr, tl.program_id(0) + it * n_programs, M, K, R, BLOCK_K)
            x = tl.load(x_ptr + offs, mask=mask, other=0.0)
            mean = tl.load(mean_ptr + rows, mask=rmask, other=0.0)
            rstd = tl.load(rstd_ptr + rows, mask=rmask, other=0.0)
            xhat = tl.where(mask, (x - mean[:, None]) * rstd[:, None], 0.0)
            dxhat = tl.zeros([R, BLOCK_K], tl.float32)
            for j in range(0, J):
                w = tl.load(wt_ptr + j * K + cols, mask=cols < K, other=0.0)
                dz = tl.load(dz_ptr + rows * J + j, mask=rmask, other=0.0)
                dxhat += dz[:, None] * w[None, :]
            dx = dxhat - xhat * (tl.sum(dxhat * xhat, axis=1) / K)[:, None]
            if CENTER:
                dx = dx - (tl.sum(dxhat, axis=1) / K)[:, None]
            tl.store(dx_ptr + offs, dx * rstd[:, None], mask=mask)



def _grid(x: torch.Tensor) -> tuple[int, int, int, int]:
    """(rows a tile, BLOCK_K, programs, tiles a program): about 4,096 elements a tile."""
    M, K = x.shape
    block_k = triton.next_power_of_2(K)
    r = max(1, 4096 // block_k)
    tiles = triton.cdiv(M, r)
    sms = torch.cuda.get_device_properties(x.device).multi_processor_count if x.is_cuda else 4
    programs = max(1, min(tiles, PROGRAMS_PER_SM * sms))
    return r, block_k, programs, triton.cdiv(tiles, programs)


@torch.library.custom_op("gptablate::norm_proj", mutates_args=())
def _norm_proj_op(x: torch.Tensor, weight: torch.Tensor, eps: float,
                  center: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not use_kernel(x):
        return norm_proj_reference(x, weight, eps, center)
    M, K = x.shape
    J = weight.shape[1]
    z = torch.empty(M, J, dtype=torch.float32, device=x.device)
    mean = torch.empty(M, dtype=torch.float32, device=x.device)
    rstd = torch.empty(M, dtype=torch.float32, device=x.device)
    r, block_k, programs, per_program = _grid(x)
    _norm_proj_fwd_kernel[(programs,)](x, weight.t().contiguous(), z, mean, rstd, M, K, J, eps, programs, per_program,
                                       CENTER=center, R=r, BLOCK_K=block_k, num_warps=8)
    return z, mean, rstd


@_norm_proj_op.register_fake
def _(x, weight, eps, center):
    M = x.shape[0]
    return x.new_empty(M, weight.shape[1]), x.new_empty(M), x.new_empty(M)


@torch.library.custom_op("gptablate::norm_proj_backward", mutates_args=())
def _norm_proj_backward_op(x: torch.Tensor, weight: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor,
                           dz: torch.Tensor, center: bool) -> torch.Tensor:
    if not use_kernel(x):
        return norm_proj_backward_reference(x, weight, mean, rstd, dz, center)
    M, K = x.shape
    dx = torch.empty_like(x)
    r, block_k, programs, per_program = _grid(x)
    _norm_proj_bwd_kernel[(programs,)](x, weight.t().contiguous(), mean, rstd, dz, dx, M, K, weight.shape[1],
                                       programs, per_program, CENTER=center, R=r, BLOCK_K=block_k, num_warps=8)
    return dx


@_norm_proj_backward_op.register_fake
def _(x, weight, mean, rstd, dz, center):
    return torch.empty_like(x)


def _setup_context(ctx, inputs, output):
    x, weight, _, center = inputs
    _, mean, rstd = output
    ctx.save_for_backward(x, weight, mean, rstd)
    ctx.center = center


def _backward(ctx, dz, _dmean, _drstd):
    x, weight, mean, rstd = ctx.saved_tensors
    dz = dz.contiguous()
    dx = _norm_proj_backward_op(x, weight, mean, rstd, dz, ctx.center) if ctx.needs_input_grad[0] else None
    dw = None
    if ctx.needs_input_grad[1]:
        s = dz * rstd[:, None]  # x̂ᵀ dz = xᵀ (rstd·dz) − μ·Σ (rstd·dz)
        dw = x.t() @ s
        if ctx.center:
            dw = dw - (mean[:, None] * s).sum(0)[None, :]
    return dx, dw, None, None


_norm_proj_op.register_autograd(_backward, setup_context=_setup_context)


def norm_proj(x: torch.Tensor, weight: torch.Tensor, eps: float, center: bool) -> torch.Tensor:
    """norm(x) @ weight for rows x (..., K), weight (K, J), in fp32; LayerNorm if center, else RMSNorm (no gain)."""
    lead = x.shape[:-1]
    with torch.autocast(x.device.type, enabled=False):
        z, _, _ = _norm_proj_op(x.reshape(-1, x.shape[-1]).float().contiguous(), weight.float().contiguous(),
                                float(eps), bool(center))
    return z.view(*lead, weight.shape[1])
