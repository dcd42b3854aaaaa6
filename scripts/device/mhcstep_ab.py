"""mhc_step's kernels from several copies of gptablate/model/mhcstep.py, timed side by side on the same inputs.

    python3 scripts/device/mhcstep_ab.py NAME=PATH [NAME=PATH ...] [--sweep NAME ...] [--write-best NAME]
        [--shape TOKENS,WIDTH] [--read NAME ...] [--reps N] [--rounds K]

Each PATH is a copy of mhcstep.py (the committed one, an experiment, the code before a change), loaded as a module of
its own (hyperstep_ab.load: its custom ops renamed). On the 124M step's streams (61,440 tokens x 4 x 768, a site with
its write), each copy's forward and backward are timed at its own TUNING, and the copies named by --sweep at a few
shapes around it too (tokens per program, features per chunk, warps, stages; no register cap); each copy's outputs are
compared with the first copy's. --write-best NAME writes that copy's fastest forward and backward into
gptablate/model/mhcstep.py's TUNING (the entry of the streams' width). --shape times other streams than the 124M
step's (4 streams of WIDTH features, TOKENS tokens: 345M's 1,024 and 1.5B's 1,600 features, say).
A copy whose forward reads x_in' = Σ p_i H'_i in a kernel of its own (READ, since call FK) has it timed alone too,
with the bandwidth its bytes imply, and the copies named by --read at the shapes in READ_SHAPES (the copy's TUNING
kept). A plain copy of the streams (torch) gives the machine's bandwidth for comparison. --reps: the launches a time
is the median of (default 50). --rounds K: at the end, each copy's forward and backward (at its own TUNING) timed again
in turn, K rounds, and the median of the rounds printed: the side-by-side figure least moved by the machine's drift.
"""
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_ab import against, in_turn, load, shape  # noqa: E402
from mhcstep_bench import inputs, write_tuning  # noqa: E402
from addnorm_bench import timed  # noqa: E402

# call DD swept (32, 32, 4, 1-4), (16, 32, 4, 3), (16, 64, 4, 3), (32, 64, 4, 3), (32, 32, 8, 3), (64, 32, 8, 3) with
# the pipelined walks; this list is around its fastest
SHAPES = [(32, 32, 4, 3, None), (32, 32, 2, 3, None), (16, 32, 4, 2, None), (16, 32, 4, 3, None), (16, 32, 4, 4, None),
          (16, 16, 4, 3, None), (16, 16, 4, 4, None), (16, 32, 2, 3, None), (16, 64, 2, 3, None)]
# (tokens a program, features a program, warps) of the read kernel; call FK swept these with a backward dp kernel too
READ_SHAPES = [(4, 256, 4), (2, 256, 2), (8, 256, 4), (8, 256, 8), (4, 512, 4), (2, 512, 4), (8, 128, 4), (1, 256, 2),
               (16, 128, 8)]


def read_alone(mod, H1, p, x_in, reps):
    """The copy's read kernel at its READ, timed alone (ms), printed with its bandwidth."""
    ms = timed(lambda: mod._launch_read(H1, p, x_in), reps)
    print(f"  read at {mod.READ}: {ms:.3f} ms ({(H1.numel() + x_in.numel()) * 4 / ms / 1e9:.2f} TB/s)", flush=True)
    return ms


def main():
    argv = sys.argv[1:]
    M, D = shape(argv)
    n = 4
    print(f"streams: {M} tokens x {n} x {D}", flush=True)
    args = inputs(M, n, D)
    Hk, out, Rk, qk, w, a_pre, _ = args
    write = argv[argv.index("--write-best") + 1] if "--write-best" in argv else None
    sweep = {argv[i + 1] for i, a in enumerate(argv) if a == "--sweep"}
    reads = {argv[i + 1] for i, a in enumerate(argv) if a == "--read"}
    reps = int(argv[argv.index("--reps") + 1]) if "--reps" in argv else 50
    copy = timed(lambda: Hk.clone(), reps)
    print(f"a copy of the streams (torch): {copy:.3f} ms, {2 * Hk.numel() * 4 / copy / 1e9:.2f} TB/s", flush=True)
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 0
    first = None
    timings = {}  # name: (forward, backward) at the copy's own TUNING, for --rounds
    for spec in [a for a in argv if "=" in a]:
        name, path = spec.split("=", 1)
        mod = load(name, path)

        def forward(mod=mod):
            return mod._mhc_step_op(*args, 1e-5, True)

        H1, x_in, z, p, rstd = forward()
        torch.manual_seed(1)
        dH1, dx, dz = torch.randn_like(H1), torch.randn_like(x_in), torch.randn_like(z)

        def backward(mod=mod, H1=H1, z=z, p=p, rstd=rstd, dH1=dH1, dx=dx, dz=dz):
            return mod._mhc_step_backward_op(Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, True)

        results = [H1, x_in, z, p, rstd, *backward()]
        print(f"{name} ({path}): {against(results, first)}", flush=True)
        first = first or results
        committed = mod.TUNING
        by_width = isinstance(committed, dict)  # copies from before TUNING was by width hold one pair
        own = mod.tuning(D) if by_width else committed
        fwd, bwd = {}, {}
        for cfg in dict.fromkeys([own[0], own[1], *(SHAPES if name in sweep else ())]):
            mod.TUNING = {D: (cfg, cfg)} if by_width else (cfg, cfg)
            try:
                fwd[cfg], bwd[cfg] = timed(forward, reps), timed(backward, reps)
            except Exception as e:  # noqa: BLE001 - a shape that does not compile or launch (shared memory)
                print(f"  {cfg}: failed: {str(e)[:160]}", flush=True)
                continue
            print(f"  (tokens, features, warps, stages, maxnreg) {cfg}: forward {fwd[cfg]:.3f} ms, "
                  f"backward {bwd[cfg]:.3f} ms", flush=True)
        mod.TUNING = committed
        if hasattr(mod, "READ"):
            read_alone(mod, H1, p, x_in, reps)
            if name in reads:
                own_read = mod.READ
                for rs in READ_SHAPES:
                    mod.READ = rs
                    print(f"  read {rs}: forward {timed(forward, reps):.3f} ms", flush=True)
                    read_alone(mod, H1, p, x_in, reps)
                mod.READ = own_read
        best = (min(fwd, key=fwd.get), min(bwd, key=bwd.get))
        print(f"  best: forward {best[0]} {fwd[best[0]]:.3f} ms, backward {best[1]} {bwd[best[1]]:.3f} ms: "
              f"{fwd[best[0]] + bwd[best[1]]:.3f} ms a site without the weight-gradient matmul", flush=True)
        if name == write:
            write_tuning(D, best)
        timings[name] = (forward, backward)
    for name, (f, b) in in_turn(timings, rounds, lambda fn: timed(fn, reps)).items():
        print(f"{name} in {rounds} rounds: forward {f:.3f} ms, backward {b:.3f} ms, {f + b:.3f} a site", flush=True)


if __name__ == "__main__":
    main()
