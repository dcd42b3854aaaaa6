"""Hardware yardsticks: the matmul rate measured in this process, and datasheet peaks."""

from __future__ import annotations

import time

import torch

# Dense bf16 tensor-core peaks (TFLOP/s) from the vendors' datasheets, SXM parts.
DATASHEET_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "H800": 989.0, "GH200": 989.0}


def datasheet_peak(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    if "PCIe" in name or "NVL" in name:
        return None  # lower-clocked parts: no single number to trust
    for key, tflops in DATASHEET_BF16_TFLOPS.items():
        if key in name:
            return tflops * 1e12
    return None


def measure_matmul_flops(device: torch.device) -> float:
    """FLOP/s of a large matmul: bf16 on a GPU, fp32 on the CPU. The MFU denominator."""
    if device.type == "cuda":
        n, dtype, reps = 8192, torch.bfloat16, 20
    else:
        n, dtype, reps = 1024, torch.float32, 4
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
