"""hyper_step's and mhc_step's kernels, each launched twice on the 124M step's streams (61,440 tokens x 4 x 768), for
Nsight Compute:

    ncu --clock-control none -k regex:'_hyper_|_mhc_' [--section ...] python3 scripts/device/kernel_profile.py

hyper_step's forward and backward (the dynamic site with its LayerNorm folded in, as the model takes it), then
mhc_step's, each at the committed tuning, in the order hyper fwd, hyper bwd, mhc fwd, mhc bwd, then the same again,
so that a profile can skip the first launches (ncu's -s and -c; perf_dc.sh, perf_de.sh).
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_bench import step_calls  # noqa: E402
from mhcstep_bench import inputs as mhc_inputs  # noqa: E402


def main():
    M, n, D = 61440, 4, 768
    h_forward, h_backward, _ = step_calls(M, n, D, True, norm=True)
    args = mhc_inputs(M, n, D)
    Hk, out, Rk, qk, w, a_pre, _ = args
    H1, x_in, z, p, rstd = torch.ops.gptablate.mhc_step(*args, 1e-5, True)
    dH1, dx, dz = torch.randn_like(H1), torch.randn_like(x_in), torch.randn_like(z)

    def m_forward():
        return torch.ops.gptablate.mhc_step(*args, 1e-5, True)

    def m_backward():
        return torch.ops.gptablate.mhc_step_backward(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, True)

    for _ in range(2):
        for fn in (h_forward, h_backward, m_forward, m_backward):
            fn()
        torch.cuda.synchronize()
    print("ok: each kernel launched twice", flush=True)


if __name__ == "__main__":
    main()
