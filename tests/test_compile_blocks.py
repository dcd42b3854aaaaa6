"""Compiling block by block (GPT.compile_blocks, train.compile_unit): one graph for every block, the same numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import TINY, run_cli
from graphs import counting_backend
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.recipe import load_recipe
from gptablate.train.engine import compile_unit
from test_ddp import _losses, _runs_by_name
from test_validation import _val


def _pair(overrides: list[str]):
    recipe = load_recipe("tiny", ["model.n_layer=3", "model.n_embd=32", "model.n_head=2", "model.block_size=16",
                                  *overrides])
    torch.manual_seed(0)
    plain = GPT(GPTConfig.from_recipe(recipe))
    plain.fused_kernels = True  # on the CPU the fused operations' torch rules
    return plain, copy.deepcopy(plain)


@pytest.mark.parametrize("overrides, graphs", [
    ([], 1),
    (["arch.norm=rmsnorm", "arch.qk_norm=true"], 1),
    (["arch.value_residual=true"], 2),  # block 0 stores its values for the later blocks: a graph of its own
])
def test_one_graph_serves_every_block_with_the_same_loss_and_gradients(overrides, graphs):
    plain, regional = _pair(overrides)
    assert regional.blocks_compilable()
    with counting_backend() as traced:
        regional.compile_blocks(backend=traced.backend)
        idx = torch.randint(0, 500, (2, 16), generator=torch.Generator().manual_seed(1))
        for model in (plain, regional):
            model(idx[:, :-1], idx[:, 1:]).backward()
        # the entry (embeddings, the first norm) and the block graph(s), not one graph per block
        assert len(traced) == 1 + graphs
        for (name, a), b in zip(plain.named_parameters(), regional.parameters()):
            assert torch.allclose(a.grad, b.grad, rtol=1e-5, atol=1e-7), name
        with torch.no_grad():
            assert torch.allclose(plain(idx[:, :-1], idx[:, 1:]), regional(idx[:, :-1], idx[:, 1:]), rtol=1e-6)


def test_validation_of_a_block_compiled_model_traces_nothing_for_a_partial_micro_batch():
    plain, regional = _pair([])
    with counting_backend() as traced:
        regional.compile_blocks(backend=traced.backend)
        windows = np.random.default_rng(0).integers(0, 500, size=(10, 17)).astype(np.int64)
        regional.train()
        rows = torch.from_numpy(windows[:4])
        regional(rows[:, :-1], rows[:, 1:]).backward()
        trained = len(traced)
        # 10 windows at 4: two full micro-batches through the training graph, the last 2 windows eagerly
        loss = _val(regional, windows, 4, fallback_model=regional, training_graph=True)
        assert len(traced) == trained
        assert loss == pytest.approx(_val(plain, windows, 4), rel=1e-6)


def test_the_compile_unit_rule():
    assert compile_unit("block", True) == "block"
    assert compile_unit("model", True) == "model"
    assert compile_unit("block", False) == "model"  # a model without the fused walk compiles as one graph
    assert compile_unit("block", True, world_size=2) == "block"  # asked for: also under DDP
    # the default: by block on one process (compiles faster, steps as fast), one graph under DDP
    assert load_recipe("gpt2_124m").train.compile_unit == "auto"
    assert compile_unit("auto", True) == "block"
    assert compile_unit("auto", True, world_size=4) == "model"
    assert compile_unit("auto", False) == "model"
    assert not _pair(["arch.block=post"])[0].blocks_compilable()
    assert not _pair(["arch.residual=laurel", "arch.laurel.mode=lr"])[0].blocks_compilable()  # its addend's index
    with pytest.raises(ValueError):
        _pair(["arch.block=post"])[0].compile_blocks()


def test_a_run_compiled_by_block_trains_and_validates_as_one_compiled_graph_and_eagerly(prepared_corpus, tmp_path):
    """Inductor on the CPU: the same losses compiled by block, as one graph and not at all (the fused operations'
    torch rules in all three)."""
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    common = ["train", "tiny", *TINY, "--set", "train.max_iters=4", "--set", "train.log_interval=1",
              "--set", "data.eval_interval=4", "--set", "train.norm_kernel=fused", "--device", "cpu"]
    runs = {"block": ["--set", "train.compile=true", "--set", "train.compile_unit=block"],
            "model": ["--set", "train.compile=true", "--set", "train.compile_unit=model"],
            "auto": ["--set", "train.compile=true"],  # the default unit: by block on one process
            "eager": ["--set", "train.compile=false"]}
    for name, extra in runs.items():
        run_cli(*common, *extra, "--set", f"run.name={name}", env=env, check=True)
    logged = {"block": "compile=True (by block),", "model": "compile=True,", "eager": "compile=False,",
              "auto": "compile=True (by block),"}
    rows = {}
    for name, d in _runs_by_name(tmp_path / "runs", tuple(runs)).items():
        assert logged[name] in (d / "log.txt").read_text()
        rows[name] = _losses(d)
    block, model, eager = rows["block"], rows["model"], rows["eager"]
    assert [r["step"] for r in block] == [r["step"] for r in model] == [r["step"] for r in eager] == [1, 2, 3, 4]
    for a, b, c in zip(block, model, eager):
        assert abs(a["train_loss"] - c["train_loss"]) < 1e-4 and abs(b["train_loss"] - c["train_loss"]) < 1e-4
    assert abs(block[-1]["val_loss"] - eager[-1]["val_loss"]) < 1e-4
    assert abs(model[-1]["val_loss"] - eager[-1]["val_loss"]) < 1e-4
    assert block[-1]["train_loss"] < block[0]["train_loss"]
    # the same graphs as block's (to the summation order of the CPU's threads: 1e-8 apart between processes)
    assert [r["step"] for r in rows["auto"]] == [1, 2, 3, 4]
    for a, b in zip(rows["auto"], block):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
    assert rows["auto"][-1]["val_loss"] == pytest.approx(block[-1]["val_loss"], rel=1e-6)
