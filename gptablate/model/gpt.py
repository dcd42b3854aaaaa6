"""The GPT-2 model: small parts in layers.py and blocks.py, the whole model here.

Parameter names follow GPT-2's checkpoint keys (transformer.wte, .wpe, .h.N.ln_1,
.attn.c_attn, .attn.c_proj, .ln_2, .mlp.c_fc, .mlp.c_proj, .ln_f; lm_head tied to wte),
so weights map across by name. The variants hang off this baseline through three
registries: `arch.norm` (norms.py), `arch.block` (blocks.py: the layer layout) and
`arch.residual` (residuals.py: the walk over the layers). With the defaults the forward
is GPT-2's: embed, for each block x = block(x), final norm, tied head.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..errors import UserError
from .addnorm import prenorm_block, prenorm_enter, prenorm_walk
from .blocks import Layout, PreLN
from .layers import make_norm
from .loss import linear_cross_entropy
from .registry import BLOCKS, NORMS, RESIDUALS, settings_of

# The widest model the fused operations take by default (a module's FUSED_WIDTH overrides it; None: any width): their
# kernels were measured at 124M's 768 and 345M's 1,024 features (GPT.fused_kernels, prenorm_fusable).
FUSED_WIDTH = 1024


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
    qk_norm: bool = False
    value_residual: bool = False
    settings: dict = field(default_factory=dict)  # variant name -> its settings (recipe arch.<name>)
    max_iters: int = 5000  # the training length, for step-scheduled variants (prores)

    @property
    def padded_vocab_size(self) -> int:
        # A multiple of 64 keeps the embedding and lm_head matmuls on fast tensor-core tiles.
        return (self.vocab_size + 63) // 64 * 64

    @classmethod
    def from_recipe(cls, recipe) -> "GPTConfig":
        m, a = recipe.model, recipe.arch
        return cls(n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd, block_size=m.block_size,
                   vocab_size=m.vocab_size, bias=m.bias, dropout=m.dropout, norm=a.norm, block=a.block,
                   residual=a.residual, qk_norm=a.qk_norm, value_residual=a.value_residual,
                   settings=dict(a.settings), max_iters=recipe.train.max_iters)


def check_arch(arch) -> None:
    """Refuse unknown names and combinations the specification does not define (exit 2).

    `arch` is a GPTConfig, a recipe's ArchConfig or a Recipe: anything with norm, block, residual.
    """
    a = getattr(arch, "arch", arch)
    NORMS.get(a.norm)
    layout = BLOCKS.get(a.block)
    RESIDUALS.get(a.residual)
    if a.residual != "vanilla" and not layout.wraps_sites:
        wrapping = ", ".join(n for n in BLOCKS.names() if BLOCKS.get(n).wraps_sites)
        raise UserError(f"arch.residual '{a.residual}' does not combine with arch.block '{a.block}' "
                        f"('{a.block}' takes only the vanilla residual); '{a.residual}' combines with: {wrapping}")


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        check_arch(cfg)
        self.config = cfg
        layout = BLOCKS.get(cfg.block)
        self.layout = layout
        modules = dict(
            wte=nn.Embedding(cfg.padded_vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            drop=nn.Dropout(cfg.dropout),
            h=nn.ModuleList([layout(cfg, layer) for layer in range(cfg.n_layer)]),
        )
        if layout.embedding_norm:
            modules["ln_e"] = make_norm(cfg)
        if layout.final_norm:
            modules["ln_f"] = make_norm(cfg)
        self.transformer = nn.ModuleDict(modules)
        residual_cls = RESIDUALS.get(cfg.residual)
        self.residual = residual_cls(cfg, layout, settings_of(residual_cls, cfg))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.padded_vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self._step_modules: list[nn.Module] | None = None  # see set_step
        # The training loss fused with the head (loss.py) in this autocast dtype; None: the plain
        # cross-entropy. Set by the trainer (train.loss_kernel); evaluation always takes the plain path.
        self.fused_loss_dtype: torch.dtype | None = None
        self._fused_kernels = False  # see fused_kernels
        self._compiled_blocks = None  # (entry, block): see compile_blocks
        self.apply(self._init_weights)
        for module in self.modules():  # variants that replace or add to GPT-2's init
            if hasattr(module, "init_weights"):
                module.init_weights()

    @property
    def fused_kernels(self) -> bool:
        """The fused operations (set by the trainer, train.norm_kernel; taken by the run's forward passes,
        validation included; `gptablate eval` builds its model without them: the plain layers). Every
        variant's sublayers: the MLP's bias and GELU as one operation (biasgelu.py) and c_attn's backward
        joining the q/k/v gradients (qkvproj.py); attnres's aggregations (aggregate.py); Hyper-Connections' sites'
        norms folded into their stream steps; where the model has Pre-LN's form (prenorm_fusable), also each
        residual add with the next norm (addnorm.py). Each module with a `fused` flag takes them at widths up to
        its FUSED_WIDTH (the sublayers' and add_norm's 1,024: their kernels were measured at 124M's and 345M's
        widths, so 1.5B's 1,600 keeps the plain layers; None: any width, for attnres's aggregations and
        Hyper-Connections' folded norms, whose kernels were checked and timed at 1,600 too: calls DK to DO)."""
        return self._fused_kernels

    @fused_kernels.setter
    def fused_kernels(self, on: bool) -> None:
        self._fused_kernels = bool(on)
        for module in self.modules():
            if hasattr(module, "fused"):  # the sublayers, attnres's aggregations, Hyper-Connections' walk
                limit = getattr(module, "FUSED_WIDTH", FUSED_WIDTH)
                module.fused = self._fused_kernels and (limit is None or self.config.n_embd <= limit)

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

    def set_step(self, step: int) -> None:
        """Tell step-scheduled variants (prores) the training step, in place: no recompile.

        Called every training step, so the modules that hold a `step` buffer are found once.
        (Modules, not tensors: `.to(device)` replaces a buffer's tensor but keeps its module.)
        """
        if self._step_modules is None:
            self._step_modules = [m for m in self.modules() if isinstance(getattr(m, "step", None), torch.Tensor)]
        for module in self._step_modules:
            module.step.fill_(step)

    def embed(self, idx: torch.Tensor) -> torch.Tensor:
        """The blocks' input (B, T, D): token and position embeddings (and the embedding norm of layouts with one)."""
        T = idx.shape[1]
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens exceeds block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        return self.transformer.ln_e(x) if self.layout.embedding_norm else x

    def _embed_and_enter(self, idx: torch.Tensor):
        """compile_blocks's first region: the embeddings and the fused walk's first norm, (x, stream, h)."""
        x = self.embed(idx)
        return (x, *prenorm_enter(x, self.transformer.h[0].ln_1, self.config.norm == "layernorm"))

    def hidden(self, idx: torch.Tensor) -> torch.Tensor:
        """Final-norm hidden states (B, T, D)."""
        if self.fused_kernels and self.prenorm_fusable():
            center = self.config.norm == "layernorm"
            if self._compiled_blocks is not None:
                enter, block = self._compiled_blocks
                x, stream, h = enter(idx)
                return prenorm_walk(x, self.transformer.h, self.transformer.ln_f, {"x0": x}, center, None, block,
                                    (stream, h))
            x = self.embed(idx)
            return prenorm_walk(x, self.transformer.h, self.transformer.ln_f, {"x0": x}, center,
                                self.residual.prenorm_addend)
        x = self.embed(idx)
        ctx = {"x0": x}  # what strategies share along the walk (x0 mixing, value residual)
        ln_f = self.transformer["ln_f"] if "ln_f" in self.transformer else None
        if ln_f is not None and self.layout.exit is Layout.exit:  # the exit is the final norm
            return self.residual.walk_final(self.layout.enter(x), self.transformer.h, ln_f, ctx)
        state = self.residual.walk(self.layout.enter(x), self.transformer.h, ctx)
        return self.layout.exit(state, ln_f)

    def blocks_compilable(self) -> bool:
        """Whether compile_blocks applies: the fused walk without an addend (Pre-LN blocks on the vanilla residual,
        LayerNorm or RMSNorm, no dropout, widths up to 1,024; fused_kernels on)."""
        return self.fused_kernels and self.prenorm_fusable() and self.residual.prenorm_addend is None

    def compile_blocks(self, options: dict | None = None, backend="inductor") -> None:
        """Compile the model region by region instead of as one graph: the embeddings with the first norm, and one
        block (prenorm_block) whose graph serves all n_layer blocks, since no block index enters it. Tracing and
        code generation then cover one block rather than n_layer; the operations between blocks are our own
        kernels (add_norm) either way, so no fusion across a block's edge is lost. Only where blocks_compilable."""
        if not self.blocks_compilable():
            raise ValueError("compile_blocks: the model does not take the fused walk without an addend")
        how = dict(backend=backend, **({"options": options} if options else {}))
        self._compiled_blocks = (torch.compile(self._embed_and_enter, **how), torch.compile(prenorm_block, **how))

    def compiled(self, unit: str = "model"):
        """The model compiled as the trainer runs it, with compile_options: unit "model", one graph (the compiled
        wrapper, returned); "block", block by block (compile_blocks: the model itself, returned, runs its compiled
        regions)."""
        if unit == "block":
            self.compile_blocks(self.compile_options())
            return self
        return torch.compile(self, options=self.compile_options())

    def prenorm_fusable(self) -> bool:
        """Whether this model has the form prenorm_walk computes: Pre-LN blocks on the vanilla residual or
        LAuReL-LR's (Residual.prenorm_walkable), LayerNorm or RMSNorm, no dropout; and a width its kernels were
        measured at (124M's 768, 345M's 1,024; 1.5B's 1,600 keeps the plain layers: its rows would be 2,048-lane
        tiles, not timed)."""
        c = self.config
        return (self.layout is PreLN and self.residual.prenorm_walkable and c.norm in ("layernorm", "rmsnorm")
                and c.dropout == 0.0 and c.n_embd <= FUSED_WIDTH)

    def compile_options(self) -> dict | None:
        """torch.compile's inductor options for this model as it runs now (None: the defaults). With the fused walk,
        the coalescing analysis of inductor's tiling is off: it gave the kernel that adds the embedding output's two
        gradients (the first norm's and the stream's, both add_norm kernels' outputs) and runs the embedding's
        backward a 2-D tiling with scattered atomic adds, 1.21 ms a step against 0.28 ms without it (call BB), where
        the same graph with the operations opaque had been tiled as a plain 1-D reduction."""
        if self.fused_kernels and self.prenorm_fusable():
            return {"triton.coalesce_tiling_analysis": False}
        return None

    def logits(self, idx: torch.Tensor) -> torch.Tensor:
        """Logits over the real vocabulary only (the padding never enters a softmax)."""
        return self.lm_head(self.hidden(idx))[..., : self.config.vocab_size]

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                reduction: str = "mean") -> torch.Tensor:
        """With targets: the cross-entropy (mean, or sum for exact validation sums); else logits."""
        if (targets is not None and reduction == "mean" and self.fused_loss_dtype is not None
                and torch.is_grad_enabled()):
            h = self.hidden(idx)
            return linear_cross_entropy(h.reshape(-1, h.size(-1)), self.lm_head.weight, targets.reshape(-1),
                                        self.config.vocab_size, self.fused_loss_dtype)
        logits = self.logits(idx)
        if targets is None:
            return logits
        return F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), targets.reshape(-1),
                               reduction=reduction)

    def flops_per_token(self) -> int:
        """6N + 12·L·H·Q·T (PaLM appendix B, as nanoGPT reports MFU)."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_head * (c.n_embd // c.n_head) * c.block_size
