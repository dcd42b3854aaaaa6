"""mhc_step's kernels from several copies of gptablate/model/mhcstep.py, timed side by side on the same inputs.

    python3 scripts/device/mhcstep_ab.py NAME=PATH [NAME=PATH ...] [--sweep NAME ...] [--write-best NAME]
        [--shape TOKENS,WIDTH]

Each PATH is a copy of mhcstep.py (the committed one, an experiment, the code before a change), loaded as a module of
its own (hyperstep_ab.load: its custom ops renamed). On the 124M step's streams (61,440 tokens x 4 x 768, a site with
its write), each copy's forward and backward are timed at its own TUNING, and the copies named by --sweep at a few
shapes around it too (tokens per program, features per chunk, warps, stages; no register cap); each copy's outputs are
compared with the first copy's. --write-best NAME writes that copy's fastest forward and backward into
gptablate/model/mhcstep.py's TUNING (the entry of the streams' width). --shape times other streams than the 124M
step's (4 streams of WIDTH features, TOKENS tokens: 345M's 1,024 and 1.5B's 1,600 features, say).
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_ab import against, load, shape  # noqa: E402
from mhcstep_bench import inputs, write_tuning  # noqa: E402
from addnorm_bench import timed  # noqa: E402

# call DD swept (32, 32, 4, 1-4), (16, 32, 4, 3), (16, 64, 4, 3), (32, 64, 4, 3), (32, 32, 8, 3), (64, 32, 8, 3) with
# the pipelined walks; this list is around its fastest
SHAPES = [(32, 32, 4, 3, None), (32, 32, 2, 3, None), (16, 32, 4, 2, None), (16, 32, 4, 3, None), (16, 32, 4, 4, None),
          (16, 16, 4, 3, None), (16, 16, 4, 4, None), (16, 32, 2, 3, None), (16, 64, 2, 3, None)]


def main():
    argv = sys.argv[1:]
    M, D = shape(argv)
    n = 4
    print(f"streams: {M} tokens x {n} x {D}", flush=True)
    args = inputs(M, n, D)
    Hk, out, Rk, qk, w, a_pre, _ = args
    write = argv[argv.index("--write-best") + 1] if "--write-best" in argv else None
    sweep = {argv[i + 1] for i, a in enumerate(argv) if a == "--sweep"}
    first = None
    for spec in [a for a in argv if "=" in a]:
        name, path = spec.split("=", 1)
        mod = load(name, path)

        def forward():
            return mod._mhc_step_op(*args, 1e-5, True)

        H1, x_in, z, p, rstd = forward()
        torch.manual_seed(1)
        dH1, dx, dz = torch.randn_like(H1), torch.randn_like(x_in), torch.randn_like(z)

        def backward():
            return mod._mhc_step_backward_op(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, True)

        results = [H1, x_in, z, p, rstd, *backward()]
        print(f"{name} ({path}): {against(results, first)}", flush=True)
        first = first or results
        committed = mod.TUNING
        by_width = isinstance(committed, dict)  # copies from before TUNING was by width hold one pair
        own = mod.tuning(D) if by_width else committed
        fwd, bwd = {}, {}
        for shape in dict.fromkeys([own[0], own[1], *(SHAPES if name in sweep else ())]):
            mod.TUNING = {D: (shape, shape)} if by_width else (shape, shape)
            try:
                fwd[shape], bwd[shape] = timed(forward), timed(backward)
            except Exception as e:  # noqa: BLE001 - a shape that does not compile or launch (shared memory)
                print(f"  {shape}: failed: {str(e)[:160]}", flush=True)
                continue
            print(f"  (tokens, features, warps, stages, maxnreg) {shape}: forward {fwd[shape]:.3f} ms, "
                  f"backward {bwd[shape]:.3f} ms", flush=True)
        mod.TUNING = committed
        best = (min(fwd, key=fwd.get), min(bwd, key=bwd.get))
        print(f"  best: forward {best[0]} {fwd[best[0]]:.3f} ms, backward {best[1]} {bwd[best[1]]:.3f} ms: "
              f"{fwd[best[0]] + bwd[best[1]]:.3f} ms a site without the weight-gradient matmul", flush=True)
        if name == write:
            write_tuning(D, best)


if __name__ == "__main__":
    main()
