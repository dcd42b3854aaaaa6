"""The training loss fused with the tied head: logits, cross-entropy and its gradient in one kernel.

In the plain path (`F.cross_entropy` on the head's logits) the log-softmax reads the (N, V) logits
in the forward, and its backward reads them again and writes their gradient; profiled, the two
took about 2.5 times what those bytes need. Here the forward computes, row by row, the log-sum-exp
and then the gradient of the mean loss with respect to the logits, written over the logits
themselves (a row is read twice, both times from memory, as measured: see the kernel), so the
backward only scales the two matmuls by the incoming scalar. Measured: +6.8% tokens/s for the 124M step
on an H100 (docs/performance.md). The numerics are the plain path's: bf16 logits from a bf16 matmul, the
softmax in fp32, the logits' gradient rounded to bf16, fp32 accumulation in the matmuls. (The
incoming gradient, 1/accumulation steps, scales the matmuls' outputs rather than the logits'
gradient before rounding: the same values up to bf16 rounding.)

Used by the training forward only (targets are real token ids; no ignore index), on CUDA under
bf16 autocast with Triton available; `row_grads_reference` is the same computation in torch,
for the CPU and for tests.
"""

from __future__ import annotations

import torch

from . import kernels
from .kernels import tl, triton

# Two kernels. "onchip": one program holds a whole row in registers (a 50,304-wide bf16 row is about
# 100 fp32 values a thread at 16 warps), so the logits are read once and written once. "stream": a
# program streams a row twice in blocks of BLOCK columns, first for the log-sum-exp, then to write the
# gradient (three passes; on the 124M step's logits, 61,440 x 50,304 bf16, 5.92 ms on an H100 at BLOCK
# 4096, 16 warps, 8 programs per SM: the fastest of 27 shapes of scripts/device/loss_kernel_bench.py).
# KERNEL picks the one rows take when they fit the on-chip kernel (ONCHIP_MAX_COLS); wider rows stream.
KERNEL = "stream"
ONCHIP_WARPS = 16
ONCHIP_PER_SM = 1  # programs per SM, each looping over rows; 0: one program a row
ONCHIP_EXP_ONCE = False  # keep the exponentials (fp32) between the sum and the write, not the logits
ONCHIP_MAX_COLS = 51200  # the span of a row's three pieces (below) that fits in registers at 16 warps
BLOCK = 4096  # stream: columns per inner iteration (a 50,304-wide row is 13 iterations)
WARPS = 16
PROGRAMS_PER_SM = 8  # stream: the grid, programs per SM, each looping over rows
EVICT = False  # stream: ask L2 to keep a row between its two reads (first read evict_last, then evict_first)


def triton_available() -> bool:
    return triton is not None


if triton is not None:
    @triton.jit
    def _ce_rows_kernel(logits_ptr, targets_ptr, loss_ptr, n_rows, n_programs, rows_per_program, stride_row,
                        n_valid, n_cols, inv_n, BLOCK_SIZE: tl.constexpr, KEEP: tl.constexpr, DROP: tl.constexpr):
        """Rows pid, pid + programs, ...: loss_ptr[row] = lse - x[target]; the row becomes (softmax - onehot) * inv_n.

        Memory-bound: at 5.92 ms the three passes over the logits (read, read, write: 18.5 GB) move
        3.1 TB/s, so the second read of a row comes from memory, not L2; fewer rows in flight (one
        program per SM) did not keep it in L2 and was slower (7.65 ms). KEEP and DROP: the cache
        eviction policies of the first read and of the second read and the write ("" for the default).
        """
        offsets = tl.arange(0, BLOCK_SIZE)
        for i in range(0, rows_per_program):
            row = tl.program_id(0) + i * n_programs
            if row < n_rows:
                base = logits_ptr + row.to(tl.int64) * stride_row
                # Per-lane running max and sum of exponentials (online softmax), combined at the end;
                # one exponential an element: exp(-|x - max|) serves whichever of the two is larger.
                run_max = tl.full([BLOCK_SIZE], float("-inf"), tl.float32)
                run_sum = tl.zeros([BLOCK_SIZE], tl.float32)
                for start in range(0, n_cols, BLOCK_SIZE):
                    cols = start + offsets
                    x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf"), eviction_policy=KEEP)
                    x = tl.where(cols < n_valid, x.to(tl.float32), float("-inf"))
                    # a masked column (-inf) adds exp(-inf) = 0, also to a lane that has seen nothing yet
                    diff = tl.where(x == float("-inf"), float("-inf"), x - run_max)
                    e = tl.exp(-tl.abs(diff))
                    run_sum = tl.where(diff > 0, run_sum * e + 1.0, run_sum + e)
                    run_max = tl.maximum(run_max, x)
                row_max = tl.max(run_max, axis=0)
                lane_scale = tl.where(run_max > float("-inf"), tl.exp(run_max - row_max), 0.0)
                lse = row_max + tl.log(tl.sum(run_sum * lane_scale, axis=0))
                target = tl.load(targets_ptr + row)
                target_logit = tl.load(base + target).to(tl.float32)
                tl.store(loss_ptr + row, lse - target_logit)
                # The gradient of the mean loss, over the row in place; the padding columns get 0.
                for start in range(0, n_cols, BLOCK_SIZE):
                    cols = start + offsets
                    x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf"), eviction_policy=DROP)
                    x = tl.where(cols < n_valid, x.to(tl.float32), float("-inf"))
                    grad = tl.exp(x - lse) - tl.where(cols == target, 1.0, 0.0)
                    tl.store(base + cols, (grad * inv_n).to(logits_ptr.dtype.element_ty), mask=cols < n_cols,
                             eviction_policy=DROP)

    @triton.jit
    def _onchip_piece(base, cols, n_valid, n_cols):
        x = tl.load(base + cols, mask=cols < n_cols, other=float("-inf"))
        x = tl.where(cols < n_valid, x, float("-inf"))  # kept in the logits' dtype; exp(-inf) = 0 hereafter
        return x, tl.max(x.to(tl.float32), axis=0)

    @triton.jit
    def _onchip_exp(x, shift):
        return tl.exp(x.to(tl.float32) - shift)

    @triton.jit
    def _onchip_write(base, cols, p, target, inv_n, n_cols):
        grad = (p - tl.where(cols == target, 1.0, 0.0)) * inv_n
        tl.store(base + cols, grad.to(base.dtype.element_ty), mask=cols < n_cols)

    @triton.jit
    def _ce_rows_onchip_kernel(logits_ptr, targets_ptr, loss_ptr, n_rows, n_programs, rows_per_program, stride_row,
                               n_valid, n_cols, inv_n, S0: tl.constexpr, S1: tl.constexpr, S2: tl.constexpr,
                               EXP_ONCE: tl.constexpr):
        """The same rows' losses and gradients, each row read once: its three pieces of S0, S1 and S2 columns
        (powers of two, S0 + S1 + S2 >= n_cols) stay in registers between the log-sum-exp and the write.

        EXP_ONCE: keep the exponentials (fp32) for the write; else keep the logits (their own dtype, half
        the registers for bf16) and take the exponentials again.
        """
        c0 = tl.arange(0, S0)
        c1 = S0 + tl.arange(0, S1)
        c2 = S0 + S1 + tl.arange(0, S2)
        for i in range(0, rows_per_program):
            row = tl.program_id(0) + i * n_programs
            if row < n_rows:
                base = logits_ptr + row.to(tl.int64) * stride_row
                x0, m0 = _onchip_piece(base, c0, n_valid, n_cols)
                x1, m1 = _onchip_piece(base, c1, n_valid, n_cols)
                x2, m2 = _onchip_piece(base, c2, n_valid, n_cols)
                row_max = tl.maximum(tl.maximum(m0, m1), m2)
                target = tl.load(targets_ptr + row)
                target_logit = tl.load(base + target).to(tl.float32)
                if EXP_ONCE:
                    e0 = _onchip_exp(x0, row_max)
                    e1 = _onchip_exp(x1, row_max)
                    e2 = _onchip_exp(x2, row_max)
                    total = tl.sum(e0, axis=0) + tl.sum(e1, axis=0) + tl.sum(e2, axis=0)
                    tl.store(loss_ptr + row, row_max + tl.log(total) - target_logit)
                    _onchip_write(base, c0, e0 / total, target, inv_n, n_cols)
                    _onchip_write(base, c1, e1 / total, target, inv_n, n_cols)
                    _onchip_write(base, c2, e2 / total, target, inv_n, n_cols)
                else:
                    total = (tl.sum(_onchip_exp(x0, row_max), axis=0)
                             + tl.sum(_onchip_exp(x1, row_max), axis=0)
                             + tl.sum(_onchip_exp(x2, row_max), axis=0))
                    lse = row_max + tl.log(total)
                    tl.store(loss_ptr + row, lse - target_logit)
                    _onchip_write(base, c0, _onchip_exp(x0, lse), target, inv_n, n_cols)
                    _onchip_write(base, c1, _onchip_exp(x1, lse), target, inv_n, n_cols)
                    _onchip_write(base, c2, _onchip_exp(x2, lse), target, inv_n, n_cols)


def onchip_pieces(n_cols: int) -> tuple[int, int, int] | None:
    """A row's three pieces for the on-chip kernel (powers of two, the last one masked), or None: stream it.

    50,304 columns: 32,768 + 16,384 + 2,048 (896 of them masked).
    """
    if n_cols < 4:
        return None
    s0 = 1 << (n_cols.bit_length() - 1)
    rest = n_cols - s0
    s1 = 1 << (rest.bit_length() - 1) if rest else 1
    rest = max(0, rest - s1)
    s2 = 1 << max(0, (rest - 1).bit_length()) if rest else 1
    return (s0, s1, s2) if s0 + s1 + s2 <= ONCHIP_MAX_COLS else None


def row_grads_reference(logits: torch.Tensor, targets: torch.Tensor, n_valid: int) -> torch.Tensor:
    """What the kernel does, in torch: returns the per-row losses, overwrites `logits` with the gradient."""
    x = logits[:, :n_valid].float()
    lse = torch.logsumexp(x, dim=-1)
    losses = lse - x.gather(1, targets[:, None]).squeeze(1)
    grad = torch.exp(x - lse[:, None])
    grad[torch.arange(len(targets), device=logits.device), targets] -= 1.0
    logits[:, :n_valid] = (grad / len(targets)).to(logits.dtype)
    logits[:, n_valid:] = 0
    return losses


def _rows_in_place(logits: torch.Tensor, targets: torch.Tensor, n_valid: int,
                   programs: int | None = None, kernel: str | None = None) -> torch.Tensor:
    """Per-row losses; the logits become the mean loss's gradient.

    `programs` (the grid) and `kernel` ("onchip" or "stream"; default KERNEL where the row fits) are for
    the tests and the benchmark.
    """
    if not ((logits.is_cuda or kernels.INTERPRET) and triton is not None):
        return row_grads_reference(logits, targets, n_valid)
    n, n_cols = logits.shape
    pieces = onchip_pieces(n_cols)
    kernel = kernel or (KERNEL if pieces else "stream")
    onchip = kernel == "onchip"
    per_sm = ONCHIP_PER_SM if onchip else PROGRAMS_PER_SM
    if programs is None:
        sms = torch.cuda.get_device_properties(logits.device).multi_processor_count if logits.is_cuda else 4
        programs = n if per_sm == 0 else per_sm * sms
    programs = min(n, programs)
    losses = torch.empty(n, dtype=torch.float32, device=logits.device)
    args = (logits, targets, losses, n, programs, triton.cdiv(n, programs), logits.stride(0), n_valid, n_cols, 1.0 / n)
    if onchip:
        s0, s1, s2 = pieces
        _ce_rows_onchip_kernel[(programs,)](*args, S0=s0, S1=s1, S2=s2, EXP_ONCE=ONCHIP_EXP_ONCE,
                                            num_warps=ONCHIP_WARPS)
    else:
        keep, drop = ("evict_last", "evict_first") if EVICT else ("", "")
        _ce_rows_kernel[(programs,)](*args, BLOCK_SIZE=BLOCK, KEEP=keep, DROP=drop, num_warps=WARPS)
    return losses


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, n_valid: int) -> torch.Tensor:
        logits = h @ weight.t()  # (N, V_padded), in h's dtype (bf16: the head's matmul under autocast)
        losses = _rows_in_place(logits, targets.contiguous(), n_valid)
        ctx.save_for_backward(h, weight, logits)  # logits: now d(mean loss)/d(logits)
        return losses.sum() / len(targets)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        h, weight, grad_logits = ctx.saved_tensors
        scale = grad_out.to(torch.float32)
        grad_h = (grad_logits @ weight) * scale if ctx.needs_input_grad[0] else None
        grad_w = (grad_logits.t() @ h) * scale if ctx.needs_input_grad[1] else None
        return grad_h, grad_w, None, None


@torch.compiler.disable  # a graph break: the compiled model ends at the final norm's output
def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, n_valid: int,
                         dtype: torch.dtype) -> torch.Tensor:
    """Mean cross-entropy of (h @ weight.T)[:, :n_valid] against targets, the matmul in `dtype`.

    h (N, D), weight (V_padded, D), targets (N,) token ids below n_valid. Gradients reach h and
    weight in their own dtypes (fp32 master weights), as autocast's casts would give them.
    """
    with torch.autocast(h.device.type, enabled=False):
        return _LinearCrossEntropy.apply(h.to(dtype), weight.to(dtype), targets, n_valid)
