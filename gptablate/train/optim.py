"""AdamW with weight decay on matrices only, and the learning-rate schedules."""

from __future__ import annotations

import inspect
import math

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay >=2-D weights (matmuls, embeddings); never biases, norm gains or scalars.

    The one declared mechanism for variants: a module lists its own scalars, vectors and
    connection constants in `CONSTANTS` (attribute names of Parameters or ParameterLists).
    Those are never decayed, whatever their shape, and train at lr × the module's `lr_mult`.
    Matrices that multiply activations are ordinary weights and are decayed.
    """
    constants: dict[int, float] = {}
    for module in model.modules():
        for name in getattr(module, "CONSTANTS", ()):
            value = getattr(module, name, None)
            params = [value] if isinstance(value, torch.nn.Parameter) else list(value or [])
            for p in params:
                constants[id(p)] = float(getattr(module, "lr_mult", 1.0))
    groups: dict[tuple[float, float], list] = {}
    for p in model.parameters():  # parameters() yields a tied weight once
        if not p.requires_grad:
            continue
        if id(p) in constants:
            key = (0.0, constants[id(p)])
        else:
            key = (weight_decay if p.dim() >= 2 else 0.0, 1.0)
        groups.setdefault(key, []).append(p)
    return [{"params": ps, "weight_decay": wd, "lr_mult": mult} for (wd, mult), ps in sorted(groups.items())]


def make_optimizer(model: torch.nn.Module, train, device_type: str) -> torch.optim.Optimizer:
    kwargs = dict(lr=train.lr, betas=tuple(train.betas), eps=1e-8)  # per-group lr = lr × lr_mult
    if device_type in ("cuda", "cpu") and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        # One kernel for the whole update (CUDA and CPU), and it can skip a step on the
        # device's own verdict (found_inf): the divergence guard needs no host sync.
        kwargs["fused"] = True
    return torch.optim.AdamW(param_groups(model, train.weight_decay), **kwargs)


def lr_at(step: int, train) -> float:
    """Linear warmup over warmup_iters, then cosine / linear decay to min_lr at max_iters."""
    if step < train.warmup_iters:
        return train.lr * (step + 1) / train.warmup_iters
    if train.lr_schedule == "constant":
        return train.lr
    span = max(train.max_iters - train.warmup_iters, 1)
    progress = min(max((step - train.warmup_iters) / span, 0.0), 1.0)
    if train.lr_schedule == "linear":
        return train.lr + (train.min_lr - train.lr) * progress
    return train.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (train.lr - train.min_lr)
