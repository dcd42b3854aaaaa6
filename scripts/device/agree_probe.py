"""One rank (or more) under gptablate.train.torchrun with NCCL: agree_on_run's all_gather_object of the resolved
recipes on CUDA tensors, as train does before its first step; prints what each rank agreed on. Device call HJ."""

import sys
import tempfile
from pathlib import Path

import torch.distributed as dist

from gptablate.recipe import load_recipe
from gptablate.train.engine import agree_on_run, init_distributed

dinfo, device = init_distributed("cuda")
if not dist.is_initialized():  # at one rank train has no process group; the probe makes one
    dist.init_process_group("nccl", device_id=device)
recipe = load_recipe("gpt2_124m", sys.argv[1:])
with tempfile.TemporaryDirectory() as folder:
    agreed = agree_on_run(recipe, f"run-of-rank-{dinfo.rank}", Path(folder), dinfo)
print(f"rank {dinfo.rank} of {dinfo.world_size} on {device}: agreed on {agreed}", flush=True)
