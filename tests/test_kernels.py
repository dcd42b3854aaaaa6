"""model/kernels.py: the fused-operation keys' shared choice (train.norm_kernel, arch.hyper.kernel,
arch.mhc.kernel), where the interpreter checks' Triton lives, and the row kernels' shapes by width."""

import torch

from gptablate.model import kernels
from gptablate.model.kernels import chosen, triton_available
from gptablate.train.engine import fused_kernels


def test_auto_takes_the_fused_operations_on_cuda_with_triton_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert chosen("fused", cpu) and chosen("fused", cuda)
    assert not chosen("torch", cpu) and not chosen("torch", cuda)
    assert not chosen("auto", cpu)
    assert chosen("auto", cuda) is triton_available()
    for setting in ("auto", "fused", "torch"):
        for device in (cpu, cuda):
            assert fused_kernels(setting, device) is chosen(setting, device)


def test_interpreter_folder_is_in_the_cache_unless_named(monkeypatch, tmp_path):
    """Where install.sh --test puts Triton for the interpreter checks, and where tests/interpreter.py looks: the
    variable's folder if set, else triton-interpreter in gptablate's cache."""
    monkeypatch.delenv("GPTABLATE_TRITON_INTERPRETER", raising=False)
    monkeypatch.setenv("GPTABLATE_CACHE", str(tmp_path / "cache"))
    assert kernels.interpreter_path() == tmp_path / "cache" / "triton-interpreter"
    monkeypatch.setenv("GPTABLATE_TRITON_INTERPRETER", str(tmp_path / "elsewhere"))
    assert kernels.interpreter_path() == tmp_path / "elsewhere"
    assert all("==" in p for p in kernels.INTERPRETER_PACKAGES)  # pinned: install.sh compares versions with them


def test_rows_past_eight_chunks_take_more_warps():
    """The row kernels' tuned warps hold at the 124M and 345M widths (8 chunks of 128 features) and grow with the
    chunks past them: 1.5B's 1,600 features are 16 chunks, twice the warps; never past 32 (1,024 threads)."""
    assert kernels.row_chunks(768) == (8, 128) and kernels.row_chunks(1024) == (8, 128)
    assert kernels.row_chunks(1600) == (16, 128) and kernels.row_chunks(20) == (1, 32)
    assert [kernels.row_warps(4, D) for D in (20, 768, 1024, 1025, 1600, 2048, 4096)] == [4, 4, 4, 8, 8, 8, 16]
    assert kernels.row_warps(2, 1600) == 4 and kernels.row_warps(16, 8192) == 32
