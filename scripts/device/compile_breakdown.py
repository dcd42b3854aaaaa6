"""Where a cold compile's seconds go: a short `train` run in this process, then dynamo's phase table.

`python3 scripts/device/compile_breakdown.py RECIPE [--set k=v ...]`: runs `gptablate train` in-process with
every Triton JIT compilation in this process timed (our own kernels: add_norm, bias_gelu, the q/k/v join, the
loss; inductor compiles its kernels in worker processes), then prints torch._dynamo's compile times (seconds
per phase, summed over graphs) and the JIT table. Run it with empty TORCHINDUCTOR_CACHE_DIR and TRITON_CACHE_DIR
for a cold start.
"""

import sys
import time
from collections import defaultdict

T0 = time.time()
jit = defaultdict(lambda: [0, 0.0])


def hook_triton() -> None:
    try:
        from triton.runtime.jit import JITFunction
    except ImportError:
        return
    inner = JITFunction._do_compile

    def timed(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(self, *args, **kwargs)
        finally:
            row = jit[getattr(self, "__name__", repr(self))]
            row[0] += 1
            row[1] += time.perf_counter() - t

    JITFunction._do_compile = timed


if __name__ == "__main__":
    hook_triton()
    import torch._dynamo.utils as dynamo_utils

    from gptablate_cli.main import app

    print(f"[{time.time() - T0:6.2f}] imports done", flush=True)
    try:
        app(["train", *sys.argv[1:]])
    except SystemExit as e:
        print(f"[{time.time() - T0:6.2f}] train exited {e.code}", flush=True)
    print(dynamo_utils.compile_times(repr="str", aggregate=True))
    print("Triton JIT compilations in this process (kernel, count, seconds):")
    for name, (n, s) in sorted(jit.items(), key=lambda kv: -kv[1][1]):
        print(f"  {name:40s} {n:3d} {s:7.2f}")
    print(f"  total {sum(s for _, s in jit.values()):.2f} s")
