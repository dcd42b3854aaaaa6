"""The GPT-2 model: small parts first, the whole model last.

Parameter names follow GPT-2's checkpoint keys (transformer.wte, .wpe, .h.N.ln_1,
.attn.c_attn, .attn.c_proj, .ln_2, .mlp.c_fc, .mlp.c_proj, .ln_f; lm_head tied to wte),
so weights map across by name. The variants of gptablate hang off this baseline through
the registries (`arch.norm`, `arch.block`, `arch.residual`); the baseline reads plainly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from . import norms as _norms  # noqa: F401  (registers the built-in norms)
from .registry import NORMS


@dataclass(frozen=True)
class GPTConfig:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024
    vocab_size: int = 50257  # the real vocabulary: only these logits enter a softmax
    bias: bool = True
    dropout: float = 0.0
    norm: str = "layernorm"
    block: str = "pre"
    residual: str = "vanilla"

    @property
    def padded_vocab_size(self) -> int:
        # A multiple of 64 keeps the embedding and lm_head matmuls on fast tensor-core tiles.
        return (self.vocab_size + 63) // 64 * 64

    @classmethod
    def from_recipe(cls, recipe) -> "GPTConfig":
        m, a = recipe.model, recipe.arch
        return cls(n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd, block_size=m.block_size,
                   vocab_size=m.vocab_size, bias=m.bias, dropout=m.dropout,
                   norm=a.norm, block=a.block, residual=a.residual)


def make_norm(cfg: GPTConfig) -> nn.Module:
    return NORMS.get(cfg.norm)(cfg.n_embd, bias=cfg.bias)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head = cfg.n_head
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)  # q, k, v fused
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.c_proj.residual_projection = True  # scaled init, see GPT._init_weights
        self.dropout = cfg.dropout
        self.resid_dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)
        self.c_proj.residual_projection = True
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(F.gelu(self.c_fc(x), approximate="tanh")))


class Block(nn.Module):
    """Pre-LN block (GPT-2): x = x + attn(ln_1(x)); x = x + mlp(ln_2(x))."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        x = x + self.mlp(self.ln_2(x))
        return x


# The layout and residual axes are wired in by the architecture-zoo work; until then only
# the baseline values are accepted, and anything else is refused before any work.
SUPPORTED_BLOCKS = ("pre",)
SUPPORTED_RESIDUALS = ("vanilla",)


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        check_arch(cfg)
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.padded_vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([Block(cfg) for _ in range(cfg.n_layer)]),
            ln_f=make_norm(cfg),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.padded_vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2: N(0, 0.02); the projections that write into the residual stream get
        # 0.02/sqrt(2L) so the stream's variance does not grow with depth.
        if isinstance(module, nn.Linear):
            std = 0.02
            if getattr(module, "residual_projection", False):
                std = 0.02 / math.sqrt(2 * self.config.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding: bool = True) -> int:
        """nanoGPT's count: every parameter once (the tied embedding once), less wpe."""
        n = sum(p.numel() for p in self.parameters())
        if non_embedding:
            n -= self.transformer.wpe.weight.numel()
        return n

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden states (B, T, D)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits over the real vocabulary only (the padding never enters a softmax)."""
        return self.lm_head(self.hidden(idx))[..., : self.config.vocab_size]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                reduction: str = "mean") -> torch.Tensor:
        """With targets: the cross-entropy (mean, or sum for exact validation sums); else logits."""
        logits = self.logits(idx)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                               reduction=reduction)

    def flops_per_token(self) -> int:
        """6N + 12·L·H·Q·T (PaLM appendix B, as nanoGPT reports MFU)."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * c.block_size


def check_arch(arch) -> None:
    """Refuse unknown or not-yet-supported arch names before any work (exit 2).

    `arch` is a GPTConfig or a recipe's ArchConfig: anything with norm, block, residual.
    """
    a = getattr(arch, "arch", arch)
    NORMS.get(a.norm)
    if a.block not in SUPPORTED_BLOCKS:
        raise UserError(f"unknown arch.block '{a.block}'; known: {', '.join(SUPPORTED_BLOCKS)}")
    if a.residual not in SUPPORTED_RESIDUALS:
        raise UserError(f"unknown arch.residual '{a.residual}'; known: {', '.join(SUPPORTED_RESIDUALS)}")
