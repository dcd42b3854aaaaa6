"""hyper_step's kernels from several copies of gptablate/model/hyperstep.py, timed side by side on the same inputs.

    python3 scripts/device/hyperstep_ab.py NAME=PATH [NAME=PATH ...] [--eight-warps | --warps W,W...]
        [--write-best NAME] [--shape TOKENS,WIDTH] [--tokens T,T...] [--rounds K] [--streams bf16]
    python3 scripts/device/hyperstep_ab.py --static NAME=PATH [NAME=PATH ...] [--shape TOKENS,WIDTH]

Each PATH is a copy of hyperstep.py (the committed one, an experiment, the code before a change), loaded as a module of
its own inside gptablate.model (its custom ops renamed so that the copies do not collide) and called through its
forward_kernel and backward_kernel. For the dynamic LayerNorm site with the site's norm folded in (what the model takes)
on the 124M step's streams (61,440 x 4 x 768), each copy's forward and backward are timed at its own TUNING and STAGES,
then with the token loops at 1 and 2 pipeline stages and at the compiler's register count and caps of 128 and 168 (three
programs of 4 warps an SM; with --eight-warps also at 8 warps, uncapped and capped at 96 and 128; --warps lists the
warps, each with its caps in CAPS), and its outputs are compared with the first copy's. The warps are TUNING's: a copy
that scales them to the row (kernels.row_warps; hyperstep.launch_warps since the row is held in parts) launches more on
wider rows, and the lines say with how many. --write-best NAME writes that copy's fastest forward and backward (stages,
warps and cap each) into gptablate/model/hyperstep.py's STAGES (STAGES_BF16 with --streams bf16) and TUNING["norm"].
--shape times other streams than the 124M step's (1.5B's micro-batch: 16384,1600; micro-batch 12, the original runs'
12 x 5: 12288,768). --tokens times
each copy at its own warps, caps and stages with these tokens a program too (the forward's and backward's alike).
--rounds K: at the end, each copy's forward and backward at its own tuning timed again in turn, K rounds, and the median
of the rounds printed. --streams bf16: the streams H, H', dH' and dH in bf16 (arch.hyper.stream_dtype; call FZ swept
them: fp32's tuning was within 2% of the best shapes). --static does the same for copies of hyperstatic.py: the static
site's forward with the next site's LayerNorm (what the model takes) at FWD_NORM's tokens and warps and three shapes
around them, and its backward at BWD_NORM.
"""
import importlib.util
import sys
from pathlib import Path

import torch
import triton

sys.path.insert(0, str(Path(__file__).parent))
from hyperstep_bench import inputs, timed, write_tuning  # noqa: E402

import gptablate.model  # noqa: E402, F401 - the package the copies' relative imports resolve in


def load(name: str, path: str):
    """A copy of one of gptablate/model's kernel modules as module gptablate.model.ab_NAME, its custom ops renamed
    (gptablate::ab_NAME_...). mhcstep_ab.py loads its copies with it too."""
    text = Path(path).read_text().replace('"gptablate::', f'"gptablate::ab_{name}_')
    spec = importlib.util.spec_from_loader(f"gptablate.model.ab_{name}", loader=None)
    module = importlib.util.module_from_spec(spec)
    module.__package__ = "gptablate.model"
    module.__file__ = path
    exec(compile(text, path, "exec"), module.__dict__)
    return module


def against(results, first):
    """How a copy's outputs differ from the first copy's, each relative to the first's largest entry."""
    if first is None:
        return "the reference"
    return "largest difference from the first, relative to its largest entry: " + ", ".join(
        f"{((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30)).item():.1e}"
        for a, b in zip(results, first))


# The register caps tried at each count of warps (None: the compiler's choice).
CAPS = {1: (None,), 2: (None, 168), 4: (None, 128, 168), 8: (None, 96, 128), 16: (None, 64)}


def in_turn(calls: dict, rounds: int, timer) -> dict:
    """{name: (forward, backward)} timed in turn, `rounds` times (timer(fn) -> ms): {name: (the forward's median, the
    backward's)}; --rounds in this script, mhcstep_ab.py and sinkhorn_bench.py."""
    laps = {name: ([], []) for name in calls}
    for _ in range(rounds):
        for name, (forward, backward) in calls.items():
            laps[name][0].append(timer(forward))
            laps[name][1].append(timer(backward))
    return {name: (sorted(f)[len(f) // 2], sorted(b)[len(b) // 2]) for name, (f, b) in laps.items() if f}


def shape(argv) -> tuple[int, int]:
    """(tokens, width) from --shape TOKENS,WIDTH, else the 124M step's."""
    return tuple(map(int, argv[argv.index("--shape") + 1].split(","))) if "--shape" in argv else (61440, 768)


def static(specs):
    (M, D), n = shape(sys.argv), 4
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    H = torch.randn(M, n, D, **f)
    out = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    mix, b, r = torch.randn(n, n, **f), torch.ones(n, **f), torch.randn(n, **f)
    weight, bias = 1 + 0.1 * torch.randn(D, **f), 0.1 * torch.randn(D, **f)
    dH1, g = torch.randn(M, n, D, **f), torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    first = None
    for spec in specs:
        name, path = spec.split("=", 1)
        mod = load(name, path)

        def forward():
            return mod._static_step_op(H, out, mix, b, r, weight, bias, 1e-5, True, torch.bfloat16, True)

        H1, x, h, mean, rstd = forward()

        def backward():
            return mod._static_step_backward_op(H, out, mix, b, r, dH1, g, x, mean, rstd, weight, True, True)

        results = [H1, x, h, mean, rstd, *backward()]
        print(f"{name} ({path}): {against(results, first)}", flush=True)
        first = first or results
        committed = mod.FWD_NORM
        for tw in dict.fromkeys((committed, (1, 8), (2, 4), (2, 8), (1, 16))):
            mod.FWD_NORM = tw
            print(f"  forward at (tokens, warps) {tw}: {timed(forward):.3f} ms", flush=True)
        mod.FWD_NORM = committed
        print(f"  backward at BWD_NORM {mod.BWD_NORM}: {timed(backward):.3f} ms", flush=True)


def main():
    if "--static" in sys.argv:
        static([a for a in sys.argv[1:] if "=" in a])
        return
    (M, D), n = shape(sys.argv), 4
    args = inputs(M, n, D, True, norm=True)
    Hk, out, Ck, wt, bw, s, a_s, b_s, nw, nb, eps, _, _, center, h_dtype = args
    bf16 = "--streams" in sys.argv and sys.argv[sys.argv.index("--streams") + 1] == "bf16"
    streams = torch.bfloat16 if bf16 else torch.float32
    Hk = Hk.to(streams)
    torch.manual_seed(1)
    dH1 = torch.randn(M, n, D, device="cuda").to(streams)
    dy = torch.randn(M, D, device="cuda", dtype=h_dtype)
    dC1 = torch.randn(M, n, n + 2, device="cuda")
    first = None
    argv = sys.argv[1:]
    write = argv[argv.index("--write-best") + 1] if "--write-best" in argv else None
    specs = [a for a in argv if "=" in a]
    warps_tried = [4, 8] if "--eight-warps" in argv else [4]
    if "--warps" in argv:
        warps_tried = [int(w) for w in argv[argv.index("--warps") + 1].split(",")]
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 0
    own = {}  # name: (forward, backward), for --rounds
    for spec in specs:
        name, path = spec.split("=", 1)
        mod = load(name, path)

        def launched(mod=mod):
            k = mod._launch_shape(Hk, True, True)
            return k["fwd"]["num_warps"], k["bwd"]["num_warps"]

        def forward(mod=mod):
            return mod.forward_kernel(Hk, out, Ck, wt, bw, s, a_s, b_s, eps, True, True, center, nw, nb, h_dtype)

        fw_out = forward()
        H1, y, C1, z, mean, rstd, nmean, nrstd = fw_out

        def backward(mod=mod, H1=H1, C1=C1, z=z, mean=mean, rstd=rstd, nmean=nmean, nrstd=nrstd):
            return mod.backward_kernel(Hk, out, Ck, wt, bw, s, H1, C1, z, mean, rstd, dH1, dy, dC1, True, True, center,
                                       nw, nmean, nrstd)

        own[name] = (forward, backward)

        results = [t for t in (*fw_out, *backward()) if t is not None]
        print(f"{name} ({path}): {against(results, first)}", flush=True)
        first = first or results
        # the copy's stages for these streams (STAGES, or STAGES_BF16 where a copy has them and the streams are bf16)
        stages_name = "STAGES_BF16" if bf16 and hasattr(mod, "STAGES_BF16") else "STAGES"
        tuning, stages0 = dict(mod.TUNING), getattr(mod, stages_name)
        tokens = tuning["norm"][0]
        fw, bw_ms = timed(forward), timed(backward)
        print(f"  own TUNING {tuning['norm']}, STAGES {stages0} (launched with {launched()} warps): "
              f"forward {fw:.3f} ms, backward {bw_ms:.3f} ms", flush=True)
        if "--tokens" in argv:
            for t in map(int, argv[argv.index("--tokens") + 1].split(",")):
                mod.TUNING = {**tuning, "norm": (t, *tuning["norm"][1:])}
                print(f"  {t} tokens a program ({triton.cdiv(M, t)} programs): forward {timed(forward):.3f} ms, "
                      f"backward {timed(backward):.3f} ms", flush=True)
            mod.TUNING = tuning
        times = {}
        configs = [(st, w, cap) for w in warps_tried for st in (1, 2) for cap in CAPS[w]]
        for stages, warps, cap in configs:
            setattr(mod, stages_name, (stages, stages))
            mod.TUNING = {**tuning, "norm": (tokens, (warps, cap), (warps, cap))}
            label = f"stages {stages} warps {warps} (launched with {launched()[0]}) maxnreg {cap}"
            try:
                fw, bw_ms = timed(forward), timed(backward)
            except Exception as e:  # noqa: BLE001 - a configuration that does not compile or launch
                print(f"  {label}: failed: {str(e)[:200]}", flush=True)
                continue
            times[stages, warps, cap] = (fw, bw_ms)
            print(f"  {label}: forward {fw:.3f} ms, backward {bw_ms:.3f} ms", flush=True)
        mod.TUNING = tuning
        setattr(mod, stages_name, stages0)
        (fs, fw_, fc), (bs, bw_, bc) = (min(times, key=lambda k: times[k][0]), min(times, key=lambda k: times[k][1]))
        print(f"  best: forward stages {fs} warps {fw_} maxnreg {fc} ({times[fs, fw_, fc][0]:.3f} ms), backward stages "
              f"{bs} warps {bw_} maxnreg {bc} ({times[bs, bw_, bc][1]:.3f} ms): "
              f"{times[fs, fw_, fc][0] + times[bs, bw_, bc][1]:.3f} ms a site", flush=True)
        if name == write:
            write_tuning(stages=(fs, bs), rows={"norm": (tokens, (fw_, fc), (bw_, bc))}, stages_name=stages_name)
    for name, (f, b) in in_turn(own, rounds, timed).items():
        print(f"{name} in {rounds} rounds: forward {f:.3f} ms, backward {b:.3f} ms, {f + b:.3f} a site", flush=True)


if __name__ == "__main__":
    main()
