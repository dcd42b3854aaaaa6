"""The MLP's GELU inside its matmuls: c_fc's bias and GELU in the epilogue of c_fc's matmul, and the GELU's
derivative in the epilogue of the matmul that carries the gradient back through c_proj.

With bias_gelu (biasgelu.py) the MLP's forward is a cuBLAS matmul writing the pre-activation, then a kernel
reading it and writing the activation; its backward a cuBLAS matmul writing the activation's gradient
(dY · W_proj), then a kernel reading that and the pre-activation and writing the pre-activation's gradient.
Each of those (61,440 x 3,072) bf16 tensors is 377 MB a layer at the 124M step: five passes of them around
the two matmuls, where the matmuls could do the element-wise work on their accumulators before writing
(two passes: the forward writes the activation and the pre-activation the backward needs, the backward
reads that and writes the pre-activation's gradient). Here the two matmuls are Triton kernels with those
epilogues; the other four matmuls of the MLP (c_proj's forward, the two weight gradients, the input's
gradient) stay cuBLAS's, called from the operation.

`mlp(x, w_fc, b_fc, w_proj)` is c_proj(gelu_tanh(c_fc(x))) without c_proj's bias (the Pre-LN walk adds it
with the residual, addnorm.py), one custom op forward and backward. Numerics: the bias joins the fp32
accumulator before the rounding (bias_gelu adds it to the rounded matmul output), the pre-activation kept for
the backward is bf16(acc + b), and the activation's gradient is not rounded before the GELU's derivative
multiplies it (bias_gelu reads it rounded to bf16): differences of one bf16 rounding. c_fc's bias gradient
is the column sum of the unrounded pre-activation gradient, per program, added up in torch.

On CUDA with Triton, the kernels; elsewhere the same computation in torch (`mlp_reference`,
`mlp_backward_reference`), which the tests hold to autograd.
"""

from __future__ import annotations

import torch

from .biasgelu import K0, K1
from .kernels import sm_count, takes, tl, triton

if triton is not None:
    from triton.tools.tensor_descriptor import TensorDescriptor

# (BLOCK_M, BLOCK_N, BLOCK_K, GROUP_M, warps, stages) of the forward's and the backward's matmul kernels.
TUNING = {"up": ("tma", 128, 256, 64, 8, 8, 3), "down": ("tma", 128, 256, 64, 8, 8, 3)}


def _gelu_parts(u: torch.Tensor):
    t = torch.tanh(K0 * (u + K1 * u * u * u))
    return 0.5 * u * (1 + t), 0.5 * (1 + t) + 0.5 * u * (1 - t * t) * K0 * (1 + 3 * K1 * u * u)


def mlp_reference(x, w_fc, b_fc, w_proj):
    """(y, pre, act): pre = bf16(x W_fcᵀ + b_fc) computed wide, act = gelu_tanh of the wide value, y = act W_projᵀ."""
    wide = torch.promote_types(x.dtype, torch.float32)
    u = x.to(wide) @ w_fc.to(wide).t() + b_fc.to(wide)
    act = _gelu_parts(u)[0].to(x.dtype)
    return act @ w_proj.to(x.dtype).t(), u.to(x.dtype), act


def mlp_backward_reference(x, w_fc, w_proj, pre, act, dy):
    """(dx, dw_fc, db_fc, dw_proj) by the rule the kernels follow: the activation's gradient dY W_proj stays wide
    until the GELU's derivative (at the saved pre-activation) multiplies it."""
    wide = torch.promote_types(x.dtype, torch.float32)
    g = (dy.to(wide) @ w_proj.to(wide)) * _gelu_parts(pre.to(wide))[1]
    dpre = g.to(x.dtype)
    return dpre @ w_fc.to(x.dtype), dpre.t() @ x, g.sum(0), dy.t() @ act


if triton is not None:
    from .biasgelu import _gelu_tanh

    @triton.jit
    def _tile_of(pid, M, N, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, GROUP_M: tl.constexpr):
        """Program pid's (row block, column block), GROUP_M row blocks walked column by column so that a wave of
        programs shares its rows of A and its columns of B in L2."""
        blocks_m, blocks_n = tl.cdiv(M, BLOCK_M), tl.cdiv(N, BLOCK_N)
        width = GROUP_M * blocks_n
        first = (pid // width) * GROUP_M
        rows = tl.minimum(blocks_m - first, GROUP_M)
        return first + (pid % width) % rows, (pid % width) // rows

    @triton.jit
    def _matmul(a_ptr, b_ptr, pm, pn, M, N, K: tl.constexpr, sbk, sbn,
                BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
        """The fp32 (BLOCK_M, BLOCK_N) tile (pm, pn) of A B: A (M, K) row-major, B's element (k, n) at
        k·sbk + n·sbn; K a multiple of BLOCK_K. Returns the tile and its row and column indices."""
        rm = pm * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pn * BLOCK_N + tl.arange(0, BLOCK_N)
        rk = tl.arange(0, BLOCK_K)
        a = a_ptr + rm.to(tl.int64)[:, None] * K + rk[None, :]
        b = b_ptr + rk[:, None] * sbk + rn[None, :] * sbn
        am, bm = (rm < M)[:, None], (rn < N)[None, :]
        acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
        for _ in range(0, K // BLOCK_K):
            acc = tl.dot(tl.load(a, mask=am, other=0.0), tl.load(b, mask=bm, other=0.0), acc)
            a += BLOCK_K
            b += BLOCK_K * sbk
        return acc, rm, rn

    @triton.jit
    def _up_kernel(x_ptr, w_ptr, b_ptr, act_ptr, pre_ptr, M, N, K: tl.constexpr,
                   BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        """act = gelu_tanh(x W_fcᵀ + b), pre = x W_fcᵀ + b, both rounded once, from the fp32 accumulator."""
        pm, pn = _tile_of(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
        acc, rm, rn = _matmul(x_ptr, w_ptr, pm, pn, M, N, K, 1, K, BLOCK_M, BLOCK_N, BLOCK_K)
        u = acc + tl.load(b_ptr + rn, mask=rn < N, other=0.0)[None, :]
        t = _gelu_tanh(u)
        offs = rm.to(tl.int64)[:, None] * N + rn[None, :]
        mask = (rm < M)[:, None] & (rn < N)[None, :]
        tl.store(pre_ptr + offs, u.to(pre_ptr.dtype.element_ty), mask=mask)
        tl.store(act_ptr + offs, (0.5 * u * (1.0 + t)).to(act_ptr.dtype.element_ty), mask=mask)

    @triton.jit
    def _down_kernel(dy_ptr, w_ptr, pre_ptr, dpre_ptr, part_ptr, M, N, K: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
        """dpre = (dY W_proj) ⊙ gelu_tanh'(pre), and its column sums over the program's rows (c_fc's bias gradient,
        per row block)."""
        pm, pn = _tile_of(tl.program_id(0), M, N, BLOCK_M, BLOCK_N, GROUP_M)
        acc, rm, rn = _matmul(dy_ptr, w_ptr, pm, pn, M, N, K, N, 1, BLOCK_M, BLOCK_N, BLOCK_K)
        offs = rm.to(tl.int64)[:, None] * N + rn[None, :]
        mask = (rm < M)[:, None] & (rn < N)[None, :]
        u = tl.load(pre_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        t = _gelu_tanh(u)
        d = 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * u * u)
        g = tl.where(mask, acc * d, 0.0)
        tl.store(dpre_ptr + offs, g.to(dpre_ptr.dtype.element_ty), mask=mask)
        tl.store(part_ptr + pm.to(tl.int64) * N + rn, tl.sum(g, axis=0), mask=rn < N)


    @triton.jit
    def _up_tma_kernel(x_desc, w_desc, act_desc, pre_desc, b_ptr, M, N, K: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                       PROGRAMS: tl.constexpr, FLATTEN: tl.constexpr):
        """_up_kernel's work, persistent (PROGRAMS programs walking the tiles) with TMA loads and stores."""
        tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
        for tile in tl.range(tl.program_id(0), tiles, PROGRAMS, flatten=FLATTEN):
            pm, pn = _tile_of(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
            om, on = pm * BLOCK_M, pn * BLOCK_N
            acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
            for k in range(0, K // BLOCK_K):
                acc = tl.dot(x_desc.load([om, k * BLOCK_K]), w_desc.load([on, k * BLOCK_K]).T, acc)
            rn = on + tl.arange(0, BLOCK_N)
            u = acc + tl.load(b_ptr + rn, mask=rn < N, other=0.0)[None, :]
            t = _gelu_tanh(u)
            pre_desc.store([om, on], u.to(pre_desc.dtype))
            act_desc.store([om, on], (0.5 * u * (1.0 + t)).to(act_desc.dtype))

    @triton.jit
    def _down_tma_kernel(dy_desc, w_desc, pre_desc, dpre_desc, part_ptr, M, N, K: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
                         PROGRAMS: tl.constexpr, FLATTEN: tl.constexpr):
        """_down_kernel's work, persistent with TMA loads and stores."""
        tiles = tl.cdiv(M, BLOCK_M) * tl.cdiv(N, BLOCK_N)
        for tile in tl.range(tl.program_id(0), tiles, PROGRAMS, flatten=FLATTEN):
            pm, pn = _tile_of(tile, M, N, BLOCK_M, BLOCK_N, GROUP_M)
            om, on = pm * BLOCK_M, pn * BLOCK_N
            acc = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
            for k in range(0, K // BLOCK_K):
                acc = tl.dot(dy_desc.load([om, k * BLOCK_K]), w_desc.load([k * BLOCK_K, on]), acc)
            u = pre_desc.load([om, on]).to(tl.float32)  # zeros past the last row: g is 0 there
            t = _gelu_tanh(u)
            d = 0.5 * (1.0 + t) + 0.5 * u * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * u * u)
            g = acc * d
            dpre_desc.store([om, on], g.to(dpre_desc.dtype))
            rn = on + tl.arange(0, BLOCK_N)
            tl.store(part_ptr + pm.to(tl.int64) * N + rn, tl.sum(g, axis=0), mask=rn < N)


def _launch(key: str, plain, tma, tensors, blocks, others, M: int, N: int, K: int):
    """One of the two kernels by TUNING[key]: `tensors` are passed as they are to the plain kernel and as TMA
    descriptors of the `blocks` ("m", "n", "k": their block's dimensions) to the TMA one."""
    kind, bm, bn, bk, group, warps, stages = TUNING[key]
    tiles = triton.cdiv(M, bm) * triton.cdiv(N, bn)
    shape = dict(K=K, BLOCK_M=bm, BLOCK_N=bn, BLOCK_K=bk, GROUP_M=group, num_warps=warps, num_stages=stages)
    if kind == "plain":
        plain[(tiles,)](*tensors, *others, M, N, **shape)
        return
    size = {"m": bm, "n": bn, "k": bk}
    descs = [TensorDescriptor.from_tensor(t, [size[d] for d in block]) for t, block in zip(tensors, blocks)]
    programs = min(tiles, sm_count(tensors[0]))
    tma[(programs,)](*descs, *others, M, N, PROGRAMS=programs, FLATTEN=kind == "tma-flat", **shape)


def up(x: torch.Tensor, w_fc: torch.Tensor, b_fc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(act, pre) of the up projection by the kernel: x (M, C), w_fc (H, C) in x's dtype, b_fc (H,) fp32."""
    M, K = x.shape
    N = w_fc.shape[0]
    act, pre = x.new_empty(M, N), x.new_empty(M, N)
    if TUNING["up"][0] == "plain":
        _launch("up", _up_kernel, None, (x, w_fc), None, (b_fc, act, pre), M=M, N=N, K=K)
    else:
        _launch("up", None, _up_tma_kernel, (x, w_fc, act, pre), ("mk", "nk", "mn", "mn"), (b_fc,), M=M, N=N, K=K)
    return act, pre


def down(dy: torch.Tensor, w_proj: torch.Tensor, pre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(dpre, db_fc) by the kernel: dy (M, C), w_proj (C, H) in dy's dtype, pre (M, H)."""
    M, K = dy.shape
    N = w_proj.shape[1]
    dpre = torch.empty_like(pre)
    part = torch.empty(triton.cdiv(M, TUNING["down"][1]), N, dtype=torch.float32, device=dy.device)
    if TUNING["down"][0] == "plain":
        _launch("down", _down_kernel, None, (dy, w_proj, pre), None, (dpre, part), M=M, N=N, K=K)
    else:
        _launch("down", None, _down_tma_kernel, (dy, w_proj, pre, dpre), ("mk", "kn", "mn", "mn"), (part,),
                M=M, N=N, K=K)
    return dpre, part.sum(0)


def fits(x: torch.Tensor, w_fc: torch.Tensor) -> bool:
    """Whether the kernels take this MLP: on a GPU (or the interpreter) in bf16 or fp16, the width a multiple of
    both kernels' BLOCK_K (their K loops have no mask)."""
    C = x.shape[-1]
    return (takes(x) and x.dtype in (torch.bfloat16, torch.float16)
            and C % TUNING["up"][3] == 0 and w_fc.shape[0] % 16 == 0 and C % TUNING["down"][3] == 0)


@torch.library.custom_op("gptablate::mlp", mutates_args=())
def _mlp_op(x: torch.Tensor, w_fc: torch.Tensor, b_fc: torch.Tensor, w_proj: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    if not fits(x, w_fc):
        return mlp_reference(x, w_fc, b_fc, w_proj)
    act, pre = up(x, w_fc, b_fc)
    return act @ w_proj.t(), pre, act


@_mlp_op.register_fake
def _(x, w_fc, b_fc, w_proj):
    M, H = x.shape[0], w_fc.shape[0]
    return x.new_empty(M, w_proj.shape[0]), x.new_empty(M, H), x.new_empty(M, H)


@torch.library.custom_op("gptablate::mlp_backward", mutates_args=())
def _mlp_backward_op(x: torch.Tensor, w_fc: torch.Tensor, w_proj: torch.Tensor, pre: torch.Tensor, act: torch.Tensor,
                     dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    if not fits(x, w_fc):
        return mlp_backward_reference(x, w_fc, w_proj, pre, act, dy)
    dpre, db_fc = down(dy, w_proj, pre)
    return dpre @ w_fc, dpre.t() @ x, db_fc, dy.t() @ act


@_mlp_backward_op.register_fake
def _(x, w_fc, w_proj, pre, act, dy):
    return torch.empty_like(x), torch.empty_like(w_fc), w_fc.new_empty(w_fc.shape[0], dtype=torch.promote_types(x.dtype, torch.float32)), \
        torch.empty_like(w_proj)


def _setup_context(ctx, inputs, output):
    x, w_fc, _, w_proj = inputs
    _, pre, act = output
    ctx.save_for_backward(x, w_fc, w_proj, pre, act)


def _backward(ctx, dy, _dpre, _dact):
    x, w_fc, w_proj, pre, act = ctx.saved_tensors
    dx, dw_fc, db_fc, dw_proj = _mlp_backward_op(x, w_fc, w_proj, pre, act, dy.contiguous())
    return dx, dw_fc, db_fc, dw_proj


_mlp_op.register_autograd(_backward, setup_context=_setup_context)


def mlp(x: torch.Tensor, w_fc: torch.Tensor, b_fc: torch.Tensor, w_proj: torch.Tensor) -> torch.Tensor:
    """c_proj(gelu_tanh(c_fc(x))) without c_proj's bias, x (..., C) in the autocast dtype (or its own): y (..., C)."""
    shape = x.shape
    dev = x.device.type
    dt = torch.get_autocast_dtype(dev) if torch.is_autocast_enabled(dev) else x.dtype
    with torch.autocast(dev, enabled=False):
        y, _, _ = _mlp_op(x.reshape(-1, shape[-1]).to(dt).contiguous(), w_fc.to(dt),
                            b_fc.to(torch.promote_types(b_fc.dtype, torch.float32)), w_proj.to(dt))
    return y.view(*shape[:-1], y.shape[-1])
