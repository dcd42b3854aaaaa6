"""The static hyper step's kernels (model/hyperstatic.py) on the 124M step's streams (61,440 tokens x 4 x 768, fp32),
by tokens a program and warps (and programs per SM in the backward), against hyperstep.py's token-row kernels for the
same site.

    python3 scripts/device/hyperstatic_bench.py [--write-best]

Bytes counted: forward reads H and out and writes H' and x; backward reads dH', dx, H and out and writes dH and d_out
(each once). --write-best writes the fastest forward and backward into FWD and BWD in gptablate/model/hyperstatic.py.
"""
import re
import sys
from pathlib import Path

import torch
from addnorm_bench import timed

from gptablate.model import hyperstatic as HSt


def main():
    M, n, D = 61440, 4, 768
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    H = torch.randn(M, n, D, **f)
    out = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    mix, b, r = torch.randn(n, n, **f), torch.ones(n, **f), torch.randn(n, **f)
    dH1, dx = torch.randn(M, n, D, **f), torch.randn(M, D, **f)
    stream, row = M * n * D * 4, M * D * 4
    fwd_bytes = 2 * stream + row // 2 + row
    bwd_bytes = 3 * stream + 2 * (row // 2) + row
    print(f"static site: streams {stream / 1e9:.3f} GB; forward moves {fwd_bytes / 1e9:.2f} GB, backward "
          f"{bwd_bytes / 1e9:.2f} GB", flush=True)

    fwd = {}
    for tokens in (1, 2, 4, 8):
        for warps in (1, 2, 4, 8):
            HSt.FWD = (tokens, warps)
            try:
                fwd[tokens, warps] = t = timed(lambda: torch.ops.gptablate.hyper_static_step(H, out, mix, b, r, True))
            except Exception as e:  # e.g. out of registers or shared memory
                print(f"  forward tokens {tokens} warps {warps}: failed: {str(e)[:200]}", flush=True)
                continue
            print(f"  forward tokens {tokens} warps {warps}: {t:.3f} ms ({fwd_bytes / t / 1e6:.0f} GB/s)", flush=True)
    bwd = {}
    for per_sm in (4, 8, 16):
        for tokens in (1, 2, 4):
            for warps in (1, 2, 4):
                HSt.BWD = (per_sm, tokens, warps)
                try:
                    bwd[per_sm, tokens, warps] = t = timed(lambda: torch.ops.gptablate.hyper_static_step_backward(
                        H, out, mix, b, r, dH1, dx, True))
                except Exception as e:
                    print(f"  backward per SM {per_sm} tokens {tokens} warps {warps}: failed: {str(e)[:200]}",
                          flush=True)
                    continue
                print(f"  backward per SM {per_sm} tokens {tokens} warps {warps}: {t:.3f} ms "
                      f"({bwd_bytes / t / 1e6:.0f} GB/s)", flush=True)
    bf, bb = min(fwd, key=fwd.get), min(bwd, key=bwd.get)
    print(f"  best: forward {bf} {fwd[bf]:.3f} ms, backward {bb} {bwd[bb]:.3f} ms: {fwd[bf] + bwd[bb]:.3f} ms a site",
          flush=True)

    # hyperstep.py's kernels for the same static site (its tuned TUNING[False]), as the model took them before
    from gptablate.model import hyperstep as HS
    Ck = torch.randn(M, n, n + 2, **f)
    a_s, b_s, empty = torch.randn(n, n + 1, **f), torch.ones(n, **f), H.new_zeros(0)
    args = (H, out, Ck, empty, empty, empty, a_s, b_s, 1e-5, True, False, True)
    H1, x_in, C1, z, mean, rstd = torch.ops.gptablate.hyper_step(*args)
    dC1 = torch.randn_like(C1)
    old_f = timed(lambda: torch.ops.gptablate.hyper_step(*args))
    old_b = timed(lambda: torch.ops.gptablate.hyper_step_backward(H, out, Ck, empty, empty, empty, H1, C1, z, mean,
                                                                  rstd, dH1, dx, dC1, True, False, True))
    print(f"  hyper_step (token rows) for the same site: forward {old_f:.3f} ms, backward {old_b:.3f} ms: "
          f"{old_f + old_b:.3f} ms a site", flush=True)

    if "--write-best" in sys.argv:
        path = Path(HSt.__file__)
        text = path.read_text()
        text, a = re.subn(r"^FWD = \(.*\)$", f"FWD = {bf}", text, flags=re.M)
        text, c = re.subn(r"^BWD = \(.*\)$", f"BWD = {bb}", text, flags=re.M)
        assert a == c == 1
        path.write_text(text)
        print(f"wrote to {path}: FWD = {bf}, BWD = {bb}")


if __name__ == "__main__":
    main()
