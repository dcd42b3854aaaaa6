"""The MLP's bias and tanh-GELU as one operation whose backward also sums the bias's gradient.

In the compiled step the GELU's backward was one kernel (the gradient of the pre-activation, from the
gradient of the activation and the saved pre-activation) and the c_fc bias's gradient, a column sum of
that gradient, another kernel that read both inputs again (profile in docs/performance.md). Here the
backward kernel writes the gradient and adds up its columns over each program's rows in the same pass;
torch sums the per-program partial sums. The forward adds the bias in fp32 to the matmul's bf16 output,
rather than in the matmul's epilogue before the rounding: gelu(bf16(acc) + b) for gelu(bf16(acc + b)),
a difference of bf16 rounding.

On CUDA with Triton, the kernels; elsewhere the same computation in torch (`bias_gelu_reference`),
which the tests hold to autograd. Used by addnorm.prenorm_walk.
"""

from __future__ import annotations

import math

import torch

from .kernels import kernel_op, sm_count, takes, tanh, tl, triton

K0 = math.sqrt(2.0 / math.pi)
K1 = 0.044715
# Tile (rows, columns) and warps of the forward; programs per SM (each a column block looping over its
# share of rows), tile and warps of the backward: the fastest of scripts/device/addnorm_bench.py's sweep at
# the 124M MLP (61,440 x 3,072) on an H100 (call Z; calls U, V and X found other shapes within 0.01 ms of these).
FWD_BLOCK_M, FWD_BLOCK_N, FWD_WARPS = 8, 512, 4
BWD_PER_SM, BWD_BLOCK_M, BWD_BLOCK_N, BWD_WARPS = 8, 4, 512, 4


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def bias_gelu_reference(pre: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """gelu_tanh(pre + bias) in fp32 (or wider), rounded to pre's dtype; differentiable."""
    return torch.nn.functional.gelu(_wide(pre) + _wide(bias), approximate="tanh").to(pre.dtype)


def bias_gelu_backward_reference(pre, bias, dact):
    """(dpre, dbias) by the hand-written rule the kernel follows."""
    u = _wide(pre) + _wide(bias)
    t = torch.tanh(K0 * (u + K1 * u * u * u))
    d = 0.5 * (1 + t) + 0.5 * u * (1 - t * t) * K0 * (1 + 3 * K1 * u * u)
    g = dact.to(u.dtype) * d
    return g.to(pre.dtype), g.sum(0).to(bias.dtype)


if triton is not None:
    @triton.jit
    def _gelu_tanh(u):
        """tanh(√(2/π)·(u + 0.044715·u³)): the tanh in gelu_tanh(u) = u/2·(1 + this) and in its derivative."""
        return tanh(0.7978845608028654 * (u + 0.044715 * u * u * u))

    @triton.jit
    def _bias_gelu_fwd_kernel(pre_ptr, b_ptr, act_ptr, M, N: tl.constexpr, BLOCK_M: tl.constexpr,
                              BLOCK_N: tl.constexpr):
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        mask = (rows < M)[:, None] & (cols < N)[None, :]
        offs = rows.to(tl.int64)[:, None] * N + cols[None, :]
        u = tl.load(pre_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        u += tl.load(b_ptr + cols, mask=cols < N, other=0.0)[None, :]
        act = 0.5 * u * (1.0 + _gelu_tanh(u))
        tl.store(act_ptr + offs, act.to(act_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _bias_gelu_bwd_kernel(pre_ptr, b_ptr, dact_ptr, dpre_ptr, part_ptr, M, n_row_programs, blocks_per_program,
                              N: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
        pid = tl.program_id(0)
        cols = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
        cmask = cols < N
        b = tl.load(b_ptr + cols, mask=cmask, other=0.0)
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)  # summed over its rows once, at the end
        for i in range(0, blocks_per_program):
            rows = (pid + i * n_row_programs) * BLOCK_M + tl.arange(0, BLOCK_M)
            mask = (rows < M)[:, None] & cmask[None, :]
            offs = rows.to(tl.int64)[:, None] * N + cols[None, :]
            u = tl.load(pre_ptr + offs, mask=mask, other=0.0).to(tl.float32) + b[None, :]
            t = _gelu_tanh(u)
            d = 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * u * u)
            g = tl.where(mask, tl.load(dact_ptr + offs, mask=mask, other=0.0).to(tl.float32) * d, 0.0)
            tl.store(dpre_ptr + offs, g.to(dpre_ptr.dtype.element_ty), mask=mask)
            acc += g
        tl.store(part_ptr + pid * N + cols, tl.sum(acc, axis=0), mask=cmask)


@kernel_op("gptablate::bias_gelu")
def _bias_gelu_op(pre: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    if not takes(pre):
        return bias_gelu_reference(pre, bias)
    M, N = pre.shape
    act = torch.empty_like(pre)
    grid = (triton.cdiv(M, FWD_BLOCK_M), triton.cdiv(N, FWD_BLOCK_N))
    torch.library.wrap_triton(_bias_gelu_fwd_kernel)[grid](pre, bias, act, M, N=N, BLOCK_M=FWD_BLOCK_M,
                                                           BLOCK_N=FWD_BLOCK_N, num_warps=FWD_WARPS)
    return act


@kernel_op("gptablate::bias_gelu_backward")
def _bias_gelu_backward_op(pre: torch.Tensor, bias: torch.Tensor, dact: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor]:
    if not takes(pre):
        return bias_gelu_backward_reference(pre, bias, dact)
    M, N = pre.shape
    dpre = torch.empty_like(pre)
    blocks = triton.cdiv(M, BWD_BLOCK_M)
    col_programs = triton.cdiv(N, BWD_BLOCK_N)
    row_programs = min(blocks, max(1, BWD_PER_SM * sm_count(pre) // col_programs))
    part = torch.empty(row_programs, N, dtype=torch.float32, device=pre.device)
    torch.library.wrap_triton(_bias_gelu_bwd_kernel)[(row_programs, col_programs)](
        pre, bias, dact, dpre, part, M, row_programs, triton.cdiv(blocks, row_programs), N=N, BLOCK_M=BWD_BLOCK_M,
        BLOCK_N=BWD_BLOCK_N, num_warps=BWD_WARPS)
    return dpre, part.sum(0).to(bias.dtype)


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs)


def _backward(ctx, dact):
    pre, bias = ctx.saved_tensors
    return _bias_gelu_backward_op(pre, bias, dact.contiguous())


_bias_gelu_op.register_autograd(_backward, setup_context=_setup_context)


def bias_gelu(pre: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """gelu_tanh(pre + bias) for pre (..., N), the matmul's output without its bias, in pre's dtype."""
    if bias is None:
        return torch.nn.functional.gelu(pre, approximate="tanh")
    shape = pre.shape
    with torch.autocast(pre.device.type, enabled=False):
        act = _bias_gelu_op(pre.reshape(-1, shape[-1]).contiguous(), _wide(bias))
    return act.view(shape)
