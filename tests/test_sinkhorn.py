"""mHC's Sinkhorn normalisation as one operation: its hand-written backward, the custom op, the kernels."""

import pytest
import torch
from graphs import compiled_graphs
from interpreter import kernel_tests

from gptablate.model.sinkhorn import sinkhorn, sinkhorn_backward_reference, sinkhorn_reference


def _loop(logits: torch.Tensor, iters: int) -> torch.Tensor:
    """The plain loop mHC used before (autograd through every round): the oracle."""
    m = torch.exp(logits - logits.amax(dim=(-2, -1), keepdim=True))
    for _ in range(iters):
        m = m / m.sum(-1, keepdim=True)
        m = m / m.sum(-2, keepdim=True)
    return m


@pytest.mark.parametrize("n", [2, 3, 4])
def test_backward_rule_matches_autograd_through_the_loop(n):
    torch.manual_seed(n)
    logits = (3 * torch.randn(2, 5, n, n, dtype=torch.float64)).requires_grad_()
    out = _loop(logits, 20)
    grad = torch.randn_like(out)
    (expected,) = torch.autograd.grad(out, logits, grad)
    assert torch.allclose(sinkhorn_reference(logits.detach(), 20), out, atol=1e-15, rtol=0)
    assert torch.allclose(sinkhorn_backward_reference(logits.detach(), grad, 20), expected, atol=1e-13, rtol=0)


def test_op_is_doubly_stochastic_and_differentiable():
    torch.manual_seed(0)
    logits = torch.randn(3, 4, 4, dtype=torch.float64, requires_grad=True)
    out = torch.ops.gptablate.sinkhorn(logits, 30)
    assert torch.allclose(out.sum(-2), torch.ones(3, 4, dtype=torch.float64), atol=1e-12)  # columns last: exact
    assert torch.allclose(out.sum(-1), torch.ones(3, 4, dtype=torch.float64), atol=1e-3)
    assert torch.autograd.gradcheck(lambda x: torch.ops.gptablate.sinkhorn(x, 7), (logits,))
    # the public entry point runs in fp32 whatever it is given (bf16 projections under autocast)
    assert sinkhorn(logits.to(torch.bfloat16), 5).dtype == torch.float32


def test_op_compiles_into_a_graph_without_a_break():
    x = torch.randn(6, 4, 4, requires_grad=True)
    assert len(compiled_graphs(lambda x: sinkhorn(x * 2, 20), x)) == 1
    assert torch.allclose(x.grad, torch.func.grad(lambda y: _loop(y * 2, 20).sum())(x), atol=1e-5)


_KERNEL_CHECK = """
import torch, gptablate.model.sinkhorn as S, gptablate.model.kernels as K
K.INTERPRET = {interpret}
dev = "cuda" if not K.INTERPRET else "cpu"
torch.manual_seed(0)
for n, tokens in ((4, 150), (3, 70), (2, 64), (4, 1)):  # a partial last block; n = 3 pads to 4; a single token
    logits = torch.randn(tokens, n, n, device=dev) * 3
    grad = torch.randn(tokens, n, n, device=dev)
    out = torch.ops.gptablate.sinkhorn(logits, 20)
    back = torch.ops.gptablate.sinkhorn_backward(logits, grad, 20)
    ref = S.sinkhorn_reference(logits.double(), 20)
    ref_back = S.sinkhorn_backward_reference(logits.double(), grad.double(), 20)
    assert (out.double() - ref).abs().max() < 1e-5, (n, (out.double() - ref).abs().max())
    assert (back.double() - ref_back).abs().max() < 1e-5, (n, (back.double() - ref_back).abs().max())
print("ok")
"""


test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    ["-c", _KERNEL_CHECK.format(interpret=True)], ["-c", _KERNEL_CHECK.format(interpret=False)])
