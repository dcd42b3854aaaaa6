"""Pre-LN's residual add and the next norm as one operation, forward and backward.

Between two sublayers of a Pre-LN GPT-2 the step does x' = x + out + b_proj (the fp32 residual
stream plus the sublayer's bf16 output and its projection's bias) and h = N(x') (LayerNorm or
RMSNorm, rounded to the autocast dtype for the next matmul). Compiled as written, inductor saved
the normalised x̂ in fp32 in the forward (one stream-sized write more), and in the backward left
the bf16 copy of the stream's gradient (the projection's input gradient) and the projection bias's
gradient, a column sum, to kernels of their own that read the stream's gradient again (profile in
docs/performance.md). Here:

- forward, one kernel, a few rows a program: reads x and out, writes x' and h, and the per-row
  mean and 1/std (x' is the next site's input anyway, so saving it costs nothing);
- backward, one kernel, each program looping over its share of rows: reads the incoming gradient
  of x', the gradient of h and x', writes the gradient of x (fp32) and of out (its dtype), and
  per-program column sums of the norm's gain and bias gradients and of the projection bias's
  gradient, which torch adds up over the programs.

The projection's bias joins here, in fp32, rather than in the matmul's epilogue before the bf16
rounding: x + bf16(acc) + b instead of x + bf16(acc + b), a difference of bf16 rounding; its
gradient is summed from the fp32 stream gradient rather than from its bf16 copy.

`add_norm(x, out, proj_bias, weight, bias, ..., extra)`: with `out` None it is the norm alone (the first
site's input; x' is x). `extra`, in out's dtype, is a second term added with out (LAuReL-LR's low-rank
path, x' = x + out + B(A x) + b_proj): read in the forward's pass, and given out's gradient (the same
tensor) in the backward, which costs the kernels nothing more. With `copy`, the forward also writes x' rounded
to h's dtype (what the next site's low-rank path A x' reads, so that no cast kernel reads the fp32 stream
again) and the backward adds that copy's gradient to x''s in its own pass (no separate add over the stream).
On CUDA with Triton, the kernels; elsewhere the same computation in torch (`add_norm_reference`,
`add_norm_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .kernels import autocast_dtype, kernel_op, sm_count, tl, triton, use_kernel

# Rows per program and warps of the forward; programs per SM, rows per iteration and warps of the backward:
# the fastest of scripts/device/addnorm_bench.py's sweep at the 124M stream (61,440 x 768) on an H100 (call Z).
# The backward's one-warp programs keep a row's sums inside a warp (no barriers, compiled for sm_90): 0.305 ms
# against 0.339 for the best multi-warp shape in the same sweep.
FWD_ROWS, FWD_WARPS = 2, 4
BWD_PER_SM, BWD_ROWS, BWD_WARPS = 16, 1, 1


def norm_stats(x: torch.Tensor, eps: float, center: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's mean (LayerNorm, center; else 0: RMSNorm) and 1/std about it, in x's dtype."""
    mean = x.mean(-1) if center else torch.zeros(x.shape[:-1], dtype=x.dtype, device=x.device)
    xc = x - mean[..., None]
    return mean, torch.rsqrt((xc * xc).mean(-1) + eps)


def add_norm_reference(x, out, proj_bias, weight, bias, eps: float, has_add: bool, center: bool, h_dtype,
                       extra=None):
    """(x', h, mean, rstd) in torch; differentiable (the tests' oracle). x' is x itself without an add."""
    xn = x + out.to(x.dtype) + (proj_bias.to(x.dtype) if proj_bias.numel() else 0) if has_add else x
    if has_add and extra is not None and extra.numel():
        xn = xn + extra.to(x.dtype)
    mean, rstd = norm_stats(xn, eps, center)
    xc = xn - mean[..., None]
    h = xc * rstd[..., None] * weight.to(xn.dtype)
    if bias.numel():
        h = h + bias.to(xn.dtype)
    return xn, h.to(h_dtype), mean, rstd


def add_norm_backward_reference(xn, mean, rstd, weight, dxn, dh, has_add: bool, center: bool, out_dtype, dxc=None):
    """(dx, dout, dweight, dbias, dproj_bias) by the hand-written rule the kernel follows."""
    D = xn.shape[-1]
    xhat = (xn - mean[..., None]) * rstd[..., None]
    dh = dh.to(xn.dtype)
    g = dh * weight.to(xn.dtype)
    dx = g - xhat * (g * xhat).sum(-1, keepdim=True) / D
    if center:
        dx = dx - g.sum(-1, keepdim=True) / D
    dx = dx * rstd[..., None]
    if dxn is not None:
        dx = dx + dxn
    if dxc is not None:
        dx = dx + dxc.to(dx.dtype)
    dout = dx.to(out_dtype, copy=True) if has_add else None
    return dx, dout, (dh * xhat).sum(0), dh.sum(0), dx.sum(0) if has_add else None


if triton is not None:
    @triton.jit
    def _add_norm_fwd_kernel(x_ptr, out_ptr, extra_ptr, pb_ptr, w_ptr, b_ptr, xn_ptr, h_ptr, mean_ptr, rstd_ptr,
                             xc_ptr, M, eps, HAS_ADD: tl.constexpr, HAS_EXTRA: tl.constexpr, HAS_PBIAS: tl.constexpr,
                             HAS_BIAS: tl.constexpr, HAS_COPY: tl.constexpr,
                             CENTER: tl.constexpr, D: tl.constexpr, ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
        rows = tl.program_id(0) * ROWS + tl.arange(0, ROWS)
        cols = tl.arange(0, BLOCK_D)
        rmask = rows < M
        cmask = cols < D
        mask = rmask[:, None] & cmask[None, :]
        offs = rows.to(tl.int64)[:, None] * D + cols[None, :]
        x = tl.load(x_ptr + offs, mask=mask, other=0.0)
        if HAS_ADD:
            x += tl.load(out_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            if HAS_EXTRA:
                x += tl.load(extra_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            if HAS_PBIAS:
                x += tl.load(pb_ptr + cols, mask=cmask, other=0.0)[None, :]
            tl.store(xn_ptr + offs, x, mask=mask)
        if HAS_COPY:
            tl.store(xc_ptr + offs, x.to(xc_ptr.dtype.element_ty), mask=mask)
        if CENTER:
            mean = tl.sum(x, axis=1) / D
            xc = tl.where(cmask[None, :], x - mean[:, None], 0.0)
        else:
            mean = tl.zeros([ROWS], tl.float32)
            xc = x
        rstd = 1.0 / tl.sqrt(tl.sum(xc * xc, axis=1) / D + eps)
        h = xc * rstd[:, None] * tl.load(w_ptr + cols, mask=cmask, other=0.0)[None, :]
        if HAS_BIAS:
            h += tl.load(b_ptr + cols, mask=cmask, other=0.0)[None, :]
        tl.store(h_ptr + offs, h.to(h_ptr.dtype.element_ty), mask=mask)
        tl.store(mean_ptr + rows, mean, mask=rmask)
        tl.store(rstd_ptr + rows, rstd, mask=rmask)

    @triton.jit
    def _add_norm_bwd_kernel(xn_ptr, mean_ptr, rstd_ptr, w_ptr, dxn_ptr, dxc_ptr, dh_ptr, dx_ptr, dout_ptr, part_ptr,
                             M, n_programs, blocks_per_program, HAS_DXN: tl.constexpr, HAS_DXC: tl.constexpr,
                             HAS_ADD: tl.constexpr,
                             CENTER: tl.constexpr, D: tl.constexpr, ROWS: tl.constexpr, BLOCK_D: tl.constexpr):
        pid = tl.program_id(0)
        cols = tl.arange(0, BLOCK_D)
        cmask = cols < D
        w = tl.load(w_ptr + cols, mask=cmask, other=0.0)
        acc_dw = tl.zeros([BLOCK_D], tl.float32)
        acc_db = tl.zeros([BLOCK_D], tl.float32)
        acc_dpb = tl.zeros([BLOCK_D], tl.float32)
        for i in range(0, blocks_per_program):
            rows = (pid + i * n_programs) * ROWS + tl.arange(0, ROWS)
            rmask = rows < M
            mask = rmask[:, None] & cmask[None, :]
            offs = rows.to(tl.int64)[:, None] * D + cols[None, :]
            mean = tl.load(mean_ptr + rows, mask=rmask, other=0.0)
            rstd = tl.load(rstd_ptr + rows, mask=rmask, other=0.0)
            xhat = tl.where(mask, (tl.load(xn_ptr + offs, mask=mask, other=0.0) - mean[:, None]) * rstd[:, None], 0.0)
            dh = tl.load(dh_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            g = dh * w[None, :]
            dx = g - xhat * (tl.sum(g * xhat, axis=1) / D)[:, None]
            if CENTER:
                dx -= (tl.sum(g, axis=1) / D)[:, None]
            dx *= rstd[:, None]
            if HAS_DXN:
                dx += tl.load(dxn_ptr + offs, mask=mask, other=0.0)
            if HAS_DXC:
                dx += tl.load(dxc_ptr + offs, mask=mask, other=0.0).to(tl.float32)
            tl.store(dx_ptr + offs, dx, mask=mask)
            acc_dw += tl.sum(dh * xhat, axis=0)
            acc_db += tl.sum(dh, axis=0)
            if HAS_ADD:
                tl.store(dout_ptr + offs, dx.to(dout_ptr.dtype.element_ty), mask=mask)
                acc_dpb += tl.sum(dx, axis=0)
        part = part_ptr + pid * 3 * D + cols
        tl.store(part, acc_dw, mask=cmask)
        tl.store(part + D, acc_db, mask=cmask)
        tl.store(part + 2 * D, acc_dpb, mask=cmask)


def _kernels_for(x: torch.Tensor) -> bool:
    return use_kernel(x) and x.shape[-1] <= 4096


@kernel_op("gptablate::add_norm")
def _add_norm_op(x: torch.Tensor, out: torch.Tensor, extra: torch.Tensor, proj_bias: torch.Tensor,
                 weight: torch.Tensor, bias: torch.Tensor, eps: float, has_add: bool, center: bool,
                 h_dtype: torch.dtype, copy: bool
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if not _kernels_for(x):
        xn, h, mean, rstd = add_norm_reference(x, out, proj_bias, weight, bias, eps, has_add, center, h_dtype,
                                               extra)
        return ((xn if has_add else x.new_zeros(0)), h, mean, rstd,
                xn.to(h_dtype, copy=True) if copy else x.new_zeros(0))
    M, D = x.shape
    xn = torch.empty_like(x) if has_add else x.new_zeros(0)
    h = torch.empty(M, D, dtype=h_dtype, device=x.device)
    mean, rstd = x.new_empty(M), x.new_empty(M)
    xc = torch.empty(M, D, dtype=h_dtype, device=x.device) if copy else x.new_zeros(0)
    torch.library.wrap_triton(_add_norm_fwd_kernel)[(triton.cdiv(M, FWD_ROWS),)](
        x, out, extra, proj_bias, weight, bias, xn, h, mean, rstd, xc, M, eps, HAS_ADD=has_add,
        HAS_EXTRA=extra.numel() > 0, HAS_PBIAS=proj_bias.numel() > 0, HAS_BIAS=bias.numel() > 0, HAS_COPY=copy,
        CENTER=center, D=D, ROWS=FWD_ROWS, BLOCK_D=triton.next_power_of_2(D), num_warps=FWD_WARPS)
    return xn, h, mean, rstd, xc


@kernel_op("gptablate::add_norm_backward")
def _add_norm_backward_op(xn: torch.Tensor, mean: torch.Tensor, rstd: torch.Tensor, weight: torch.Tensor,
                          dxn: torch.Tensor, dxc: torch.Tensor, dh: torch.Tensor, has_add: bool, center: bool,
                          out_dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dx, dout or empty, sums (3, D): the gradients of the norm's gain and bias and of the projection bias)."""
    M, D = xn.shape
    if not _kernels_for(xn):
        dx, dout, dw, db, dpb = add_norm_backward_reference(xn, mean, rstd, weight, dxn if dxn.numel() else None,
                                                            dh, has_add, center, out_dtype,
                                                            dxc if dxc.numel() else None)
        sums = torch.stack((dw, db, dpb if dpb is not None else torch.zeros_like(dw)))
        return dx, (dout if has_add else xn.new_zeros(0)), sums
    dx = torch.empty_like(xn)
    dout = torch.empty(M, D, dtype=out_dtype, device=xn.device) if has_add else xn.new_zeros(0)
    rows = BWD_ROWS
    blocks = triton.cdiv(M, rows)
    programs = min(blocks, BWD_PER_SM * sm_count(xn))
    part = xn.new_empty(programs, 3, D)
    torch.library.wrap_triton(_add_norm_bwd_kernel)[(programs,)](
        xn, mean, rstd, weight, dxn, dxc, dh, dx, dout if has_add else dx, part, M, programs,
        triton.cdiv(blocks, programs), HAS_DXN=dxn.numel() > 0, HAS_DXC=dxc.numel() > 0, HAS_ADD=has_add,
        CENTER=center, D=D, ROWS=rows, BLOCK_D=triton.next_power_of_2(D), num_warps=BWD_WARPS)
    return dx, dout, part.sum(0)


def _setup_context(ctx, inputs, output):
    x, out, extra, proj_bias, weight, bias, eps, has_add, center, h_dtype, copy = inputs
    xn, _, mean, rstd, _ = output
    ctx.save_for_backward(xn if has_add else x, mean, rstd, weight)
    ctx.flags = (has_add, center, out.dtype, extra.numel() > 0, proj_bias.numel() > 0, bias.numel() > 0, h_dtype)


def _backward(ctx, dxn, dh, _dmean, _drstd, dxc):
    xn, mean, rstd, weight = ctx.saved_tensors
    has_add, center, out_dtype, has_extra, has_pbias, has_bias, h_dtype = ctx.flags
    dxn = dxn.contiguous() if (has_add and dxn is not None) else xn.new_zeros(0)
    dh = torch.zeros(xn.shape, dtype=h_dtype, device=xn.device) if dh is None else dh
    dxc = dxc.contiguous() if dxc is not None and dxc.numel() else xn.new_zeros(0)
    dx, dout, sums = _add_norm_backward_op(xn, mean, rstd, weight, dxn, dxc, dh.contiguous(), has_add, center,
                                           out_dtype)
    return (dx, dout if has_add else None, dout if has_extra else None, sums[2] if has_add and has_pbias else None,
            sums[0], sums[1] if has_bias else None, None, None, None, None, None)


_add_norm_op.register_autograd(_backward, setup_context=_setup_context)


def add_norm(x: torch.Tensor, out: torch.Tensor | None, proj_bias: torch.Tensor | None, weight: torch.Tensor,
             bias: torch.Tensor | None, eps: float, center: bool, h_dtype: torch.dtype,
             extra: torch.Tensor | None = None, copy: bool = False):
    """(x', h): x' = x + out + extra + proj_bias (x itself when `out` is None), h = N(x') in h_dtype. x, x' (M, D).
    With `copy`, (x', h, x' in h_dtype)."""
    has_add = out is not None
    if extra is not None and not has_add:
        raise ValueError("add_norm: `extra` is added with `out`; give both or neither")
    empty = x.new_zeros(0)
    with torch.autocast(x.device.type, enabled=False):
        xn, h, _, _, xc = _add_norm_op(x.contiguous(), out.contiguous() if has_add else empty,
                                       extra.to(out.dtype).contiguous() if extra is not None else empty,
                                       proj_bias.to(x.dtype) if (has_add and proj_bias is not None) else empty,
                                       weight.to(x.dtype), bias.to(x.dtype) if bias is not None else empty,
                                       float(eps), has_add, center, h_dtype, copy)
    return ((xn if has_add else x), h, xc) if copy else ((xn if has_add else x), h)


def prenorm_walk(x: torch.Tensor, blocks, ln_f, ctx: dict, center: bool, addend=None, block_fn=None,
                 entered=None) -> torch.Tensor:
    """A Pre-LN GPT's blocks and final norm over the embedding output x (B, T, D), each residual add fused
    with the norm after it: returns ln_f's output. The same function as the blocks' own forward (with the
    projection biases added in fp32, see above); dropout must be 0 (it is not applied). The sublayers run
    as their `fused` flags say (GPT.fused_kernels sets them with this walk). `addend(k, x)`, where given, is
    a term residual site k adds besides its sublayer's output, from the stream before the site rounded to h's
    dtype (add_norm's copy, as autocast would round it for a matmul; Residual.prenorm_addend).
    Without an addend: `block_fn` runs each block, `prenorm_block` or a compiled copy of it (one graph for all the
    blocks: GPT.compile_blocks), and `entered`, where given, is prenorm_enter's (stream, h), computed already."""
    B, T, D = x.shape
    h_dtype = autocast_dtype(x)
    norms = [n for block in blocks for n in (block.ln_1, block.ln_2)] + [ln_f]
    if addend is None:
        stream, h = entered if entered is not None else prenorm_enter(x, norms[0], center)
        block_fn = block_fn or prenorm_block
        for i, block in enumerate(blocks):
            stream, h = block_fn(stream, h, block, norms[2 * i + 1], norms[2 * i + 2], ctx, center, h_dtype)
        return h.view(B, T, D)
    if block_fn is not None or entered is not None:
        raise ValueError("prenorm_walk: block_fn and entered are for blocks without an addend")

    def step(stream, copy, out, proj_bias, k):
        """Site k - 1's add (k >= 1; its addend from `copy`, the stream before it in h's dtype) and norm k: the new
        stream, h and (where a later site's addend will read it) the new stream's copy."""
        extra = addend(k - 1, copy) if out is not None else None
        result = _site(stream, out, proj_bias, extra, norms[k], center, h_dtype, copy=k < len(norms) - 1)
        return result if len(result) == 3 else (*result, None)

    stream, h, copy = step(x.reshape(B * T, D), None, None, None, 0)
    for i, block in enumerate(blocks):
        out = torch.nn.functional.linear(block.attn.mix(h.view(B, T, D), ctx), block.attn.c_proj.weight)
        stream, h, copy = step(stream, copy, out.reshape(B * T, D), block.attn.c_proj.bias, 2 * i + 1)
        out = torch.nn.functional.linear(block.mlp.inner(h.view(B, T, D)), block.mlp.c_proj.weight)
        stream, h, copy = step(stream, copy, out.reshape(B * T, D), block.mlp.c_proj.bias, 2 * i + 2)
    return h.view(B, T, D)


def prenorm_enter(x: torch.Tensor, norm, center: bool):
    """The walk's first site, the norm alone over the embedding output x (B, T, D): (stream, h), both (B·T, D)."""
    B, T, D = x.shape
    return _site(x.reshape(B * T, D), None, None, None, norm, center, autocast_dtype(x))


def _site(stream, out, proj_bias, extra, norm, center: bool, h_dtype, copy: bool = False):
    """One residual site: add_norm with `norm`'s parameters."""
    return add_norm(stream, out, proj_bias, norm.weight, getattr(norm, "bias", None), 1e-5, center, h_dtype, extra,
                    copy)


def prenorm_block(stream, h, block, norm_attn, norm_mlp, ctx: dict, center: bool, h_dtype):
    """One Pre-LN block on the vanilla residual as prenorm_walk runs it: (stream, h) of the previous site (B·T, D)
    to those after the block's two sites, whose norms are `norm_attn` (the block's ln_2) and `norm_mlp` (the
    next block's ln_1, or ln_f). No block index enters, so that one compiled graph serves every block."""
    B, T, D = ctx["x0"].shape
    out = torch.nn.functional.linear(block.attn.mix(h.view(B, T, D), ctx), block.attn.c_proj.weight)
    stream, h = _site(stream, out.reshape(B * T, D), block.attn.c_proj.bias, None, norm_attn, center, h_dtype)
    out = torch.nn.functional.linear(block.mlp.inner(h.view(B, T, D)), block.mlp.c_proj.weight)
    return _site(stream, out.reshape(B * T, D), block.mlp.c_proj.bias, None, norm_mlp, center, h_dtype)
