"""Normalization layers, selected by `arch.norm`."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import NORMS


@NORMS.register("layernorm")
class LayerNorm(nn.Module):
    """LayerNorm (Ba et al. 2016, arXiv 1607.06450), GPT-2's norm; bias only if model.bias."""

    def __init__(self, dim: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


@NORMS.register("rmsnorm")
class RMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019, arXiv 1910.07467): x * rsqrt(mean(x^2) + eps) * w, in fp32."""

    def __init__(self, dim: int, bias: bool = True):  # bias: unused, RMSNorm has none
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)
        return (y * self.weight.float()).type_as(x)
