"""The loss's row kernel against row_grads_reference (run by tests/test_loss.py;
"interp": on the CPU, in Triton's interpreter, at small widths; else on a GPU at the 124M head's width)."""
import sys

import torch

import gptablate.model.kernels as K
from gptablate.model import loss as L

interp = len(sys.argv) > 1 and sys.argv[1] == "interp"
K.INTERPRET = interp
dev = "cpu" if interp else "cuda"
torch.manual_seed(0)
# (rows, valid columns, columns, programs): a masked tail, padding columns, rows looped over by fewer programs
SHAPES = [(7, 300, 320, None), (9, 64, 64, 4), (5, 65, 96, 2), (6, 1000, 1024, 3)] if interp else [
    (300, 50257, 50304, None), (41, 50257, 50304, 6), (17, 3000, 3008, None), (5, 60000, 60032, None)]
worst = 0.0
for rows, n_valid, n_cols, programs in SHAPES:
    for dtype in ((torch.float32,) if interp else (torch.bfloat16, torch.float32)):
        logits = (torch.randn(rows, n_cols, device=dev) * 4).to(dtype)
        targets = torch.randint(0, n_valid, (rows,), device=dev)
        targets[0] = n_valid - 1
        ref = logits.clone()
        expected = L.row_grads_reference(ref, targets, n_valid)
        got = L._rows_in_place(logits, targets, n_valid, programs=programs)
        tol = 1e-5 if dtype == torch.float32 else 1e-3
        loss_err = (got - expected).abs().max().item()
        grad_err = ((logits.float() - ref.float()).abs().max() / ref.float().abs().max()).item()
        assert loss_err < tol * max(1.0, expected.abs().max().item()), (rows, n_cols, dtype, loss_err)
        assert grad_err < (1e-5 if dtype == torch.float32 else 1e-2), (rows, n_cols, dtype, grad_err)
        assert logits[:, n_valid:].abs().max().item() == 0.0 if n_cols > n_valid else True
        worst = max(worst, grad_err)
print(f"ok: the loss kernel matches the reference; worst relative gradient error {worst:.2e}")
