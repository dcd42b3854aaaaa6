"""The training loss fused with the tied head: logits, cross-entropy and its gradient in one kernel.

In the plain path (`F.cross_entropy` on the head's logits) the log-softmax reads the (N, V) logits
in the forward, and its backward reads them again and writes their gradient; profiled, the two
took about 2.5 times what those bytes need. Here the forward computes, row by row, the log-sum-exp
and then the gradient of the mean loss with respect to the logits, written over the logits
themselves (a row is read twice, the second time partly from L2: see the kernel), so the
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

from .kernels import runs_on, sm_count, tl, triton

# The kernel's shape, the fastest of scripts/device/loss_kernel_bench.py's sweep on the 124M step's logits
# (61,440 x 50,304 bf16) on an H100: 5.50 ms (call S), against 6.39 ms for the same shape without the L2
# hints and 5.92 ms for the previous version (2-byte loads, no hints; call I).
BLOCK = 4096  # columns per inner iteration: a 50,304-wide row is 13 iterations
WARPS = 16
PROGRAMS_PER_SM = 8  # the grid: programs per SM, each looping over rows
EVICT = True  # ask L2 to keep a row between its two reads (first read evict_last; second read and write evict_first)


if triton is not None:
    @triton.jit
    def _ce_rows_kernel(logits_ptr, targets_ptr, loss_ptr, n_rows, n_programs, rows_per_program, stride_row,
                        n_valid, n_cols, inv_n, BLOCK_SIZE: tl.constexpr, KEEP: tl.constexpr, DROP: tl.constexpr):
        """Rows pid, pid + programs, ...: loss_ptr[row] = lse - x[target]; the row becomes (softmax - onehot) * inv_n.

        Memory-bound. KEEP and DROP: the cache eviction policies of the first read and of the second read
        and the write ("" for the default); with evict_last and evict_first the kernel took 5.50 ms against
        6.39 without (call S), so some second reads come from L2. The loads are masked on the padded width
        (a multiple of 64, so they compile to 16-byte loads) and the vocabulary's bound is a select.
        A kernel holding a whole row in registers (one read, one write) was slower, 7.7 ms at best: at
        about 100 values a thread it spilled, and one program an SM left the memory idle while it computed.
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
                   programs: int | None = None) -> torch.Tensor:
    """Per-row losses; the logits become the mean loss's gradient. `programs`: the kernel's grid (tests)."""
    if not runs_on(logits):
        return row_grads_reference(logits, targets, n_valid)
    n, n_cols = logits.shape
    if programs is None:
        programs = PROGRAMS_PER_SM * sm_count(logits)
    programs = min(n, programs)
    losses = torch.empty(n, dtype=torch.float32, device=logits.device)
    keep, drop = ("evict_last", "evict_first") if EVICT else ("", "")
    _ce_rows_kernel[(programs,)](logits, targets, losses, n, programs, triton.cdiv(n, programs), logits.stride(0),
                                 n_valid, n_cols, 1.0 / n, BLOCK_SIZE=BLOCK, KEEP=keep, DROP=drop, num_warps=WARPS)
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
