"""Times copies of model/aggregate.py's pull kernel (attnres full's backward) side by side on the same inputs: the
124M step's rows (61,440 tokens x 768; --shape TOKENS,WIDTH for others), a bf16 source and stack, at sites 0, 1, 12
and 24 of 25 (--sites S), each copy at its own committed AGG_PULL tuning and at those of --tunings whose length
its entries have (programs per SM, warps, stages, tokens a block). Copies take the pull operation's arguments as
they are since the forward saves the scores (site k's, before the stacks).

    python3 scripts/device/pull_ab.py NAME=PATH [NAME=PATH ...] [--sites S] [--tunings 16,1,3,2 8,1,4,1 ...]

Outputs are compared with the first copy's (a probe that leaves work out, to time it, differs by design)."""
import sys

import torch

from addnorm_bench import timed
from aggregate_bench import pull_tensors
from hyperstep_ab import against, load, shape
from gptablate.model.kernels import by_width


def main() -> None:
    M, D = shape(sys.argv)
    S = int(sys.argv[sys.argv.index("--sites") + 1]) if "--sites" in sys.argv else 25
    tunings = []
    if "--tunings" in sys.argv:
        tunings = [tuple(int(x) for x in t.split(",")) for t in sys.argv[sys.argv.index("--tunings") + 1:]
                   if "," in t and "=" not in t]
    copies = [(a.split("=", 1)[0], load(a.split("=", 1)[0], a.split("=", 1)[1])) for a in sys.argv[1:]
              if "=" in a and not a.startswith("--")]
    torch.manual_seed(0)
    stack0, stats0, U = pull_tensors(M, D, S)
    v = (torch.randn(M, D, device="cuda") * 3).to(torch.bfloat16)
    for k in sorted({0, 1, S // 2, S - 1}):
        # v, g, stack row k, dv; the rows above; lse, ḡ·h and the score of each site, and b
        moved = M * D * (2 * 4 + 2 * (S - k - 1)) + 16 * M * (S - k)
        first = None
        for name, module in copies:
            committed = module.AGG_PULL
            for tuning in [None] + [t for t in tunings if len(t) == len(by_width(committed, D))]:
                module.AGG_PULL = committed if tuning is None else {D: tuning}
                stack, stats = stack0.clone(), stats0.clone()
                run = lambda: module._aggregate_pull_op(v, stack0[k], stats0[k, 0], stats0[k, 1],
                                                        stats0[k, 2:3 + k], stack, stats, U, k, 1e-5)
                out = run()
                ms = timed(run)
                at = tuning or f"committed {by_width(committed, D)}"
                print(f"site {k} of {S} ({S - k} rows), {name} at {at}: {ms:.3f} ms, {moved / ms / 1e9:.2f} TB/s; "
                      f"{against(out, first)}", flush=True)
                first = first or out
            module.AGG_PULL = committed


if __name__ == "__main__":
    main()
