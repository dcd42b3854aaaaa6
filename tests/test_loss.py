"""The training loss fused with the head (model/loss.py) against F.cross_entropy."""

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import TINY, run_cli
from interpreter import kernel_tests
from gptablate.errors import UserError
from gptablate.recipe import load_recipe
from gptablate.model.kernels import triton_available
from gptablate.model.loss import BLOCK, linear_cross_entropy, row_grads_reference
from gptablate.train.engine import fused_loss_dtype


def _plain_and_fused(n, d, n_valid, n_cols, dtype, device="cpu", scale=0.2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    w0 = torch.randn(n_cols, d, generator=g, dtype=torch.float64) * 0.5
    targets = torch.randint(0, n_valid, (n,), generator=g).to(device)
    out = {}
    for name in ("plain", "fused"):
        h = h0.to(device=device, dtype=dtype).requires_grad_()
        w = w0.to(device=device, dtype=dtype).requires_grad_()
        if name == "plain":
            loss = F.cross_entropy((h @ w.t())[:, :n_valid].float(), targets)
        else:
            loss = linear_cross_entropy(h, w, targets, n_valid, dtype)
        (loss * scale).backward()
        out[name] = (loss.detach().double(), h.grad.double(), w.grad.double())
    return out


def test_fused_loss_matches_cross_entropy_values_and_gradients():
    # 37 rows, a vocabulary not a multiple of the padding, padding columns that must get no gradient
    out = _plain_and_fused(37, 16, 3000, 3008, torch.float64)
    (lp, hp, wp), (lf, hf, wf) = out["plain"], out["fused"]
    assert abs(lp.item() - lf.item()) < 1e-5  # the fused loss sums fp32 row losses
    assert torch.allclose(hp, hf, atol=1e-7, rtol=1e-5)
    assert torch.allclose(wp, wf, atol=1e-7, rtol=1e-5)
    assert wf[3000:].abs().max().item() == 0.0  # the padding rows of the head never see a gradient


def test_reference_rows_overwrite_the_logits_with_the_mean_losss_gradient():
    logits = torch.tensor([[0.0, 1.0, 2.0, 9.0], [3.0, 3.0, 3.0, 9.0]])
    targets = torch.tensor([2, 0])
    x = logits[:, :3].clone().requires_grad_()
    expected = F.cross_entropy(x, targets)
    expected.backward()
    losses = row_grads_reference(logits, targets, 3)
    assert torch.allclose(losses.mean(), expected.detach())
    assert torch.allclose(logits[:, :3], x.grad)
    assert logits[:, 3].abs().max().item() == 0.0


def test_loss_kernel_choice():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert fused_loss_dtype("auto", cpu, torch.float32) is None
    assert fused_loss_dtype("torch", cuda, torch.bfloat16) is None
    assert fused_loss_dtype("fused", cpu, torch.float32) is torch.float32
    assert fused_loss_dtype("auto", cuda, torch.bfloat16) is (torch.bfloat16 if triton_available() else None)
    assert fused_loss_dtype("auto", cuda, torch.float16) is None


def test_fused_loss_with_float16_is_refused_at_load():
    with pytest.raises(UserError, match=r"train\.loss_kernel=fused does not combine with train\.dtype=float16"):
        load_recipe("tiny", ["train.loss_kernel=fused", "train.dtype=float16"])
    assert load_recipe("tiny", ["train.dtype=float16"]).train.loss_kernel == "auto"


def test_fused_training_run_matches_the_plain_one(prepared_corpus, tmp_path):
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    common = ["train", "tiny", *TINY, "--set", "train.max_iters=6", "--set", "train.log_interval=1",
              "--set", "data.eval_interval=3", "--set", "train.micro_batch=2", "--device", "cpu"]
    rows = {}
    for kernel in ("torch", "fused"):
        run_cli(*common, "--set", f"run.name={kernel}", "--set", f"train.loss_kernel={kernel}", env=env, check=True)
    for d in (tmp_path / "runs").iterdir():
        if d.is_dir():
            name = "fused" if "name: fused" in (d / "recipe.yaml").read_text() else "torch"
            rows[name] = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
            assert f"loss={name}" in (d / "log.txt").read_text()
    assert [r["step"] for r in rows["torch"]] == [r["step"] for r in rows["fused"]] == list(range(1, 7))
    for a, b in zip(rows["torch"], rows["fused"]):
        assert abs(a["train_loss"] - b["train_loss"]) < 1e-4, (a, b)
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-3 * a["grad_norm"], (a, b)
        if "val_loss" in a:
            assert abs(a["val_loss"] - b["val_loss"]) < 1e-4
    board = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    assert len({r["arm"] for r in board}) == 1  # the loss kernel does not make a new arm


@pytest.mark.skipif(not (torch.cuda.is_available() and triton_available()), reason="needs CUDA and Triton")
def test_triton_kernel_matches_reference_on_gpu():
    # bf16 as in training; a row wider than several blocks, with a masked tail
    out = _plain_and_fused(300, 64, 50257, 50304, torch.bfloat16, device="cuda")
    (lp, hp, wp), (lf, hf, wf) = out["plain"], out["fused"]
    assert abs(lp.item() - lf.item()) < 1e-3 * lp.item()
    assert (hp - hf).abs().max().item() <= 2e-2 * hp.abs().max().item()
    assert (wp - wf).abs().max().item() <= 2e-2 * wp.abs().max().item()
    assert wf[50257:].abs().max().item() == 0.0
    logits = torch.randn(5, 3 * BLOCK + 17, device="cuda") * 4
    targets = torch.tensor([0, 1, 2 * BLOCK, 3 * BLOCK - 1, 3 * BLOCK + 16], device="cuda")
    ref = logits.clone()
    expected = row_grads_reference(ref, targets, 3 * BLOCK + 17)
    from gptablate.model.loss import _rows_in_place
    got = _rows_in_place(logits, targets, 3 * BLOCK + 17)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.allclose(logits, ref, rtol=1e-4, atol=1e-8)
    # fewer programs than rows: each program loops over rows (as on the real step's 61,440 rows)
    logits = torch.randn(41, 2 * BLOCK + 5, device="cuda") * 4
    targets = torch.randint(0, 2 * BLOCK, (41,), device="cuda")
    ref = logits.clone()
    expected = row_grads_reference(ref, targets, 2 * BLOCK)
    got = _rows_in_place(logits, targets, 2 * BLOCK, programs=6)
    assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.allclose(logits, ref, rtol=1e-4, atol=1e-8)


_CHECK = Path(__file__).with_name("loss_kernel_check.py")

# both row kernels (on-chip and streaming) against row_grads_reference
test_row_kernels_match_reference_in_triton_interpreter, test_row_kernels_match_reference_on_gpu = kernel_tests(
    [str(_CHECK), "interp"], [str(_CHECK)])
