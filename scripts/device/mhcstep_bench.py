"""mhc_step's kernels on the 124M step's streams (61,440 tokens x 4 x 768, fp32): time by block, warps, stages and
register cap.

    python3 scripts/device/mhcstep_bench.py [--write-best]

Prints each kernel's time and the bandwidth its bytes imply, by tokens per program (BM), features per chunk (BK),
warps, pipeline stages and register cap (maxnreg); then the backward's weight-gradient matmul (torch, TF32).
Bytes counted: forward reads H and out and writes H', then reads H' back for x_in (its read kernel, since call FL;
before, a second read of H and out) and writes x_in; backward reads H, out and dx twice (its two walks), dH' once, and
writes dH and d_out. Second reads count in full, as if from memory.
--write-best writes the fastest forward and backward into TUNING[768] in gptablate/model/mhcstep.py.
"""
import ast
import re
import sys
from pathlib import Path

import torch

from addnorm_bench import timed
from gptablate.model import mhcstep as MS


def inputs(M, n, D):
    f = dict(device="cuda", dtype=torch.float32)
    torch.manual_seed(0)
    Hk = torch.randn(M, n, D, **f)
    out = torch.randn(M, D, device="cuda", dtype=torch.bfloat16)
    Rk = torch.full((M, n, n), 1.0 / n, **f)
    qk = torch.ones(M, n, **f)
    w = torch.randn(n * D, 2 * n + n * n, **f) * 0.02
    return Hk, out, Rk, qk, w, torch.tensor([0.01], **f), torch.full((n,), -1.1, **f)


def main(M=61440, n=4, D=768):
    args = inputs(M, n, D)
    Hk, out, Rk, qk, w, a_pre, _ = args
    H1, x_in, z, p, rstd = torch.ops.gptablate.mhc_step(*args, 1e-5, True)
    dH1, dx, dz = torch.randn_like(H1), torch.randn_like(x_in), torch.randn_like(z)
    stream, row = M * n * D * 4, M * D
    fwd_bytes = 3 * stream + row * (2 + 4)
    bwd_bytes = 4 * stream + row * (2 * 2 + 2 * 4 + 2)
    print(f"streams {stream / 1e9:.3f} GB; forward moves {fwd_bytes / 1e9:.2f} GB, backward {bwd_bytes / 1e9:.2f} GB",
          flush=True)
    fwd, bwd = {}, {}
    # call AL swept BM 16, 32 x BK 32, 64 x warps 4, 8 x stages 1, 2, 3 (the first kernels); call AM (BM, BK) (16, 32),
    # (16, 64), (32, 32) x warps 4, 8 x stages 1, 2 x maxnreg None, 128: 4 warps, 2 stages and no cap were best for
    # both kernels; this sweep (call AN) is around that
    for cfg in [(bm, bk, 4, stages, None) for bm, bk in ((16, 64), (32, 32), (32, 64), (64, 16), (64, 32))
                for stages in (2, 3, 4)]:
        MS.TUNING = {D: (cfg, cfg)}
        try:
            fwd[cfg] = timed(lambda: torch.ops.gptablate.mhc_step(*args, 1e-5, True))
            bwd[cfg] = timed(lambda: torch.ops.gptablate.mhc_step_backward(
                Hk, out, Rk, qk, w, a_pre, H1, z, p, rstd, dH1, dx, dz, True))
        except Exception as e:  # e.g. out of shared memory
            print(f"  BM {cfg[0]} BK {cfg[1]} warps {cfg[2]} stages {cfg[3]} maxnreg {cfg[4]}: failed: {str(e)[:160]}",
                  flush=True)
            continue
        print(f"  BM {cfg[0]} BK {cfg[1]} warps {cfg[2]} stages {cfg[3]} maxnreg {cfg[4]}: forward {fwd[cfg]:.3f} ms "
              f"({fwd_bytes / fwd[cfg] / 1e6:.0f} GB/s), backward {bwd[cfg]:.3f} ms "
              f"({bwd_bytes / bwd[cfg] / 1e6:.0f} GB/s)", flush=True)
    best = (min(fwd, key=fwd.get), min(bwd, key=bwd.get))
    print(f"best: forward {best[0]} {fwd[best[0]]:.3f} ms, backward {best[1]} {bwd[best[1]]:.3f} ms", flush=True)
    MS.TUNING = {D: best}
    torch.backends.cuda.matmul.allow_tf32 = True  # as the engine sets it
    mm = timed(lambda: H1.reshape(M, n * D).t() @ dz)
    print(f"backward's weight-gradient matmul (tf32): {mm:.3f} ms", flush=True)
    torch.backends.cuda.matmul.allow_tf32 = False
    print(f"a site: {fwd[best[0]] + bwd[best[1]] + mm:.3f} ms", flush=True)
    if "--write-best" in sys.argv:
        write_tuning(D, best)


def write_tuning(width: int, best, module=MS, name: str = "TUNING") -> None:
    """module.name[width] = best in the module's file (a table by width, the module this process imported; its other
    widths' entries as the file has them): mhcstep.py's TUNING for --write-best here and in mhcstep_ab.py, and
    aggregate.py's AGG_MANY for aggregate_bench.py --many."""
    path = Path(module.__file__)
    text = path.read_text()
    line = re.search(rf"^{name} = (.*)$", text, flags=re.M)
    table = {**ast.literal_eval(line.group(1)), width: best}
    text = text[:line.start(1)] + repr(dict(sorted(table.items()))) + text[line.end(1):]
    path.write_text(text)
    print(f"wrote to {path}: {name}[{width}] = {best}", flush=True)


if __name__ == "__main__":
    main()
