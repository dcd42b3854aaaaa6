"""Attention's fused q/k/v projection whose backward joins the three gradients and sums the bias's in one pass.

The forward is c_attn as always (one matmul, the bias in its epilogue), its output split into q, k and v.
In the compiled step the backward of that split was a concatenation of the gradients of q, k and v
(cuDNN's attention writes them apart), 0.18 ms a layer, and the bias's gradient a column sum that read the
concatenated gradient again, 0.10 ms a layer (call U's profile, docs/performance.md). Here one kernel
writes the joined gradient and sums each program's columns in the same pass; torch adds up the per-program
sums. The bias's gradient is summed in fp32 and not rounded to the autocast dtype on the way (the plain
path rounds it to bf16 before the fp32 parameter takes it); nothing else differs from c_attn's own
forward and backward.

`qkv_projection(x, weight, bias)` -> (q, k, v), each (B, T, C), under autocast as `F.linear` would run.
On CUDA with Triton, the kernel; elsewhere the same in torch (`qkv_join_reference`).
"""

from __future__ import annotations

import torch

from .kernels import autocast_dtype, kernel_op, sm_count, takes, tl, triton

# Programs per SM (each a column block looping over its share of rows), rows a tile, columns a tile, warps: the
# fastest of scripts/device/qkvjoin_bench.py's sweep at the 124M attention (61,440 x 768) on an H100 (call AB:
# 0.229 ms, 2.5 TB/s; the 28 shapes tried span 0.229-0.405 ms).
JOIN_PER_SM, JOIN_ROWS, JOIN_BLOCK_C, JOIN_WARPS = 4, 4, 256, 1


def qkv_join_reference(dq, dk, dv, with_sum: bool):
    """(the gradients side by side (M, 3C), their column sums in fp32 (or wider), or an empty tensor)."""
    joined = torch.cat((dq, dk, dv), dim=-1)
    wide = _sum_dtype(dq)
    return joined, (joined.to(wide).sum(0) if with_sum else joined.new_zeros(0, dtype=wide))


def _sum_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.promote_types(t.dtype, torch.float32)


if triton is not None:
    @triton.jit
    def _qkv_join_kernel(dq_ptr, dk_ptr, dv_ptr, out_ptr, part_ptr, M, n_programs, blocks_per_program,
                         C: tl.constexpr, SUM: tl.constexpr, ROWS: tl.constexpr, BLOCK_C: tl.constexpr):
        pid = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
        cmask = cols < C
        acc_q = tl.zeros([ROWS, BLOCK_C], tl.float32)
        acc_k = tl.zeros([ROWS, BLOCK_C], tl.float32)
        acc_v = tl.zeros([ROWS, BLOCK_C], tl.float32)
        for i in range(0, blocks_per_program):
            rows = (pid + i * n_programs) * ROWS + tl.arange(0, ROWS)
            mask = (rows < M)[:, None] & cmask[None, :]
            src = rows.to(tl.int64)[:, None] * C + cols[None, :]
            dst = rows.to(tl.int64)[:, None] * (3 * C) + cols[None, :]
            gq = tl.load(dq_ptr + src, mask=mask, other=0.0)
            gk = tl.load(dk_ptr + src, mask=mask, other=0.0)
            gv = tl.load(dv_ptr + src, mask=mask, other=0.0)
            tl.store(out_ptr + dst, gq, mask=mask)
            tl.store(out_ptr + dst + C, gk, mask=mask)
            tl.store(out_ptr + dst + 2 * C, gv, mask=mask)
            if SUM:
                acc_q += gq.to(tl.float32)
                acc_k += gk.to(tl.float32)
                acc_v += gv.to(tl.float32)
        if SUM:
            part = part_ptr + pid * 3 * C + cols
            tl.store(part, tl.sum(acc_q, axis=0), mask=cmask)
            tl.store(part + C, tl.sum(acc_k, axis=0), mask=cmask)
            tl.store(part + 2 * C, tl.sum(acc_v, axis=0), mask=cmask)


@kernel_op("gptablate::qkv_join")
def _qkv_join_op(dq: torch.Tensor, dk: torch.Tensor, dv: torch.Tensor, with_sum: bool
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    if not takes(dq):
        return qkv_join_reference(dq, dk, dv, with_sum)
    M, C = dq.shape
    joined = dq.new_empty(M, 3 * C)
    blocks = triton.cdiv(M, JOIN_ROWS)
    programs = min(blocks, JOIN_PER_SM * sm_count(dq))
    part = dq.new_empty((programs, 3 * C) if with_sum else (0,), dtype=torch.float32)
    torch.library.wrap_triton(_qkv_join_kernel)[(programs, triton.cdiv(C, JOIN_BLOCK_C))](
        dq, dk, dv, joined, part, M, programs, triton.cdiv(blocks, programs), C=C, SUM=with_sum, ROWS=JOIN_ROWS,
        BLOCK_C=JOIN_BLOCK_C, num_warps=JOIN_WARPS)
    return joined, (part.sum(0) if with_sum else part)


class _QKVProjection(torch.autograd.Function):
    """x in the compute dtype, the weight and bias in their own (cast to it here, as autocast would)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        w = weight.to(x.dtype)
        qkv = torch.nn.functional.linear(x, w, bias.to(x.dtype) if bias is not None else None)
        ctx.save_for_backward(x, w)
        ctx.dtypes = (weight.dtype, bias.dtype if bias is not None else None)
        return qkv.chunk(3, dim=-1)

    @staticmethod
    def backward(ctx, dq, dk, dv):
        x, w = ctx.saved_tensors
        w_dtype, b_dtype = ctx.dtypes
        *lead, C = x.shape
        dq, dk, dv = (x.new_zeros(x.numel() // C, C) if g is None else g.reshape(-1, C).contiguous()
                      for g in (dq, dk, dv))
        joined, sums = _qkv_join_op(dq, dk, dv, b_dtype is not None)
        dx = (joined @ w).view(*lead, C)
        dw = (joined.t() @ x.reshape(-1, C)).to(w_dtype)
        return dx, dw, sums.to(b_dtype) if b_dtype is not None else None


def qkv_projection(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None):
    """(q, k, v) = F.linear(x, weight, bias).split(C, -1), in the autocast dtype where autocast is on."""
    dtype = autocast_dtype(x)
    with torch.autocast(x.device.type, enabled=False):
        return _QKVProjection.apply(x.to(dtype), weight, bias)
