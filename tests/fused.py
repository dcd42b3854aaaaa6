"""A model with its fused operations against the same model without them (tests of model/*.py's fused paths)."""

import torch


def assert_fused_is_plain(model, loss_tol: dict, grad_tol: dict) -> None:
    """The model's loss and every gradient with its fused kernels (their torch rules on the CPU) and without, equal
    within torch.allclose's loss_tol and grad_tol; every module with a `fused` flag follows GPT.fused_kernels."""
    idx = torch.randint(0, model.config.vocab_size, (2, 16))
    results = []
    for fused in (False, True):
        model.fused_kernels = fused
        flagged = [m for m in model.modules() if hasattr(m, "fused")]  # sublayers, attnres's aggregations
        assert len(flagged) >= 2 * model.config.n_layer and all(m.fused is fused for m in flagged)
        model.zero_grad(set_to_none=True)
        loss = model(idx[:, :-1], idx[:, 1:])
        loss.backward()
        results.append((loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    (l0, g0), (l1, g1) = results
    assert torch.allclose(l0, l1, **loss_tol)
    assert g0.keys() == g1.keys()
    for name in g0:
        assert torch.allclose(g0[name], g1[name], **grad_tol), name
