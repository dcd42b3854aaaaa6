"""Triton for the model's custom kernels (sinkhorn.py, hyperstep.py): whether to run them.

Triton ships with CUDA builds of torch; CPU machines usually lack it, and there each operation
runs its torch rule instead. Tests set `INTERPRET` to run the kernels on CPU tensors under
TRITON_INTERPRET=1.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the install
    triton = tl = None

INTERPRET = False


def use_kernel(t: torch.Tensor) -> bool:
    """Run the Triton kernel on this fp32 tensor (the kernels take fp32), rather than the torch rule."""
    return triton is not None and (t.is_cuda or INTERPRET) and t.dtype == torch.float32
