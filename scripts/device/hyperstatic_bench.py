"""The static hyper step's kernels (model/hyperstatic.py) on the 124M step's streams (61,440 tokens x 4 x 768, fp32),
by tokens a program and warps (and programs per SM in the backward), against hyperstep.py's token-row kernels for the
same site; then with the next site's LayerNorm folded in, against the same step followed by LayerNorm compiled by
inductor (what the model ran before the fold).

    python3 scripts/device/hyperstatic_bench.py [--write-best] [--norm-only]

Bytes counted: forward reads H and out and writes H' and x; backward reads dH', dx, H and out and writes dH and d_out
(each once). With the norm the forward also writes h (bf16), and the backward reads dh (bf16) for dx, and x and dh
once more for the row sums. --write-best writes the fastest shapes into FWD, BWD, FWD_NORM, ROW_SUMS and BWD_NORM in
gptablate/model/hyperstatic.py (with --norm-only, only the last three).
"""
import sys

import torch
import torch.nn.functional as F
from addnorm_bench import timed
from hyperstep_bench import write_constants

from gptablate.model import hyperstatic as HSt

M, n, D = 61440, 4, 768


def sweep(label, shapes, setter, fn, nbytes):
    """{shape: ms} for each shape that runs, printed."""
    times = {}
    for shape in shapes:
        setter(shape)
        try:
            times[shape] = t = timed(fn)
        except Exception as e:  # e.g. out of registers or shared memory
            print(f"  {label} {shape}: failed: {str(e)[:200]}", flush=True)
            continue
        print(f"  {label} {shape}: {t:.3f} ms ({nbytes / t / 1e6:.0f} GB/s)", flush=True)
    best = min(times, key=times.get)
    setter(best)  # the later sweeps and the comparison run at the best shape, not the last one tried
    print(f"  {label} best {best}: {times[best]:.3f} ms", flush=True)
    return best, times[best]


def main():
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    H = torch.randn(M, n, D, **f)
    out = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    mix, b, r = torch.randn(n, n, **f), torch.ones(n, **f), torch.randn(n, **f)
    dH1, dx = torch.randn(M, n, D, **f), torch.randn(M, D, **f)
    empty = H.new_zeros(0)
    weight, bias = 1 + 0.1 * torch.randn(D, **f), 0.1 * torch.randn(D, **f)
    stream, row = M * n * D * 4, M * D * 4
    fwd_bytes = 2 * stream + row // 2 + row
    bwd_bytes = 3 * stream + 2 * (row // 2) + row
    print(f"static site: streams {stream / 1e9:.3f} GB; forward moves {fwd_bytes / 1e9:.2f} GB, backward "
          f"{bwd_bytes / 1e9:.2f} GB", flush=True)
    best = {}
    step = lambda: torch.ops.gptablate.hyper_static_step(H, out, mix, b, r, weight, bias, 1e-5, True, torch.bfloat16,
                                                          True)
    plain = lambda: torch.ops.gptablate.hyper_static_step(H, out, mix, b, r, empty, empty, 1e-5, True, torch.bfloat16,
                                                           True)
    if "--norm-only" not in sys.argv:
        best["FWD"] = sweep("forward", [(t, w) for t in (1, 2, 4, 8) for w in (1, 2, 4, 8)],
                            lambda s: setattr(HSt, "FWD", s), plain, fwd_bytes)
        best["BWD"] = sweep("backward", [(p, t, w) for p in (4, 8, 16) for t in (1, 2, 4) for w in (1, 2, 4)],
                            lambda s: setattr(HSt, "BWD", s),
                            lambda: torch.ops.gptablate.hyper_static_step_backward(
                                H, out, mix, b, r, dH1, dx, empty, empty, empty, empty, True, True), bwd_bytes)

        # hyperstep.py's kernels for the same static site (its tuned TUNING[False]), as the model took them before
        from gptablate.model import hyperstep as HS
        Ck = torch.randn(M, n, n + 2, **f)
        a_s, b_s = torch.randn(n, n + 1, **f), torch.ones(n, **f)
        args = (H, out, Ck, empty, empty, empty, a_s, b_s, 1e-5, True, False, True)
        H1, x_in, C1, z, mean, rstd = torch.ops.gptablate.hyper_step(*args)
        dC1 = torch.randn_like(C1)
        old_f = timed(lambda: torch.ops.gptablate.hyper_step(*args))
        old_b = timed(lambda: torch.ops.gptablate.hyper_step_backward(H, out, Ck, empty, empty, empty, H1, C1, z, mean,
                                                                      rstd, dH1, dx, dC1, True, False, True))
        print(f"  hyper_step (token rows) for the same site: forward {old_f:.3f} ms, backward {old_b:.3f} ms: "
              f"{old_f + old_b:.3f} ms a site", flush=True)

    # with the next site's LayerNorm folded in
    best["FWD_NORM"] = sweep("forward with the norm", [(t, w) for t in (1, 2, 4) for w in (4, 8, 16)],
                             lambda s: setattr(HSt, "FWD_NORM", s), step, fwd_bytes + row // 2)
    _, x, _, mean, rstd = step()
    dh = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    back = lambda: torch.ops.gptablate.hyper_static_step_backward(H, out, mix, b, r, dH1, dh, x, mean, rstd, weight,
                                                                  True, True)
    norm_bwd_bytes = bwd_bytes - row // 2 + row + row // 2  # dh for dx; the row sums read x and dh
    best["ROW_SUMS"] = sweep("backward with the norm, row sums", [(t, w) for t in (1, 2, 4, 8) for w in (1, 2, 4, 8)],
                             lambda s: setattr(HSt, "ROW_SUMS", s), back, norm_bwd_bytes)
    best["BWD_NORM"] = sweep("backward with the norm",
                             [(p, t, w) for p in (4, 8) for t in (1, 2, 4) for w in (1, 2, 4)],
                             lambda s: setattr(HSt, "BWD_NORM", s), back, norm_bwd_bytes)

    # what the model ran before: the step without the norm, then LayerNorm (inductor's kernels) forward and backward
    ln = torch.compile(lambda x, w, bb: F.layer_norm(x, (D,), w, bb, 1e-5).to(torch.bfloat16))
    xg, w, bb = (t.detach().requires_grad_() for t in (x, weight, bias))
    t_ln = timed(lambda: torch.autograd.grad(ln(xg, w, bb), (xg, w, bb), dh))
    t_plain = timed(plain) + timed(lambda: torch.ops.gptablate.hyper_static_step_backward(
        H, out, mix, b, r, dH1, dx, empty, empty, empty, empty, True, True))
    t_fold = timed(step) + timed(back)
    print(f"  a site: step {t_plain:.3f} ms + compiled LayerNorm forward and backward {t_ln:.3f} ms = "
          f"{t_plain + t_ln:.3f} ms; with the norm folded in {t_fold:.3f} ms", flush=True)

    if "--write-best" in sys.argv:
        write_constants(HSt, {name: shape for name, (shape, _) in best.items()})


if __name__ == "__main__":
    main()
