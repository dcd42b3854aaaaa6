"""Times the fused loss's row kernel on the 124M step's logits (61,440 x 50,304 bf16) in several shapes.

    python3 scripts/device/loss_kernel_bench.py [--write-best]

Rows: the kernel as first shipped (two exponentials an element, one program a row, 2048 columns
a block, 8 warps) and the current kernel (one exponential an element, a grid of a few programs
per SM looping over rows) at several block sizes, warps and programs per SM. Each is checked
against row_grads_reference on 64 rows. --write-best sets BLOCK, WARPS and PROGRAMS_PER_SM in
gptablate/model/loss.py to the fastest row (for the rest of a device call).
"""
import re
import sys

import torch
import triton
import triton.language as tl

from gptablate.model import loss as L


@triton.jit
def _first_kernel(logits_ptr, targets_ptr, loss_ptr, stride_row, n_valid, n_cols, inv_n, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    base = logits_ptr + row * stride_row
    offsets = tl.arange(0, BLOCK_SIZE)
    run_max = tl.full([BLOCK_SIZE], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_SIZE], tl.float32)
    for start in range(0, n_valid, BLOCK_SIZE):
        cols = start + offsets
        x = tl.load(base + cols, mask=cols < n_valid, other=float("-inf")).to(tl.float32)
        new_max = tl.maximum(run_max, x)
        finite = new_max > float("-inf")
        safe_max = tl.where(finite, new_max, 0.0)
        run_sum = run_sum * tl.exp(run_max - safe_max) + tl.where(finite, tl.exp(x - safe_max), 0.0)
        run_max = new_max
    row_max = tl.max(run_max, axis=0)
    lane_scale = tl.where(run_max > float("-inf"), tl.exp(run_max - row_max), 0.0)
    lse = row_max + tl.log(tl.sum(run_sum * lane_scale, axis=0))
    target = tl.load(targets_ptr + row)
    target_logit = tl.load(base + target).to(tl.float32)
    tl.store(loss_ptr + row, lse - target_logit)
    for start in range(0, n_cols, BLOCK_SIZE):
        cols = start + offsets
        x = tl.load(base + cols, mask=cols < n_valid, other=float("-inf")).to(tl.float32)
        grad = tl.exp(x - lse) - tl.where(cols == target, 1.0, 0.0)
        tl.store(base + cols, (grad * inv_n).to(logits_ptr.dtype.element_ty), mask=cols < n_cols)


def main() -> None:
    n, v, nv = 61440, 50304, 50257
    torch.manual_seed(0)
    source = (torch.randn(n, v, device="cuda") * 3).to(torch.bfloat16)
    targets = torch.randint(0, nv, (n,), device="cuda")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    ref = source[:64].clone()
    ref_losses = L.row_grads_reference(ref, targets[:64], nv)
    logits = source.clone()
    losses = torch.empty(n, device="cuda")

    def run(cfg):
        kind, block, warps, per_sm = cfg
        if kind == "first":
            _first_kernel[(n,)](logits, targets, losses, logits.stride(0), nv, v, 1.0 / n, BLOCK_SIZE=block, num_warps=warps)
        else:
            programs = n if per_sm == 0 else min(n, per_sm * sms)
            L._ce_rows_kernel[(programs,)](logits, targets, losses, n, programs, triton.cdiv(n, programs),
                                           logits.stride(0), nv, v, 1.0 / n, BLOCK_SIZE=block, num_warps=warps)

    configs = [("first", 2048, 8, 0), ("now", 2048, 8, 0), ("now", 4096, 16, 0)]
    configs += [("now", b, w, p) for b, w in ((1024, 4), (2048, 8), (4096, 8), (4096, 16), (8192, 16), (8192, 32))
                for p in (1, 2, 4, 8)]
    results = []
    for cfg in configs:
        logits.copy_(source)
        run(cfg)
        torch.cuda.synchronize()
        # the kernel scales the gradient by 1/n over all n rows, the reference by 1/64 over its 64
        ok = (torch.allclose(losses[:64], ref_losses, rtol=1e-4, atol=1e-4)
              and torch.allclose(logits[:64].float() * n, ref.float() * 64, rtol=2e-2, atol=1e-6))
        times = []
        for _ in range(5):
            logits.copy_(source)
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            run(cfg)
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b))
        ms = sorted(times)[len(times) // 2]
        results.append((ms, cfg, ok))
        print(f"{cfg[0]:>5} block {cfg[1]:5d} warps {cfg[2]:2d} programs/SM {cfg[3] or 'row':>3}: {ms:6.3f} ms, "
              f"{2 * n * v * 2 / ms / 1e9:6.2f} TB/s for one read and one write, matches reference: {ok}", flush=True)
    best = min((r for r in results if r[2] and r[1][0] == "now" and r[1][3]), key=lambda r: r[0])
    print(f"fastest: block {best[1][1]}, warps {best[1][2]}, programs/SM {best[1][3]}: {best[0]:.3f} ms")
    if "--write-best" in sys.argv:
        path = L.__file__
        text = open(path).read()
        text = re.sub(r"^BLOCK = \d+", f"BLOCK = {best[1][1]}", text, flags=re.M)
        text = re.sub(r"^WARPS = \d+", f"WARPS = {best[1][2]}", text, flags=re.M)
        text = re.sub(r"^PROGRAMS_PER_SM = \d+", f"PROGRAMS_PER_SM = {best[1][3]}", text, flags=re.M)
        open(path, "w").write(text)
        print("written to", path)


if __name__ == "__main__":
    main()
