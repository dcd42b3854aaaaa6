"""NCCL all-reduce bandwidth between this machine's GPUs (torchrun --nproc-per-node N).

Times torch.distributed.all_reduce of fp32 buffers the size of GPT-2 124M's and 345M's
gradients and prints algorithm and bus bandwidth (bus = algorithm x 2(N-1)/N, nccl-tests' rule).
"""
import os
import time

import torch
import torch.distributed as dist

dist.init_process_group("nccl")
rank, world = dist.get_rank(), dist.get_world_size()
torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
for name, numel in (("124M grads", 124_000_000), ("345M grads", 354_000_000), ("25 MB bucket", 6_553_600)):
    buf = torch.ones(numel, device="cuda")
    for _ in range(3):
        dist.all_reduce(buf)
    torch.cuda.synchronize()
    reps = 10
    t0 = time.perf_counter()
    for _ in range(reps):
        dist.all_reduce(buf)
    torch.cuda.synchronize()
    dt = (time.perf_counter() - t0) / reps
    algbw = numel * 4 / dt / 1e9
    if rank == 0:
        print(f"{world} GPUs, {name} ({numel * 4 / 1e9:.2f} GB fp32): {dt * 1e3:.2f} ms, "
              f"algbw {algbw:.0f} GB/s, busbw {algbw * 2 * (world - 1) / world:.0f} GB/s", flush=True)
dist.destroy_process_group()
