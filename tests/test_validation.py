"""Validation through the compiled training graph (validation_loss's training_graph)."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from graphs import counting_backend
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.recipe import load_recipe
from gptablate.train.engine import DistInfo, val_on_training_graph, validation_loss


class Wrapped(torch.nn.Module):
    """The model one module down, as torch.compile's OptimizedModule holds it (train() reaches it)."""

    def __init__(self, model: torch.nn.Module, graphs: list | None = None):
        super().__init__()
        self.inner = model
        self.graphs = graphs

    def forward(self, *args, **kwargs):
        if self.graphs is not None:  # which (mode, grad) each full micro-batch ran in
            self.graphs.append((self.inner.training, torch.is_grad_enabled()))
        return self.inner(*args, **kwargs)


def _model_and_windows(n_windows: int, dropout: float = 0.0):
    recipe = load_recipe("tiny", ["model.n_layer=2", "model.n_embd=32", "model.n_head=2", "model.block_size=16",
                                  f"model.dropout={dropout}"])
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_recipe(recipe))
    windows = np.random.default_rng(0).integers(0, recipe.model.vocab_size, size=(n_windows, 17)).astype(np.int64)
    return model, windows


def _val(model, windows, micro, **kw):
    return validation_loss(model, windows, micro, torch.device("cpu"), contextlib.nullcontext(), DistInfo(), **kw)


@pytest.mark.parametrize("n_windows", [12, 14])  # whole micro-batches only; a partial one through the fallback
def test_training_graph_gives_the_eval_loss(n_windows):
    model, windows = _model_and_windows(n_windows)
    graphs = []
    wrapped = Wrapped(model, graphs)
    model.train()
    plain = _val(wrapped, windows, 4, fallback_model=model)
    assert graphs == [(False, False)] * 3 and model.training  # eval mode without gradients, train mode restored
    graphs.clear()
    via_training = _val(wrapped, windows, 4, fallback_model=model, training_graph=True)
    assert graphs == [(True, True)] * 3 and model.training
    assert all(p.grad is None for p in model.parameters())  # nothing was backpropagated
    # the exact sum over every window, in float64 from the plain per-token losses
    with torch.no_grad():
        rows = torch.from_numpy(windows)
        direct = model.eval()(rows[:, :-1], rows[:, 1:], reduction="sum").double().item() / rows[:, 1:].numel()
    assert plain == pytest.approx(direct, rel=1e-6)
    assert via_training == pytest.approx(direct, rel=1e-6)


def test_compiled_validation_runs_the_graph_training_compiled():
    """No new graph for validation with training_graph (on the GPU that is an inductor compile of 12-14 s);
    the eval way compiles one."""
    model, windows = _model_and_windows(10)
    with counting_backend() as compiles:
        compiled = torch.compile(model, backend=compiles.backend)
        rows = torch.from_numpy(windows[:4])
        model.train()
        compiled(rows[:, :-1], rows[:, 1:]).backward()
        trained = len(compiles)
        assert trained >= 1
        via_training = _val(compiled, windows, 4, fallback_model=model, training_graph=True)
        assert len(compiles) == trained
        plain = _val(compiled, windows, 4, fallback_model=model)
        assert len(compiles) > trained
        assert via_training == pytest.approx(plain, rel=1e-6)


def test_the_engine_validates_on_the_training_graph_only_without_dropout():
    recipe = load_recipe("tiny")
    assert val_on_training_graph(recipe, use_compile=True)
    assert not val_on_training_graph(recipe, use_compile=False)  # nothing to reuse
    assert not val_on_training_graph(load_recipe("tiny", ["model.dropout=0.1"]), use_compile=True)
    # why: in train mode dropout changes the loss
    model, windows = _model_and_windows(8, dropout=0.5)
    model.train()
    torch.manual_seed(1)
    noisy = _val(Wrapped(model), windows, 4, training_graph=True)
    plain = _val(Wrapped(model), windows, 4)
    assert abs(noisy - plain) > 1e-3
