"""Times the fused loss's row kernel on the 124M step's logits (61,440 x 50,304 bf16) in several shapes.

    python3 scripts/device/loss_kernel_bench.py [--write-best]

Rows: the current kernel (one exponential an element, a grid of programs looping over rows) at
several block sizes, warps and programs per SM, and with one program a row. Each is checked
against row_grads_reference on 64 rows. (The first version's 6.53 ms in docs/performance.md came
from this script at commit 44cbde3, which also timed that version.) --write-best sets BLOCK, WARPS and PROGRAMS_PER_SM in
gptablate/model/loss.py to the fastest row (for the rest of a device call).
"""
import re
import sys

import torch
import triton

from gptablate.model import loss as L


def main() -> None:
    n, v, nv = 61440, 50304, 50257
    torch.manual_seed(0)
    source = (torch.randn(n, v, device="cuda") * 3).to(torch.bfloat16)
    targets = torch.randint(0, nv, (n,), device="cuda")
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    m = min(64, n)  # rows checked
    ref = source[:m].clone()
    ref_losses = L.row_grads_reference(ref, targets[:m], nv)
    logits = source.clone()
    losses = torch.empty(n, device="cuda")

    def run(cfg):
        block, warps, per_sm = cfg
        programs = n if per_sm == 0 else min(n, per_sm * sms)
        L._ce_rows_kernel[(programs,)](logits, targets, losses, n, programs, triton.cdiv(n, programs),
                                       logits.stride(0), nv, v, 1.0 / n, BLOCK_SIZE=block, num_warps=warps)

    configs = [(2048, 8, 0), (4096, 16, 0)]  # 0: one program a row
    configs += [(b, w, p) for b, w in ((1024, 4), (2048, 8), (4096, 8), (4096, 16), (8192, 16), (8192, 32))
                for p in (1, 2, 4, 8)]
    results = []
    for cfg in configs:
        logits.copy_(source)
        run(cfg)
        torch.cuda.synchronize()
        # the kernel scales the gradient by 1/n over all n rows, the reference by 1/m over its m
        ok = (torch.allclose(losses[:m], ref_losses, rtol=1e-4, atol=1e-4)
              and torch.allclose(logits[:m].float() * n, ref.float() * m, rtol=2e-2, atol=1e-6))
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
        print(f"block {cfg[0]:5d} warps {cfg[1]:2d} programs/SM {cfg[2] or 'row':>3}: {ms:6.3f} ms, "
              f"{2 * n * v * 2 / ms / 1e9:6.2f} TB/s for one read and one write, matches reference: {ok}", flush=True)
    best = min((r for r in results if r[2] and r[1][2]), key=lambda r: r[0])
    print(f"fastest: block {best[1][0]}, warps {best[1][1]}, programs/SM {best[1][2]}: {best[0]:.3f} ms")
    if "--write-best" in sys.argv:
        path = L.__file__
        text = open(path).read()
        text = re.sub(r"^BLOCK = \d+", f"BLOCK = {best[1][0]}", text, flags=re.M)
        text = re.sub(r"^WARPS = \d+", f"WARPS = {best[1][1]}", text, flags=re.M)
        text = re.sub(r"^PROGRAMS_PER_SM = \d+", f"PROGRAMS_PER_SM = {best[1][2]}", text, flags=re.M)
        open(path, "w").write(text)
        print("written to", path)


if __name__ == "__main__":
    main()
