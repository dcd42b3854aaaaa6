"""AdamW with weight decay on matrices only, and the learning-rate schedules."""

from __future__ import annotations

import inspect
import math

import torch


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Decay >=2-D weights (matmuls, embeddings); never biases, norm gains or scalars."""
    decay, no_decay = [], []
    for p in model.parameters():  # parameters() yields a tied weight once
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def make_optimizer(model: torch.nn.Module, train, device_type: str) -> torch.optim.Optimizer:
    kwargs = dict(lr=train.lr, betas=tuple(train.betas), eps=1e-8)
    if device_type == "cuda" and "fused" in inspect.signature(torch.optim.AdamW).parameters:
        kwargs["fused"] = True  # one kernel for the whole update
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
