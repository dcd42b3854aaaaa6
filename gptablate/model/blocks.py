"""Block layouts, selected by `arch.block`. One layer of each, side by side (N a norm):

    pre (GPT-2)          sandwich / peri          parallel               post
    x ─┬────────(+)─     x ─┬─────────────(+)─    x ─┬───────────(+)─     x ──┬──(+)─ N ─
       └ N ─ F ──┘          └ N ─ F ─ N ───┘         └ N ─┬─ F_a ─┤           └ F ─┘
                                                          └─ F_m ─┘
    (F = attention, then again with F = MLP, except parallel: one site with both)

A *site* is one residual write. Layouts whose sites have the Pre-LN form x + branch(x)
(`wraps_sites = True`) expose them through `sites()`, and every residual strategy can wrap
them; the others (post, mixln, deepnorm, resi_dual) take only the vanilla residual.
`forward` is the layout's own plain rule: the vanilla residual just calls it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn

from .layers import MLP, CausalSelfAttention, make_norm
from .registry import BLOCKS, Bound, settings_of


class Layout(nn.Module):
    sites_per_layer = 2
    wraps_sites = True  # residual strategies may wrap sites()
    final_norm = True  # the model ends with ln_f
    embedding_norm = False  # a norm on the embedding output (peri)

    def normed_sites(self):
        """Each site as (its norm, the rest of its branch on the norm's output), for residual strategies that fuse
        the norm with their own stream work (hyperstep.py, hyperstatic.py); None where a site is not of that form."""
        return None

    @staticmethod
    def enter(x: torch.Tensor):
        """The stream state after the embedding (resi_dual keeps two streams)."""
        return x

    @staticmethod
    def exit(state, ln_f):
        return ln_f(state) if ln_f is not None else state

    def _sublayers(self, cfg, layer: int) -> None:
        """GPT-2's four parts, with GPT-2's names: ln_1, attn, ln_2, mlp."""
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg, layer)
        self.ln_2 = make_norm(cfg)
        self.mlp = MLP(cfg)


@BLOCKS.register("pre")
class PreLN(Layout):
    """Pre-LN (GPT-2; Xiong et al. 2020, arXiv 2002.04745): x = x + F(N(x)) per sublayer."""

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        self._sublayers(cfg, layer)

    def attn_site(self, x, ctx):
        return self.attn_branch(self.ln_1(x), ctx)

    def mlp_site(self, x, ctx):
        return self.mlp_branch(self.ln_2(x), ctx)

    def attn_branch(self, h, ctx):
        return self.attn(h, ctx)

    def mlp_branch(self, h, ctx):
        return self.mlp(h)

    def sites(self):
        return (self.attn_site, self.mlp_site)

    def normed_sites(self):
        return ((self.ln_1, self.attn_branch), (self.ln_2, self.mlp_branch))

    def forward(self, x, ctx):
        x = x + self.attn(self.ln_1(x), ctx)
        x = x + self.mlp(self.ln_2(x))
        return x


@BLOCKS.register("sandwich")
class Sandwich(PreLN):
    """Sandwich-LN (CogView, Ding et al. 2021, arXiv 2105.13290): x = x + N_o(F(N_i(x)))."""

    def __init__(self, cfg, layer: int = 0):
        super().__init__(cfg, layer)
        self.ln_1_out = make_norm(cfg)
        self.ln_2_out = make_norm(cfg)

    def attn_branch(self, h, ctx):
        return self.ln_1_out(self.attn(h, ctx))

    def mlp_branch(self, h, ctx):
        return self.ln_2_out(self.mlp(h))

    def forward(self, x, ctx):
        x = x + self.ln_1_out(self.attn(self.ln_1(x), ctx))
        x = x + self.ln_2_out(self.mlp(self.ln_2(x)))
        return x


@BLOCKS.register("peri")
class PeriLN(Sandwich):
    """Peri-LN (Kim et al. 2025, arXiv 2502.02732): sandwich plus a norm on the embedding output."""

    embedding_norm = True


@BLOCKS.register("parallel")
class Parallel(Layout):
    """Parallel (GPT-J; PaLM, arXiv 2204.02311): h = N(x); x = x + F_a(h) + F_m(h), one shared norm."""

    sites_per_layer = 1

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        self.ln_1 = make_norm(cfg)
        self.attn = CausalSelfAttention(cfg, layer)
        self.mlp = MLP(cfg)

    def site(self, x, ctx):
        return self.branch(self.ln_1(x), ctx)

    def branch(self, h, ctx):
        return self.attn(h, ctx) + self.mlp(h)

    def sites(self):
        return (self.site,)

    def normed_sites(self):
        return ((self.ln_1, self.branch),)

    def forward(self, x, ctx):
        return x + self.site(x, ctx)


@BLOCKS.register("parallel_neox")
class ParallelNeoX(Parallel):
    """Parallel, GPT-NeoX style (use_parallel_residual): x = x + F_a(N_1(x)) + F_m(N_2(x))."""

    def __init__(self, cfg, layer: int = 0):
        super().__init__(cfg, layer)
        self.ln_2 = make_norm(cfg)

    def site(self, x, ctx):
        return self.attn(self.ln_1(x), ctx) + self.mlp(self.ln_2(x))

    def normed_sites(self):
        return None  # two norms on one site


@BLOCKS.register("post")
class PostLN(Layout):
    """Post-LN (Vaswani et al. 2017): x = N(x + F(x)) per sublayer; no final norm. Needs warmup."""

    wraps_sites = False
    final_norm = False

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        self._sublayers(cfg, layer)

    def forward(self, x, ctx):
        x = self.ln_1(x + self.attn(x, ctx))
        x = self.ln_2(x + self.mlp(x))
        return x


@BLOCKS.register("mixln")
class MixLN(Layout):
    """Mix-LN (Li, Yin, Liu 2024, arXiv 2412.13795): Post-LN for the first ⌊αL⌋ layers, Pre-LN after."""

    wraps_sites = False

    @dataclass(frozen=True)
    class Settings:
        alpha: float = 0.25  # the share of layers that are Post-LN

        BOUNDS = {"alpha": Bound(low=0, high=1)}

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        settings = settings_of(MixLN, cfg)
        self.post = layer < math.floor(settings.alpha * cfg.n_layer)
        self._sublayers(cfg, layer)

    def forward(self, x, ctx):
        if self.post:
            x = self.ln_1(x + self.attn(x, ctx))
            x = self.ln_2(x + self.mlp(x))
        else:
            x = x + self.attn(self.ln_1(x), ctx)
            x = x + self.mlp(self.ln_2(x))
        return x


@BLOCKS.register("deepnorm")
class DeepNorm(Layout):
    """DeepNorm (Wang et al. 2022, arXiv 2203.00555): x = N(a·x + F(x)), a = (2L)^¼, init gain (8L)^-¼."""

    wraps_sites = False
    final_norm = False

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        self.a = (2 * cfg.n_layer) ** 0.25  # the skip is scaled, not the branch
        self.beta = (8 * cfg.n_layer) ** -0.25
        self._sublayers(cfg, layer)

    def init_weights(self) -> None:
        """Replaces GPT-2's init: xavier_normal, gain β on v, attention output and both MLP
        matrices; gain 1 on q and k; each D×D slice of the fused qkv initialised on its own."""
        D = self.attn.c_proj.weight.shape[0]
        with torch.no_grad():
            for i, gain in enumerate((1.0, 1.0, self.beta)):  # q, k, v
                nn.init.xavier_normal_(self.attn.c_attn.weight[i * D:(i + 1) * D], gain=gain)
            for lin in (self.attn.c_proj, self.mlp.c_fc, self.mlp.c_proj):
                nn.init.xavier_normal_(lin.weight, gain=self.beta)

    def forward(self, x, ctx):
        x = self.ln_1(self.a * x + self.attn(x, ctx))
        x = self.ln_2(self.a * x + self.mlp(x))
        return x


@BLOCKS.register("resi_dual")
class ResiDual(Layout):
    """ResiDual (Xie et al. 2023, arXiv 2304.14802): Post-LN stream x plus a stream r of raw sums; out x + N_f(r)."""

    wraps_sites = False

    def __init__(self, cfg, layer: int = 0):
        super().__init__()
        self._sublayers(cfg, layer)

    @staticmethod
    def enter(x):
        return (x, x)  # x feeds the sublayers; r starts as the embedding and accumulates

    @staticmethod
    def exit(state, ln_f):
        x, r = state
        return x + ln_f(r)  # ln_f is the layout's own N_f

    def forward(self, state, ctx):
        x, r = state
        f = self.attn(x, ctx)
        r = r + f
        x = self.ln_1(x + f)
        f = self.mlp(x)
        r = r + f
        x = self.ln_2(x + f)
        return (x, r)
