"""hyper_step's kernels on the 124M step's streams (61,440 tokens x 4 x 768, fp32): time by grid and warps.

    python3 scripts/device/hyperstep_bench.py

Prints, for each shape, the forward and backward kernels' times and the bandwidth their bytes
imply (forward: read H and out, write H' and x_in; backward: read H', dH', dx, H, out, write dH and
d_out), and the torch matmul the backward adds for the projection's weight gradient.
"""
import torch

from gptablate.model import hyperstep as HS


def timed(fn, reps=20):
    fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(reps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / reps


def main():
    M, n, D = 61440, 4, 768
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    Hk = torch.randn(M, n, D, **f)
    out = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    Ck = torch.randn(M, n, n + 2, **f)
    wt, bw, s = torch.randn(n + 2, D, **f) * 0.1, torch.zeros(n + 2, **f), torch.tensor([0.01, 0.01], **f)
    a_s, b_s = torch.randn(n, n + 1, **f), torch.ones(n, **f)
    args = (Hk, out, Ck, wt, bw, s, a_s, b_s, 1e-5, True, True, True)
    H1, x_in, C1, t, mean, rstd = torch.ops.gptablate.hyper_step(*args)
    dH1, dx, dC1 = torch.randn_like(H1), torch.randn_like(x_in), torch.randn_like(C1)
    stream = M * n * D * 4
    fwd_bytes = 2 * stream + M * D * (2 + 4)
    bwd_bytes = 4 * stream + M * D * (4 + 2 + 2)
    print(f"streams {stream / 1e9:.3f} GB; forward moves {fwd_bytes / 1e9:.2f} GB, backward {bwd_bytes / 1e9:.2f} GB")
    best = None
    for per_sm in (2, 4, 8):
        for warps in (4, 8, 16):
            HS.PROGRAMS_PER_SM = per_sm
            shape = HS._launch_shape(Hk)
            shape["fwd_warps"] = shape["bwd_warps"] = warps
            HS._launch_shape = (lambda s: (lambda _h: dict(s)))(shape)
            try:
                fw = timed(lambda: torch.ops.gptablate.hyper_step(*args))
                bw_ms = timed(lambda: torch.ops.gptablate.hyper_step_backward(Hk, out, Ck, wt, s, H1, C1, t, mean, rstd,
                                                                              dH1, dx, dC1, True, True, True))
            finally:
                HS._launch_shape = _launch_shape
            print(f"programs/SM {per_sm} warps {warps:2d}: forward {fw:.3f} ms ({fwd_bytes / fw / 1e6:.0f} GB/s), "
                  f"backward {bw_ms:.3f} ms ({bwd_bytes / bw_ms / 1e6:.0f} GB/s)", flush=True)
            if best is None or fw + bw_ms < best[0]:
                best = (fw + bw_ms, per_sm, warps)
    torch.backends.cuda.matmul.allow_tf32 = True  # as the engine sets it
    sz = torch.randn(M * n, n + 2, **f)
    mm = timed(lambda: sz.t() @ H1.reshape(M * n, D))
    print(f"backward's weight-gradient matmul (tf32 {torch.backends.cuda.matmul.allow_tf32}): {mm:.3f} ms")
    print(f"best: programs/SM {best[1]}, warps {best[2]}: {best[0]:.3f} ms a site, forward and backward")


_launch_shape = HS._launch_shape

if __name__ == "__main__":
    main()
