"""hyper's gradients with bf16 streams on the kernels, against fp32 streams rounded as bf16 stores them.

    python3 scripts/device/bf16_grads.py CHECKPOINT DATASET_DIR [--batch 8]

From a trained hyper checkpoint (fp32 streams), on one batch of the dataset's validation tokens, in training's
numerics (bf16 autocast, TF32, the sites' norms folded into the fused steps) and eagerly, the loss and every parameter's
gradient of the same weights taken four ways:
  fp32  the fp32 streams as trained;
  emu   fp32 streams whose values and gradients are rounded to bf16 at each step's boundary (rounding_sides.py both),
        which call GT trained to fp32's loss;
  emu'  emu again, for the noise of a run against itself (atomic sums);
  bf16  arch.hyper.stream_dtype=bfloat16: the bf16 kernels, which GM and GN trained to a higher loss.
Each gradient's distance from emu's is printed relative to emu's norm, per parameter, the largest bf16 distances first:
a bf16 distance well above fp32's (rounding's own size) points at a difference of the bf16 kernels beyond rounding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import rounding_sides  # noqa: E402

from gptablate.data.shards import open_shard  # noqa: E402
from gptablate.model import residuals  # noqa: E402
from gptablate.model.gpt import GPT, GPTConfig  # noqa: E402
from gptablate.recipe import recipe_from_dict  # noqa: E402
from gptablate.train.checkpoint import load_checkpoint  # noqa: E402


DEVICE = "cuda"


def build(ckpt, stream_dtype: str) -> GPT:
    raw = ckpt["recipe"]
    raw["arch"].setdefault("hyper", {})["stream_dtype"] = stream_dtype
    model = GPT(GPTConfig.from_recipe(recipe_from_dict(raw)))
    model.load_state_dict(ckpt["model"])
    model.fused_kernels = True
    return model.to(DEVICE).train()


def grads(model, idx, targets) -> tuple[float, dict]:
    model.zero_grad(set_to_none=True)
    with torch.autocast(DEVICE, dtype=torch.bfloat16):
        loss = model(idx, targets)
    loss.backward()
    return loss.item(), {k: p.grad.detach().float().clone() for k, p in model.named_parameters() if p.grad is not None}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("dataset")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default="cuda", help="cpu: a check of this script, on the fused steps' torch rule")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    torch.backends.cuda.matmul.allow_tf32 = True
    ckpt = load_checkpoint(Path(args.checkpoint))
    T = ckpt["recipe"]["model"]["block_size"]
    val = open_shard(next(Path(args.dataset).glob("*_val_000000.bin")))
    rows = torch.tensor(val[: args.batch * T + 1].astype("int64"))
    idx, targets = rows[:-1].view(args.batch, T).to(DEVICE), rows[1:].view(args.batch, T).to(DEVICE)

    step = residuals.hyper_step
    results = {}
    results["fp32"] = grads(build(ckpt, "float32"), idx, targets)
    rounding_sides.install("both")
    model = build(ckpt, "float32")
    results["emu"] = grads(model, idx, targets)
    results["emu'"] = grads(model, idx, targets)
    residuals.hyper_step = step
    results["bf16"] = grads(build(ckpt, "bfloat16"), idx, targets)

    ref_loss, ref = results["emu"]
    print("loss " + "  ".join(f"{k} {v[0]:.6f}" for k, v in results.items()))
    others = ("fp32", "emu'", "bf16")

    def dist(k, name):
        return ((results[k][1][name] - ref[name]).norm() / ref[name].norm().clamp_min(1e-30)).item()

    table = [(name, ref[name].norm().item(), *(dist(k, name) for k in others)) for name in ref]
    print(f"{'parameter':48s} {'|g| emu':>10s} " + " ".join(f"{k:>9s}" for k in others))
    for name, norm, *d in sorted(table, key=lambda r: -r[4])[:30]:
        print(f"{name:48s} {norm:10.3e} " + " ".join(f"{x:9.2e}" for x in d))
    kinds = {}
    for name, norm, *d in table:
        kind = ".".join(p for p in name.split(".") if not p.isdigit())
        kinds.setdefault(kind, []).append(d)
    print("\nmedian distance by kind of parameter")
    for kind, ds in sorted(kinds.items()):
        med = torch.tensor(ds).median(0).values.tolist()
        print(f"{kind:48s} {len(ds):3d} " + " ".join(f"{x:9.2e}" for x in med))


if __name__ == "__main__":
    main()
