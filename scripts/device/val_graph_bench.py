"""Validation through the compiled training graph against the eval-mode graph (validation_loss's training_graph).

    GPTABLATE_DATA=... python3 scripts/device/val_graph_bench.py [DATASET] [WINDOWS]

The 124M recipe's model on one GPU, set up as the engine sets it (fused operations, the fused loss, compiled with
its options, bf16 autocast), trained 30 steps on DATASET's training tokens so that it is not at its initial loss;
then the validation over WINDOWS windows (default 2,048) both ways, each twice: the first call of each holds what it
compiles. Prints each call's seconds and loss, and the two losses' difference.
"""
import contextlib
import sys
import time

import torch

from gptablate.data.loader import TrainBatches, val_windows
from gptablate.data.shards import open_dataset
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.paths import data_root
from gptablate.recipe import load_recipe
from gptablate.train.engine import DistInfo, attention_kernels, fused_kernels, fused_loss_dtype, validation_loss


def main() -> None:
    name = sys.argv[1] if len(sys.argv) > 1 else "pysrc"
    n_windows = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
    recipe = load_recipe("gpt2_124m", [f"data.dataset={name}"])
    device = torch.device("cuda", 0)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_recipe(recipe)).to(device)
    model.fused_kernels = fused_kernels("auto", device)
    model.fused_loss_dtype = fused_loss_dtype("auto", device, torch.bfloat16)
    compiled = torch.compile(model, options=model.compile_options())
    autocast = torch.autocast("cuda", dtype=torch.bfloat16)
    micro = 60
    dataset = open_dataset(data_root() / name)
    batches = TrainBatches(dataset, 1024, 1, micro, 0, 1, micro, device)
    windows = val_windows(dataset, 1024, (n_windows + 1) * 1024)[:n_windows]
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, fused=True)
    stack = contextlib.ExitStack()
    stack.enter_context(attention_kernels("auto", device))
    t0 = time.perf_counter()
    for step in range(30):
        x, y = batches.get(step, 0)
        with autocast:
            loss = compiled(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    print(f"30 training steps (compiling the training graph): {time.perf_counter() - t0:.1f} s, loss {loss.item():.4f}")
    got = {}
    for way, flag in (("training graph", True), ("eval graph", False), ("training graph", True), ("eval graph", False)):
        torch.cuda.synchronize()
        t = time.perf_counter()
        v = validation_loss(compiled, windows, micro, device, autocast, DistInfo(), fallback_model=model,
                            training_graph=flag)
        torch.cuda.synchronize()
        print(f"{way}: {time.perf_counter() - t:.2f} s, loss {v:.6f}, peak {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
        got.setdefault(way, []).append(v)
    a, b = got["training graph"][-1], got["eval graph"][-1]
    print(f"difference {a - b:+.2e} ({(a - b) / b:+.2e} relative); {len(windows)} windows, micro-batch {micro}")
    stack.close()


if __name__ == "__main__":
    main()
