"""Times the fused loss's row kernels on the 124M step's logits (61,440 x 50,304 bf16) in several shapes.

    python3 scripts/device/loss_kernel_bench.py [--write-best]

Rows: the kernel (a row read twice in blocks) by block size, warps, programs per SM, and whether it
asks L2 to keep a row between its two reads. (Call S also timed a kernel holding a row in registers,
since removed: 7.7 ms at best.) Each is checked against row_grads_reference on 64 rows. (The first version's 6.53 ms in
docs/performance.md came from this script at commit 44cbde3, which also timed that version.)
--write-best sets the fastest row's settings in gptablate/model/loss.py (for the rest of a device call).
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

    def run(cfg):
        block, warps, per_sm, evict = cfg
        programs = min(n, per_sm * sms)
        keep, drop = ("evict_last", "evict_first") if evict else ("", "")
        L._ce_rows_kernel[(programs,)](logits, targets, losses, n, programs, triton.cdiv(n, programs),
                                       logits.stride(0), nv, v, 1.0 / n, BLOCK_SIZE=block, KEEP=keep, DROP=drop,
                                       num_warps=warps)

    losses = torch.empty(n, device="cuda")
    configs = [(b, w, p, e) for b, w in ((4096, 16), (8192, 16), (8192, 32)) for p in (2, 4, 8)
               for e in (False, True)]
    configs += [(b, w, p, True) for b, w in ((2048, 8), (4096, 8)) for p in (8, 16)]
    results = []
    for cfg in configs:
        logits.copy_(source)
        try:
            run(cfg)
            torch.cuda.synchronize()
        except Exception as exc:  # a shape the compiler or the GPU refuses: report it, go on
            print(f"{cfg}: failed: {type(exc).__name__}: {str(exc).splitlines()[0][:120]}", flush=True)
            continue
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
        block, warps, per_sm, evict = cfg
        print(f"block {block:5d}, L2 keep {evict!s:5} warps {warps:2d} programs/SM {per_sm:>3}: {ms:6.3f} ms, "
              f"{2 * n * v * 2 / ms / 1e9:6.2f} TB/s for one read and one write, matches reference: {ok}", flush=True)
    best = min((r for r in results if r[2]), key=lambda r: r[0])
    print(f"fastest: {best[1]}: {best[0]:.3f} ms")
    if "--write-best" in sys.argv:
        block, warps, per_sm, evict = best[1]
        path = L.__file__
        text = open(path).read()
        subs = dict(BLOCK=block, WARPS=warps, PROGRAMS_PER_SM=per_sm, EVICT=evict)
        for name, value in subs.items():
            text, count = re.subn(rf"^{name} = [^ #\n]+", f"{name} = {value}", text, flags=re.M)
            assert count == 1, name
        open(path, "w").write(text)
        print("written to", path, subs)


if __name__ == "__main__":
    main()
