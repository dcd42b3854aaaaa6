"""Where a `train` run's start-up goes, from the process's start to its training loop (the part of target 5's arm
before compilation).

`python3 scripts/device/setup_breakdown.py RECIPE [--set k=v ...]`: runs `gptablate train RECIPE --set
train.max_iters=1 ...` in this process under cProfile from the CLI's entry to the loop's start (the profiler stops
when the engine opens its garbage-collector clock, just before the first step), then prints the seconds from the
interpreter's start to the CLI's entry (imports before it), the profiled span, and the calls of that span with the
largest cumulative times. Run `python3 -X importtime -c "import gptablate.train.engine"` for the imports' tree.
"""

import cProfile
import io
import pstats
import sys
import time

T_ENTRY = time.perf_counter()  # as close to the interpreter's start as a script gets

import gptablate.train.engine as engine  # noqa: E402
from gptablate.train.heap import CollectorClock  # noqa: E402

state = {"prof": cProfile.Profile(), "t0": None, "t1": None}


class StopProfiling(CollectorClock):
    def __enter__(self):
        if state["t1"] is None:
            state["prof"].disable()
            state["t1"] = time.perf_counter()
        return super().__enter__()


def main() -> None:
    from gptablate_cli.main import main as cli_main

    engine.CollectorClock = StopProfiling
    args = ["train", *sys.argv[1:], "--set", "train.max_iters=1", "--set", "data.eval_interval=1"]
    sys.argv = ["gptablate", *args]
    t_imports = time.perf_counter() - T_ENTRY
    state["t0"] = time.perf_counter()
    state["prof"].enable()
    try:
        cli_main()
    except SystemExit:
        pass
    state["prof"].disable()
    span = (state["t1"] or time.perf_counter()) - state["t0"]
    print(f"==== script start to the CLI's entry: {t_imports:.2f} s (torch, the engine and what they import)")
    print(f"==== CLI entry to the training loop: {span:.2f} s (profiled), the calls with the largest cumulative times:")
    out = io.StringIO()
    pstats.Stats(state["prof"], stream=out).sort_stats("cumulative").print_stats(45)
    print(out.getvalue())


if __name__ == "__main__":
    main()
