"""The engine's own training step profiled, where profile_step.py profiles a bare step of the same model.

`python3 scripts/device/engine_profile.py [RECIPE] [--set k=v ...]`: runs `gptablate bench RECIPE (gpt2_124m) --steps 30
[--set ...]` in
this process with torch.profiler (CPU and CUDA) on from the end of optimizer step 20 to the end of step 25, found by a
global optimizer step hook, then prints the wall time a step (host clock between the hooks), the GPU's busy time and
idle gaps (profile_step.gaps_of), and the host's longest runtime calls (waits on the GPU show as long synchronizing
calls): whether the GPU waits on the host anywhere in the engine's loop.
"""

import os
import sys
import time

import torch
from torch.optim.optimizer import register_optimizer_step_post_hook
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from profile_step import gaps_of  # noqa: E402

START, STOP = 20, 25


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
state = {"n": 0, "prof": None, "t": None}


def hook(optimizer, args, kwargs):
    state["n"] += 1
    if state["n"] == START:
        sync()
        state["prof"] = profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA])
        state["prof"].start()
        state["t"] = time.perf_counter()
    elif state["n"] == STOP:
        sync()
        wall = (time.perf_counter() - state["t"]) / (STOP - START)
        state["prof"].stop()
        steps = STOP - START
        print(f"==== engine step, profiled: wall {wall * 1e3:.2f} ms a step (host clock, with the profiler)", flush=True)
        trace = gaps_of(state["prof"], steps, 12)
        busy = sum(e["dur"] for e in trace if e.get("cat") in ("kernel", "gpu_memcpy", "gpu_memset"))
        print(f"  GPU busy {busy / steps / 1e3:.2f} ms a step")
        runtime = sorted((e for e in trace if e.get("cat") == "cuda_runtime"), key=lambda e: -e["dur"])
        waits = [e for e in runtime if "ynchronize" in e["name"] or "Memcpy" in e["name"]]
        print(f"  host runtime calls a step: {len(runtime) / steps:.0f}, their time {sum(e['dur'] for e in runtime) / steps / 1e3:.2f} ms; "
              f"synchronizing/copy calls {sum(e['dur'] for e in waits) / steps / 1e3:.2f} ms")
        for e in runtime[:8]:
            print(f"  {e['dur']:9.0f} us  {e['name'][:80]}")
        python = sorted((e for e in trace if e.get("cat") in ("python_function", "cpu_op", "user_annotation")
                         and e.get("dur", 0) > 0), key=lambda e: -e["dur"])
        for e in python[:6]:
            print(f"  host op {e['dur']:9.0f} us  {e['name'][:90]}")


if __name__ == "__main__":
    register_optimizer_step_post_hook(hook)
    from gptablate_cli.main import app

    try:
        args = sys.argv[1:] if sys.argv[1:2] and not sys.argv[1].startswith("-") else ["gpt2_124m", *sys.argv[1:]]
        app(["bench", *args[:1], "--steps", "30", *args[1:]])
    except SystemExit:
        pass
