"""The fused-operation keys' shared choice (model/kernels.py: train.norm_kernel, arch.hyper.kernel, arch.mhc.kernel)."""

import torch

from gptablate.model.kernels import chosen, triton_available
from gptablate.train.engine import fused_kernels


def test_auto_takes_the_fused_operations_on_cuda_with_triton_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert chosen("fused", cpu) and chosen("fused", cuda)
    assert not chosen("torch", cpu) and not chosen("torch", cuda)
    assert not chosen("auto", cpu)
    assert chosen("auto", cuda) is triton_available()
    for setting in ("auto", "fused", "torch"):
        for device in (cpu, cuda):
            assert fused_kernels(setting, device) is chosen(setting, device)
