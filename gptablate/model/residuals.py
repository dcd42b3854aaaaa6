"""Residual-stream strategies, selected by `arch.residual`. Each owns the walk over the layers.

`walk(x, blocks, ctx)` takes the embedding output (after the layout's `enter`) and returns
the stream the final norm sees. `ctx["x0"]` is the embedding output. The vanilla walk is
nanoGPT's loop; every other strategy (Pre-LN-style layouts only) rewrites the residual
writes `x = x + branch(x)` of each *site* (`block.sites()`): two per layer in sequential
layouts, one in parallel ones.

A strategy's own scalars and connection constants are listed in `CONSTANTS`: the
optimizer never decays them and trains them at lr × `lr_mult` (train.optim).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional

import torch
import torch.nn as nn

from ..errors import UserError
from .aggregate import _query, aggregate, aggregate_pulled
from .hyperstatic import static_step
from .hyperstep import hyper_step
from .kernels import autocast_dtype, chosen, compute_dtype
from .layers import make_norm
from .mhcstep import mhc_step
from .norms import RMSNorm
from .registry import RESIDUALS, Bound
from .sinkhorn import sinkhorn


class Residual(nn.Module):
    CONSTANTS: tuple[str, ...] = ()

    def __init__(self, cfg, layout, settings=None):
        super().__init__()
        self.settings = settings
        self.lr_mult = getattr(settings, "lr_mult", 1.0)
        self.n_layer = cfg.n_layer
        self.n_sites = cfg.n_layer * layout.sites_per_layer
        # whether the walks that fold the sites' norms into their own kernels (walk_final) can take this model's
        # norm, and whether it centres (LayerNorm) or not (RMSNorm)
        self.norms_foldable = cfg.norm in ("layernorm", "rmsnorm")
        self.center = cfg.norm == "layernorm"

    # Whether the fused Pre-LN walk (addnorm.prenorm_walk; GPT.prenorm_fusable) computes this strategy: each
    # site x' = x + F(N(x)) (+ prenorm_addend(k, x)).
    prenorm_walkable = False
    # None, or (k, x) -> what site k adds besides its sublayer's output in the fused walk, from the stream before it
    # (x: rounded to the autocast dtype, as autocast rounds a matmul's input). Where it is None the walk's norms
    # write no rounded copy of the stream (add_norm's `copy`) and their backward reads no gradient for one.
    prenorm_addend = None

    def walk(self, x, blocks, ctx):
        raise NotImplementedError

    def walk_final(self, x, blocks, final_norm, ctx):
        """The final norm's output of the walk (GPT.hidden, for layouts whose exit is that norm): strategies that
        fuse the norms with their stream work override it."""
        return final_norm(self.walk(x, blocks, ctx))


def _normed_sites(blocks) -> list | None:
    """Every block's sites in order as (its norm, the rest of the site) (Layout.normed_sites), or None where a block's
    sites are not of that form: what the walks that fold the norms take."""
    pairs = [block.normed_sites() for block in blocks]
    return None if any(p is None for p in pairs) else [p for block_pairs in pairs for p in block_pairs]


@RESIDUALS.register("vanilla")
class Vanilla(Residual):
    """The plain residual stream: x + F(N(x)) (each layout's own rule)."""

    prenorm_walkable = True

    def walk(self, x, blocks, ctx):
        for block in blocks:
            x = block(x, ctx)
        return x


@dataclass(frozen=True)
class _LrOnly:
    lr_mult: float = 1.0

    BOUNDS = {"lr_mult": Bound(low=0)}  # 0 holds the variant's own weights at their initial values


@RESIDUALS.register("rezero")
class ReZero(Residual):
    """ReZero (Bachlechner et al. 2020, arXiv 2003.04887): x = x + α_l·F(N(x)), α_l from 0, one per layer."""

    CONSTANTS = ("alpha",)
    Settings = _LrOnly

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.alpha = nn.Parameter(torch.zeros(cfg.n_layer))

    def walk(self, x, blocks, ctx):
        for layer, block in enumerate(blocks):
            for site in block.sites():
                x = x + self.alpha[layer] * site(x, ctx)
        return x


@RESIDUALS.register("gates")
class Gates(Residual):
    """Scalar gates: x = x + g·F(N(x)), one g per site (init 0 is SkipInit, arXiv 2002.10444)."""

    CONSTANTS = ("gate",)

    @dataclass(frozen=True)
    class Settings:
        init: float = 1.0  # every gate's starting value (0: SkipInit, each site's branch off at step 0)
        lr_mult: float = 1.0

        BOUNDS = {"lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.gate = nn.Parameter(torch.full((self.n_sites,), float(settings.init)))

    def walk(self, x, blocks, ctx):
        k = 0
        for block in blocks:
            for site in block.sites():
                x = x + self.gate[k] * site(x, ctx)
                k += 1
        return x


@RESIDUALS.register("layerscale")
class LayerScale(Residual):
    """LayerScale (CaiT, Touvron et al. 2021, arXiv 2103.17239): x = x + γ ⊙ F(N(x)), γ ∈ R^D per site."""

    CONSTANTS = ("gamma",)

    @dataclass(frozen=True)
    class Settings:
        init: float = 0.1  # every entry of γ at step 0
        lr_mult: float = 1.0

        BOUNDS = {"lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.gamma = nn.Parameter(torch.full((self.n_sites, cfg.n_embd), float(settings.init)))

    def walk(self, x, blocks, ctx):
        k = 0
        for block in blocks:
            for site in block.sites():
                x = x + self.gamma[k] * site(x, ctx)
                k += 1
        return x


class _LayerLambdas(Residual):
    """Per-layer (λ_r, λ_0) from (1, 0): the residual and embedding weights of x0-style strategies."""

    CONSTANTS = ("lambdas",)
    Settings = _LrOnly

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.lambdas = nn.Parameter(torch.tensor([[1.0, 0.0]] * cfg.n_layer))


@RESIDUALS.register("x0")
class X0Mixing(_LayerLambdas):
    """x0 mixing (modded-nanogpt): at each layer's entry x = λ_r·x + λ_0·x0, x0 the embedding."""

    def walk(self, x, blocks, ctx):
        x0 = ctx["x0"]
        for layer, block in enumerate(blocks):
            x = self.lambdas[layer, 0] * x + self.lambdas[layer, 1] * x0
            x = block(x, ctx)
        return x


@RESIDUALS.register("learned_scaling")
class LearnedScaling(_LayerLambdas):
    """Learned scaling (MLS baseline): after each layer x = λ_r·x + (layer(x) − x) + λ_0·x0."""

    def walk(self, x, blocks, ctx):
        x0 = ctx["x0"]
        for layer, block in enumerate(blocks):
            y = block(x, ctx)
            # = λ_r·x + (y − x) + λ_0·x0, written so that at λ = (1, 0) it is exactly y
            x = y + (self.lambdas[layer, 0] - 1) * x + self.lambdas[layer, 1] * x0
        return x


@RESIDUALS.register("prores")
class ProRes(Residual):
    """ProRes (MLS baseline): x = x + α(l,t)·(layer_l(x) − x), α = min(t / (T·l), 1), deeper layers later."""

    @dataclass(frozen=True)
    class Settings:
        T: Optional[float] = None  # default max_iters / (2L): the deepest layer reaches 1 at mid-training
        mode: Literal["layer", "branch"] = "layer"  # branch: scale each sublayer branch instead

        BOUNDS = {"T": Bound(above=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.T = float(settings.T) if settings.T is not None else cfg.max_iters / (2 * cfg.n_layer)
        self.mode = settings.mode
        # The trainer writes the step here in place (set_step): a tensor, so compiled graphs
        # neither specialise on it nor recompile. Saved with the weights: evaluation uses the
        # α of the step the model was trained to.
        self.register_buffer("step", torch.zeros(()))
        self.register_buffer("depth", torch.arange(1, cfg.n_layer + 1, dtype=torch.float32))

    def alphas(self) -> torch.Tensor:
        return torch.clamp(self.step / (self.T * self.depth), max=1.0)

    def walk(self, x, blocks, ctx):
        alpha = self.alphas()
        for layer, block in enumerate(blocks):
            if self.mode == "layer":
                x = torch.lerp(x, block(x, ctx), alpha[layer])  # x + α(y − x), exact at α = 1
            else:
                for site in block.sites():
                    x = x + alpha[layer] * site(x, ctx)
        return x


class _HyperSite(nn.Module):
    """Connection weights of one site of Hyper-Connections."""

    CONSTANTS = ("A_s", "B_s", "s_a", "s_b")

    def __init__(self, cfg, n: int, k: int, dynamic: bool, lr_mult: float):
        super().__init__()
        self.lr_mult = lr_mult
        a = torch.zeros(n, n + 1)
        a[k % n, 0] = 1.0  # this site reads stream k mod n ...
        a[:, 1:] = torch.eye(n)  # ... and every stream carries on
        self.A_s = nn.Parameter(a)
        self.B_s = nn.Parameter(torch.ones(n))
        self.dynamic = dynamic
        if dynamic:
            self.norm = make_norm(cfg)
            self.W_a = nn.Parameter(torch.zeros(cfg.n_embd, n + 1))
            self.W_b = nn.Parameter(torch.zeros(cfg.n_embd, 1))
            self.s_a = nn.Parameter(torch.tensor(0.01))
            self.s_b = nn.Parameter(torch.tensor(0.01))

    def fused_params(self):
        """(wt, bw, s, A_s, B_s) for hyperstep.hyper_step: the norm's gain and bias folded into the projection."""
        if not self.dynamic:
            empty = self.A_s.new_zeros(0)
            return empty, empty, empty, self.A_s, self.B_s
        W = torch.cat((self.W_a, self.W_b), dim=1)  # (D, n+2), fp32 master weights
        wt = (self.norm.weight[:, None] * W).t()
        bias = getattr(self.norm, "bias", None)
        bw = (bias[:, None] * W).sum(0) if bias is not None else W.new_zeros(W.shape[1])
        return wt, bw, torch.stack((self.s_a, self.s_b)), self.A_s, self.B_s

    def forward(self, H, site, ctx):
        # The mixes are broadcast products summed over the n streams, in the stream's own dtype
        # (fp32, as the baseline's residual stream): an einsum is a matmul, which autocast runs in
        # bf16, so every site rounded the streams to bf16. A sum over n <= 8 also compiles to
        # element-wise code that fuses with its neighbours (dynamic: 1.79x -> 1.58x the baseline).
        # bf16 streams (stream_dtype): read into fp32, the write rounded back, as the fused step does.
        stored = H.dtype
        H = H.to(compute_dtype(H))
        n = H.size(2)
        if self.dynamic:
            coef = torch.tanh(self.norm(H) @ torch.cat((self.W_a, self.W_b), dim=1))  # (B, T, n, n+2)
            A = self.A_s + self.s_a * coef[..., : n + 1]  # (B, T, n, n+1)
            Bw = self.B_s + self.s_b * coef[..., n + 1]  # (B, T, n)
        else:
            # One matrix per token, so that A_s's gradient is a per-token sum over D and then a
            # small sum over tokens. Broadcast straight from (n, n+1) it was one reduction over
            # (B, T, D): 2.7 ms a site on an H100, 2.61x the baseline's step at 4 layers.
            A = self.A_s.expand(*H.shape[:2], *self.A_s.shape)
            Bw = self.B_s
        A = A.unsqueeze(-1).type_as(H)  # (B, T, n, n+1, 1)
        x_in = (A[..., 0, :] * H).sum(-2)  # column 0 of Aᵀ H: the site's input (B, T, D)
        out = site(x_in, ctx)
        carried = (A[..., 1:, :] * H.unsqueeze(-2)).sum(-3)  # the other columns of Aᵀ H: (B, T, n, D)
        return (carried + Bw.unsqueeze(-1).type_as(H) * out.unsqueeze(2)).to(stored)


@RESIDUALS.register("hyper")
class HyperConnections(Residual):
    """Hyper-Connections (Zhu et al. 2025, arXiv 2409.19606): n streams mixed per site by learned A, B."""

    FUSED_WIDTH = None  # GPT.fused_kernels folds the sites' norms at any width (hyperstep.py, hyperstatic.py)

    @dataclass(frozen=True)
    class Settings:
        n: int = 4  # streams (the paper's expansion rate)
        dynamic: bool = True  # A and B also depend on the token (tanh of the normed streams' projection); false: static
        lr_mult: float = 1.0
        # fused: the stream work between two sites as one operation (Triton kernels on CUDA, their torch
        # rule elsewhere: hyperstatic.py for static ones, hyperstep.py for dynamic ones with layernorm or rmsnorm);
        # torch: the per-site code; auto: fused where the kernels run, the per-site code (which
        # inductor compiles) elsewhere.
        kernel: Literal["auto", "fused", "torch"] = "auto"
        # The dtype the streams (and their gradients) are stored in between sites: float32, as the baseline keeps its
        # residual stream; bfloat16 halves the bytes they move, each site's arithmetic still fp32 (its reads widened,
        # its writes rounded). The dynamic form only: the static one meets its speed target with fp32 streams.
        stream_dtype: Literal["float32", "bfloat16"] = "float32"

        BOUNDS = {"n": Bound(low=1), "lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        if settings.stream_dtype != "float32" and not settings.dynamic:
            raise UserError(f"arch.hyper.stream_dtype={settings.stream_dtype}: takes float32 with "
                            "arch.hyper.dynamic=false (bfloat16 streams are for the dynamic form)")
        self.stream_dtype = getattr(torch, settings.stream_dtype)
        self.n = settings.n
        self.site_weights = nn.ModuleList(
            _HyperSite(cfg, settings.n, k, settings.dynamic, self.lr_mult) for k in range(self.n_sites))
        self.dynamic = settings.dynamic
        self.kernel = settings.kernel
        self.fusable = not settings.dynamic or self.norms_foldable
        self.fused = False  # GPT.fused_kernels: the fused walks then fold the sites' norms into their steps

    def fused_for(self, x: torch.Tensor) -> bool:
        """Whether the walk over x takes hyper_step (arch.hyper.kernel)."""
        return self.fusable and chosen(self.kernel, x.device)

    def walk(self, x, blocks, ctx):
        if self.fused_for(x):
            return self._walk_fused(x, blocks, ctx)
        H = x.to(streams_dtype(self, x)).unsqueeze(2).expand(-1, -1, self.n, -1)  # n copies of x: (B, T, n, D)
        k = 0
        for block in blocks:
            for site in block.sites():
                H = self.site_weights[k](H, site, ctx)
                k += 1
        return H.sum(2, dtype=x.dtype)

    def walk_final(self, x, blocks, final_norm, ctx):
        """With GPT.fused_kernels on the fused walk (LayerNorm or RMSNorm; layouts with one norm a site, in front):
        each step also writes the next site's normalised input (hyperstep.py, hyperstatic.py), and the static walk's
        last step the final norm's output, so the sites' norms read no stream of their own."""
        foldable = self.fused and self.norms_foldable and self.fused_for(x)
        pairs = _normed_sites(blocks) if foldable else None
        if pairs is None:
            return final_norm(self.walk(x, blocks, ctx))
        branches, norms = [branch for _, branch in pairs], [n for n, _ in pairs]
        if self.dynamic:
            return final_norm(self._walk_dynamic(x, branches, ctx, norms))
        return self._walk_static(x, branches, ctx, norms + [final_norm])

    def _walk_fused(self, x, blocks, ctx):
        """The same function, one fused step between two sites."""
        sites = [site for block in blocks for site in block.sites()]
        return (self._walk_dynamic if self.dynamic else self._walk_static)(x, sites, ctx)

    def _walk_dynamic(self, x, sites, ctx, norms=None):
        """One hyper_step between two sites: (H', x_in', C') from (H, out, C). With `norms` (each site's), `sites` are
        the branches after them, and each step writes its site's normalised input in place of x_in'."""
        B, T, D = x.shape
        n, M = self.n, B * T
        flags = dict(eps=1e-5, dynamic=self.dynamic, center=self.center)
        empty = x.new_zeros(0)

        def norm(k):
            return None if norms is None else _gain_and_bias(norms[k])

        H, x_in, C = hyper_step(x.reshape(M, 1, D).to(streams_dtype(self, x)).expand(M, n, D), empty, empty,
                                *self.site_weights[0].fused_params(), has_write=False, norm=norm(0), **flags)
        for k, site in enumerate(sites):
            out = site(x_in.view(B, T, D), ctx).reshape(M, D)
            if k + 1 < len(sites):
                H, x_in, C = hyper_step(H, out, C, *self.site_weights[k + 1].fused_params(), has_write=True,
                                        norm=norm(k + 1), **flags)
        # the last site's write and the exit's sum over streams: Σ_j H'_j = Σ_i (Σ_j A[i,j+1]) H_i + (Σ_j B_j) out
        y = (C[:, :, 1:n + 1].sum(-1)[..., None] * H).sum(1) + C[:, :, n + 1].sum(-1)[:, None] * out.to(C.dtype)
        return y.view(B, T, D)

    def _walk_static(self, x, sites, ctx, norms=None):
        """The static case (hyperstatic.py): every site's A and B the same for all tokens, so its stream work is
        element-wise. The entry's n equal streams are x itself (one stream that the first write reads with its
        rows of A_s summed), and the exit's sum over the streams is the last write with r = 1, H' never stored.
        With `norms` (each site's norm, then the final norm), `sites` are the branches after the norms: each step
        writes the next norm's output, and the walk returns the final norm's."""
        B, T, D = x.shape
        M, w = B * T, self.site_weights
        x_in = x * w[0].A_s[:, 0].sum()  # the first site reads Σ_i A[i, 0] x
        if norms is not None:
            x_in = norms[0](x_in)  # the first site's norm on its own (one of 2L + 1)
        H = x.reshape(M, 1, D)
        for k, site in enumerate(sites):
            out = site(x_in.view(B, T, D), ctx).reshape(M, D)
            mix = w[k].A_s[:, 1:]
            if H.shape[1] == 1:
                mix = mix.sum(0, keepdim=True)
            last = k + 1 == len(sites)
            r = torch.ones_like(w[k].B_s) if last else w[k + 1].A_s[:, 0]
            norm = None if norms is None else (*_gain_and_bias(norms[k + 1]), self.center)
            H, x_in = static_step(H, out, mix, w[k].B_s, r, store_h=not last, norm=norm)
        return x_in.view(B, T, D)


def streams_dtype(residual: Residual, x: torch.Tensor) -> torch.dtype:
    """The dtype a multi-stream walk over x stores its streams in: its stream_dtype setting's where x is fp32, else
    x's own (float64 in the tests' exact models)."""
    return residual.stream_dtype if x.dtype == torch.float32 else x.dtype


def _gain_and_bias(norm: nn.Module) -> tuple:
    """A LayerNorm's or RMSNorm's (weight, bias or None), as the fused steps take a site's norm."""
    return norm.weight, getattr(norm, "bias", None)


class _MHCSite(nn.Module):
    CONSTANTS = ("alpha_pre", "alpha_post", "alpha_res", "b_pre", "b_post", "b_res")

    def __init__(self, cfg, n: int, iters: int, lr_mult: float):
        super().__init__()
        self.lr_mult, self.n, self.iters = lr_mult, n, iters
        nd = n * cfg.n_embd
        self.norm = RMSNorm(nd)
        self.phi_pre = nn.Parameter(torch.zeros(nd, n))
        self.phi_post = nn.Parameter(torch.zeros(nd, n))
        self.phi_res = nn.Parameter(torch.zeros(nd, n * n))
        self.alpha_pre = nn.Parameter(torch.tensor(0.01))
        self.alpha_post = nn.Parameter(torch.tensor(0.01))
        self.alpha_res = nn.Parameter(torch.tensor(0.01))
        self.b_pre = nn.Parameter(torch.full((n,), -math.log(n - 1)))  # p = 1/n: p·H = x for equal streams
        self.b_post = nn.Parameter(torch.zeros(n))  # q = 1
        self.b_res = nn.Parameter(8.0 * (2 * torch.eye(n) - 1))  # R ≈ I

    def write(self, z):
        """The write's coefficients from the projections z (..., 2n + n²): q (..., n) and R (..., n, n)."""
        n = self.n
        q = 2 * torch.sigmoid(self.alpha_post * z[..., n:2 * n] + self.b_post)
        R = sinkhorn((self.alpha_res * z[..., 2 * n:]).view(*z.shape[:-1], n, n) + self.b_res, self.iters)
        return q, R

    def fused_params(self):
        """(w, α_pre, b_pre) for mhcstep.mhc_step: the norm's gain folded into the projection, w = g ⊙ Φ."""
        return self.norm.weight[:, None] * self.phi(), self.alpha_pre, self.b_pre

    def phi(self):
        """Φ = [φ_pre | φ_post | φ_res]: (nD, 2n + n²)."""
        return torch.cat((self.phi_pre, self.phi_post, self.phi_res), dim=1)

    def forward(self, H, site, ctx):
        B, T, n, D = H.shape
        stored = H.dtype  # bf16 streams (stream_dtype): read into fp32, the write rounded back
        H = H.to(compute_dtype(H))
        u = self.norm(H.reshape(B, T, n * D))
        z = u @ self.phi()  # one read of u: (B, T, 2n + n²)
        p = torch.sigmoid(self.alpha_pre * z[..., :n] + self.b_pre)  # (B, T, n)
        q, R = self.write(z)
        # Sums over the n streams in the stream's dtype, not einsums (see _HyperSite.forward):
        # the einsums ran in bf16 under autocast and rounded the streams at every site.
        out = site((p.unsqueeze(-1).type_as(H) * H).sum(-2), ctx)
        mixed = (R.unsqueeze(-1).type_as(H) * H.unsqueeze(-3)).sum(-2)  # R H: (B, T, n, D)
        return (mixed + q.unsqueeze(-1).type_as(H) * out.unsqueeze(2)).to(stored)


@RESIDUALS.register("mhc")
class ManifoldHyperConnections(Residual):
    """mHC (Xie et al. 2025, arXiv 2512.24880): n streams mixed by a Sinkhorn doubly-stochastic R per site."""

    @dataclass(frozen=True)
    class Settings:
        n: int = 4  # streams
        iters: int = 20  # Sinkhorn's rounds of normalisation
        lr_mult: float = 1.0
        # fused: the stream work between two sites as one operation (mhcstep.py: Triton kernels on CUDA,
        # its torch rule elsewhere); torch: the per-site code; auto: fused where the kernels run.
        kernel: Literal["auto", "fused", "torch"] = "auto"
        # The streams' dtype between sites, as arch.hyper.stream_dtype: float32, or bfloat16 (fp32 arithmetic).
        stream_dtype: Literal["float32", "bfloat16"] = "float32"

        BOUNDS = {"n": Bound(low=2), "iters": Bound(low=1), "lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.stream_dtype = getattr(torch, settings.stream_dtype)
        self.n = settings.n
        self.site_weights = nn.ModuleList(
            _MHCSite(cfg, settings.n, settings.iters, self.lr_mult) for _ in range(self.n_sites))
        self.kernel = settings.kernel

    def fused_for(self, x: torch.Tensor) -> bool:
        """Whether the walk over x takes mhc_step (arch.mhc.kernel)."""
        return chosen(self.kernel, x.device)

    def walk(self, x, blocks, ctx):
        if self.fused_for(x):
            return self._walk_fused(x, blocks, ctx)
        H = x.to(streams_dtype(self, x)).unsqueeze(2).expand(-1, -1, self.n, -1)
        k = 0
        for block in blocks:
            for site in block.sites():
                H = self.site_weights[k](H, site, ctx)
                k += 1
        return H.mean(2, dtype=x.dtype)

    def _walk_fused(self, x, blocks, ctx):
        """The same function, one mhc_step between two sites: (H', x_in', z') from (H, out, R, q)."""
        B, T, D = x.shape
        n, M = self.n, B * T
        sites = [site for block in blocks for site in block.sites()]
        empty = x.new_zeros(0)
        H, x_in, z = mhc_step(x.reshape(M, 1, D).to(streams_dtype(self, x)).expand(M, n, D), empty, empty, empty,
                              *self.site_weights[0].fused_params(), eps=1e-5, has_write=False)
        for k, site in enumerate(sites):
            out = site(x_in.view(B, T, D), ctx).reshape(M, D)
            q, R = self.site_weights[k].write(z)
            if k + 1 < len(sites):
                H, x_in, z = mhc_step(H, out, R, q, *self.site_weights[k + 1].fused_params(), eps=1e-5, has_write=True)
        # the last site's write and the exit's mean over the streams: Σ_i H'_i = Σ_j (Σ_i R[i,j]) H_j + (Σ_i q_i) out
        y = (R.sum(1)[..., None].to(x.dtype) * H).sum(1) + q.sum(-1)[:, None].to(x.dtype) * out.to(x.dtype)
        return (y / n).view(B, T, D)


@RESIDUALS.register("denseformer")
class DenseFormer(Residual):
    """DenseFormer (Pagliardini et al. 2024, arXiv 2402.02622): after layer i, y_i = Σ_j α_ij·X_j over all outputs so far."""

    CONSTANTS = ("alphas",)

    @dataclass(frozen=True)
    class Settings:
        dilation: int = 1  # only sources j with (i − j) mod k = 0
        period: int = 1  # average only after every p-th layer
        lr_mult: float = 1.0

        BOUNDS = {"dilation": Bound(low=1), "period": Bound(low=1), "lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.k, self.p = settings.dilation, settings.period
        self.sources = {}  # layer i -> indices j of X_j it averages
        weights = []
        for i in range(1, cfg.n_layer + 1):
            if i % self.p == 0:
                js = [j for j in range(i + 1) if (i - j) % self.k == 0]
                self.sources[i] = js
                weights.append(torch.tensor([1.0 if j == i else 0.0 for j in js]))
        self.alphas = nn.ParameterList(nn.Parameter(w) for w in weights)

    def walk(self, x, blocks, ctx):
        outputs = [x]  # X_0 = the embedding
        y, a = x, 0
        for i, block in enumerate(blocks, 1):
            out = block(y, ctx)
            outputs.append(out)
            if i in self.sources:
                w = self.alphas[a]
                y = sum(w[m] * outputs[j] for m, j in enumerate(self.sources[i]))
                a += 1
            else:
                y = out
        return y


class _Aggregator(nn.Module):
    """softmax_i(wᵀ RMSNorm(v_i)) over sources v_i: the input of one site (uniform at w = 0)."""

    CONSTANTS = ("query",)
    FUSED_WIDTH = None  # GPT.fused_kernels: aggregate.py's operation at any width

    def __init__(self, dim: int, lr_mult: float):
        super().__init__()
        self.lr_mult = lr_mult
        self.norm = RMSNorm(dim)
        self.query = nn.Parameter(torch.zeros(dim))
        self.fused = False  # set through GPT.fused_kernels: aggregate.py's one operation

    def forward(self, sources: list[torch.Tensor]) -> torch.Tensor:
        if self.fused:
            return aggregate(sources, self.norm.weight, self.query, 1e-5)
        # Source by source rather than over a stacked copy: each source is read for its score
        # and once more for the weighted sum, and nothing (B, T, K, D)-sized is written.
        scores = torch.stack([(self.norm(v) * self.query).sum(-1) for v in sources], dim=-1)  # (B, T, K)
        weights = torch.softmax(scores.float(), dim=-1)
        return sum(weights[..., k:k + 1] * v for k, v in enumerate(sources))  # fp32, as the stack gave


@RESIDUALS.register("attnres")
class AttentionResiduals(Residual):
    """Attention Residuals (Kimi Team 2026, arXiv 2603.15031): each site reads a learned softmax mix of earlier outputs."""

    @dataclass(frozen=True)
    class Settings:
        # block: the sources are the embedding and each group of layers' summed outputs; full: every earlier output
        mode: Literal["block", "full"] = "block"
        blocks: Optional[int] = None  # groups of layers (must divide L); default the largest divisor of L that is <= 4
        lr_mult: float = 1.0

        BOUNDS = {"blocks": Bound(low=1), "lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        L = cfg.n_layer
        self.mode = settings.mode
        # blocks 0, refused in a recipe since its range was set, meant the default before: a checkpoint of then loads
        self.groups = settings.blocks or max(d for d in range(1, min(L, 4) + 1) if L % d == 0)
        if L % self.groups:
            raise UserError(f"arch.attnres.blocks={self.groups} must divide model.n_layer={L}")
        self.layers_per_group = L // self.groups
        self.aggregators = nn.ModuleList(_Aggregator(cfg.n_embd, self.lr_mult) for _ in range(self.n_sites + 1))

    def walk(self, x, blocks, ctx):
        k = 0
        if self.mode == "full" and self.aggregators[0].fused:
            return self._walk_pulled(x, [(None, site) for block in blocks for site in block.sites()], ctx)
        if self.mode == "full":
            sources = [x]
            for block in blocks:
                for site in block.sites():
                    sources.append(site(self.aggregators[k](sources), ctx))
                    k += 1
            return self.aggregators[k](sources)
        done, partial = [x], None  # embedding + finished group sums; the current group's sum
        for layer, block in enumerate(blocks, 1):
            for site in block.sites():
                out = site(self.aggregators[k](done if partial is None else done + [partial]), ctx)
                partial = out if partial is None else partial + out
                k += 1
            if layer % self.layers_per_group == 0:
                done, partial = done + [partial], None
        return self.aggregators[k](done if partial is None else done + [partial])

    def walk_final(self, x, blocks, final_norm, ctx):
        """mode full on aggregate.py's operation, LayerNorm or RMSNorm, layouts with one norm a site in front: each
        site's aggregation also applies the site's norm (the top site's, the final norm), forward and backward, so that
        no norm reads h again (_walk_pulled's folded form)."""
        pairs = (_normed_sites(blocks) if self.mode == "full" and self.aggregators[0].fused and self.norms_foldable
                 else None)
        if pairs is None:
            return final_norm(self.walk(x, blocks, ctx))
        return self._walk_pulled(x, pairs, ctx, final_norm)

    def _walk_pulled(self, x, sites, ctx, final_norm=None):
        """mode full on aggregate.py's operation: each site's gradient for its sources formed once a source, at the
        source's lowest site (aggregate_pulled). sites: each site as (its norm, applied by its aggregation, or None;
        the rest of the site); final_norm, if not None, is applied by the top site's, and the walk returns its
        output."""
        U = torch.stack([_query([x], a.norm.weight, a.query) for a in self.aggregators])
        dtype = autocast_dtype(x)  # the stack's: the sublayers' matmuls' (bf16 in training)
        sources, tokens = [x], ()
        for k, (norm, rest) in enumerate(sites):
            h, tokens = aggregate_pulled(sources, U, k, tokens, 1e-5, dtype, self._norm(norm))
            sources.append(rest(h, ctx))
        return aggregate_pulled(sources, U, len(sites), tokens, 1e-5, dtype, self._norm(final_norm))[0]

    def _norm(self, norm: nn.Module | None) -> tuple | None:
        """A site's LayerNorm or RMSNorm as aggregate_pulled takes it (None: none folded)."""
        return None if norm is None else (*_gain_and_bias(norm), self.center)


class _LaurelLowRank(nn.Module):
    def __init__(self, dim: int, rank: int):
        super().__init__()
        self.A = nn.Linear(dim, rank, bias=False)
        self.B = nn.Linear(rank, dim, bias=False)

    def init_weights(self) -> None:
        nn.init.normal_(self.A.weight, std=0.02)
        nn.init.zeros_(self.B.weight)

    def forward(self, x):
        return self.B(self.A(x))


@RESIDUALS.register("laurel")
class Laurel(Residual):
    """LAuReL (Menghani et al. 2025, arXiv 2411.07501): rw x = α·F(N(x)) + β·x; lr x = F(N(x)) + x + B(A x)."""

    CONSTANTS = ("alpha", "beta")

    @dataclass(frozen=True)
    class Settings:
        mode: Literal["rw", "lr"] = "rw"  # rw: learned weights α, β; lr: a low-rank term B(A x) beside x
        rank: int = 32  # r of A and B, mode lr
        lr_mult: float = 1.0

        BOUNDS = {"rank": Bound(low=1), "lr_mult": Bound(low=0)}

    def __init__(self, cfg, layout, settings=None):
        super().__init__(cfg, layout, settings)
        self.mode = settings.mode
        if self.mode == "rw":
            self.alpha = nn.Parameter(torch.ones(self.n_sites))
            self.beta = nn.Parameter(torch.ones(self.n_sites))
        else:
            self.low_rank = nn.ModuleList(_LaurelLowRank(cfg.n_embd, settings.rank) for _ in range(self.n_sites))

    def walk(self, x, blocks, ctx):
        k = 0
        for block in blocks:
            for site in block.sites():
                if self.mode == "rw":
                    x = self.alpha[k] * site(x, ctx) + self.beta[k] * x
                else:
                    x = x + site(x, ctx) + self.low_rank[k](x)
                k += 1
        return x

    @property
    def prenorm_walkable(self) -> bool:
        return self.mode == "lr"  # rw's α and β would need their own sums in the fused kernels

    def prenorm_addend(self, k, x):
        return self.low_rank[k](x)
