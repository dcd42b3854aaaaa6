"""The sublayers every layout shares: causal self-attention and the GELU MLP."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .biasgelu import bias_gelu
from .qkvproj import qkv_projection
from .registry import NORMS, settings_of


def make_norm(cfg) -> nn.Module:
    """A fresh norm of the kind `arch.norm` names, over the model width."""
    cls = NORMS.get(cfg.norm)
    return cls(cfg.n_embd, bias=cfg.bias, settings=settings_of(cls, cfg))


class CausalSelfAttention(nn.Module):
    """Multi-head causal attention through SDPA (flash attention on GPUs).

    `arch.qk_norm`: q and k RMS-normalised over the head dimension, no parameters, the
    1/√d scale kept (modded-nanogpt). `arch.value_residual` (ResFormer, Zhou et al. 2024,
    arXiv 2410.17897): for layers 2..L, v ← (1 − λ)·v + λ·v₁ with v₁ the first layer's
    values and λ learnable from 0.5.
    """

    CONSTANTS = ("lambda_v",)  # never decayed (see train.optim)

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v fused
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.c_proj.residual_projection = True  # scaled init, see GPT._init_weights
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.qk_norm = cfg.qk_norm
        self.value_residual = cfg.value_residual
        self.lambda_v = nn.Parameter(torch.tensor(0.5)) if cfg.value_residual and layer > 0 else None
        self.fused = False  # set through GPT.fused_kernels

    def forward(self, x: torch.Tensor, ctx: dict | None = None) -> torch.Tensor:
        return self.resid_dropout(self.c_proj(self.mix(x, ctx)))

    def mix(self, x: torch.Tensor, ctx: dict | None = None) -> torch.Tensor:
        """The attention's output before its projection c_proj: (B, T, C). With `fused` set, c_attn runs through
        qkvproj.qkv_projection (the same forward; its backward joins q's, k's and v's gradients in one kernel)."""
        B, T, C = x.shape
        if self.fused:
            q, k, v = qkv_projection(x, self.c_attn.weight, self.c_attn.bias)
        else:
            q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if self.qk_norm:
            q = F.rms_norm(q, (q.size(-1),), eps=1e-5)
            k = F.rms_norm(k, (k.size(-1),), eps=1e-5)
        if self.value_residual:
            if self.lambda_v is None:
                ctx["v1"] = v
            else:
                v = (1 - self.lambda_v) * v + self.lambda_v * ctx["v1"]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return y.transpose(1, 2).contiguous().view(B, T, C)


class MLP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.c_proj.residual_projection = True
        self.dropout = nn.Dropout(cfg.dropout)
        self.fused = False  # set through GPT.fused_kernels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.inner(x)))

    def inner(self, x: torch.Tensor) -> torch.Tensor:
        """The activations before the projection c_proj: (B, T, 4C). With `fused` set, c_fc's bias and the GELU
        run as one operation (biasgelu.py): the bias joins in fp32 after the matmul's rounding."""
        if self.fused:
            return bias_gelu(F.linear(x, self.c_fc.weight), self.c_fc.bias)
        return F.gelu(self.c_fc(x), approximate="tanh")
