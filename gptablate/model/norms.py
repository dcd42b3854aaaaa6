"""Normalization layers, selected by `arch.norm`.

Every norm is built as `Norm(dim, bias=model.bias, settings=...)` over the last dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import NORMS


@NORMS.register("layernorm")
class LayerNorm(nn.Module):
    """LayerNorm (Ba et al. 2016, arXiv 1607.06450), GPT-2's norm; bias only if model.bias."""

    def __init__(self, dim: int, bias: bool = True, settings=None):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


@NORMS.register("rmsnorm")
class RMSNorm(nn.Module):
    """RMSNorm (Zhang & Sennrich 2019, arXiv 1910.07467): x·rsqrt(mean(x²) + 1e-5)·w, in fp32."""

    def __init__(self, dim: int, bias: bool = True, settings=None):  # no bias, whatever model.bias
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + 1e-5)
        return (y * self.weight.float()).type_as(x)


@NORMS.register("scalenorm")
class ScaleNorm(nn.Module):
    """ScaleNorm (Nguyen & Salazar 2019, arXiv 1910.05895): g·x / max(‖x‖₂, 1e-5), one scalar g = √D."""

    def __init__(self, dim: int, bias: bool = True, settings=None):
        super().__init__()
        self.g = nn.Parameter(torch.tensor(math.sqrt(dim)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (self.g * xf / xf.norm(dim=-1, keepdim=True).clamp_min(1e-5)).type_as(x)


@NORMS.register("dyt")
class DyT(nn.Module):
    """Dynamic Tanh (Zhu et al. 2025, arXiv 2503.10622): w·tanh(α·x) + b, no reduction; α = alpha0."""

    @dataclass(frozen=True)
    class Settings:
        alpha0: float = 0.5  # α's value at step 0

    def __init__(self, dim: int, bias: bool = True, settings: "DyT.Settings | None" = None):
        super().__init__()
        settings = settings or DyT.Settings()
        self.alpha = nn.Parameter(torch.tensor(float(settings.alpha0)))
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight * torch.tanh(self.alpha * x) + self.bias


@NORMS.register("none")
class Identity(nn.Module):
    """No normalization (identity): for ReZero, which trains without norms."""

    def __init__(self, dim: int, bias: bool = True, settings=None):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x
