"""Times the MLP's matmuls with the GELU in their epilogues (model/mlp.py) at the 124M step's MLP (61,440 x 768 ->
3,072), against cuBLAS's matmul followed by bias_gelu's kernels (the path they replace).

    python3 scripts/device/mlp_bench.py [--write-best]

Rows: cuBLAS's matmul alone and with bias_gelu's kernel after it, forward and backward; then each kernel
by tile, group, warps and pipeline stages, checked against the torch rule; then the whole MLP forward and
backward (autograd, bf16 weights) both ways. --write-best sets the fastest tiles in gptablate/model/mlp.py
(for the rest of a device call). `check` instead runs the kernels against the torch rule at the 124M, 345M
and 1.5B widths and a ragged row count.
"""
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from gptablate.model import biasgelu as BG
from gptablate.model import mlp as MLP

sys.path.insert(0, str(Path(__file__).parent))
from addnorm_bench import timed  # noqa: E402

CONFIGS = [("plain", 128, 256, 64, 8, 8, 4)] + [
    (kind, bm, bn, 64, 8, warps, stages) for kind in ("tma", "tma-flat")
    for bm, bn, warps in ((128, 128, 4), (128, 128, 8), (128, 256, 8)) for stages in (3, 4)]


def tensors(M, C, H, seed=0):
    torch.manual_seed(seed)
    bf = dict(device="cuda", dtype=torch.bfloat16)
    x = torch.randn(M, C, **bf)
    w_fc, w_proj = torch.randn(H, C, **bf) * 0.02, torch.randn(C, H, **bf) * 0.02
    b = torch.randn(H, device="cuda") * 0.1
    dy = torch.randn(M, C, **bf) * 0.01
    return x, w_fc, b, w_proj, dy


def errors(x, w_fc, b, w_proj, dy, keys=("up", "down")):
    """Largest differences of the kernels' outputs from the torch rule, relative to the largest value."""
    _, pre_r, act_r = MLP.mlp_reference(x, w_fc, b, w_proj)

    def rel(a, r):
        return ((a.float() - r.float()).abs().max() / r.float().abs().max()).item()

    e = {}
    if "up" in keys:
        act, pre = MLP.up(x, w_fc, b)
        e.update(act=rel(act, act_r), pre=rel(pre, pre_r))
    if "down" in keys:
        dpre, db = MLP.down(dy, w_proj, pre_r)
        g = (dy.float() @ w_proj.float()) * MLP._gelu_parts(pre_r.float())[1]
        e.update(dpre=rel(dpre, g), db=rel(db, g.sum(0)))
    return e


def check() -> None:
    worst = {}
    for M, C, H in ((61440, 768, 3072), (30720, 1024, 4096), (4096, 1600, 6400), (1000, 768, 3072), (77, 64, 256)):
        e = errors(*tensors(M, C, H))
        print(f"M {M} C {C} H {H}: " + ", ".join(f"{k} {v:.1e}" for k, v in e.items()), flush=True)
        for k, v in e.items():
            worst[k] = max(worst.get(k, 0.0), v)
    # bf16 outputs: one rounding (2^-8 of the largest value) and the order of the sums
    assert worst["act"] < 1e-2 and worst["pre"] < 1e-2 and worst["dpre"] < 1e-2 and worst["db"] < 1e-3, worst
    print("check ok", worst)


def main() -> None:
    if "check" in sys.argv:
        return check()
    M, C, H = 61440, 768, 3072
    x, w_fc, b, w_proj, dy = tensors(M, C, H)
    pre = torch.mm(x, w_fc.t())
    gb = 2 * M * H / 1e9  # one (M, H) bf16 tensor, GB
    mm_up = timed(lambda: torch.mm(x, w_fc.t()))
    cur_up = timed(lambda: BG._bias_gelu_op(torch.mm(x, w_fc.t()), b))
    mm_down = timed(lambda: torch.mm(dy, w_proj))
    cur_down = timed(lambda: BG._bias_gelu_backward_op(pre, b, torch.mm(dy, w_proj)))
    flops = 2 * M * C * H
    print(f"cuBLAS x W_fc^T {mm_up:.3f} ms ({flops / mm_up / 1e9:.0f} TFLOP/s); with bias_gelu's forward {cur_up:.3f} ms")
    print(f"cuBLAS dY W_proj {mm_down:.3f} ms ({flops / mm_down / 1e9:.0f} TFLOP/s); with bias_gelu's backward "
          f"{cur_down:.3f} ms (a (M, H) bf16 tensor is {gb:.3f} GB)", flush=True)
    best = {}
    for key, fn in (("up", lambda: MLP.up(x, w_fc, b)), ("down", lambda: MLP.down(dy, w_proj, pre))):
        times = {}
        for cfg in CONFIGS:
            MLP.TUNING[key] = cfg
            try:
                ms = timed(fn)
                e = errors(x[:4096], w_fc, b, w_proj, dy[:4096], (key,))
            except Exception as ex:  # a tile that does not fit shared memory
                print(f"  {key} {cfg}: failed: {str(ex)[:160]}", flush=True)
                continue
            ok = max(e.values()) < 1e-2
            print(f"  {key} {cfg}: {ms:.3f} ms ({flops / ms / 1e9:.0f} TFLOP/s){'' if ok else ' WRONG ' + str(e)}",
                  flush=True)
            if ok:
                times[cfg] = ms
        if not times:
            print(f"  {key}: no configuration ran", flush=True)
            return
        best[key] = min(times, key=times.get)
        MLP.TUNING[key] = best[key]
        print(f"  {key}: fastest {best[key]}: {times[best[key]]:.3f} ms", flush=True)

    def step(fused):
        xs, wf, bb, wp = (t.detach().requires_grad_() for t in (x, w_fc, b, w_proj))
        if fused:
            y = MLP.mlp(xs, wf, bb, wp)
        else:
            y = F.linear(BG.bias_gelu(F.linear(xs, wf), bb), wp)
        y.backward(dy)

    plain, fused = timed(lambda: step(False)), timed(lambda: step(True))
    print(f"MLP forward and backward (6 matmuls): cuBLAS and bias_gelu {plain:.3f} ms, these kernels {fused:.3f} ms "
          f"({plain - fused:+.3f} ms a layer)", flush=True)
    if "--write-best" in sys.argv:
        path = Path(MLP.__file__)
        text, done = re.subn(r"^TUNING = .*$", f"TUNING = {best!r}", path.read_text(), flags=re.M)
        assert done == 1
        path.write_text(text)
        print(f"wrote to {path}: TUNING = {best}")


if __name__ == "__main__":
    main()
