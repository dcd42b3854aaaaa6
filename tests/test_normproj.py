"""Hyper-Connections' norm-and-projection as one operation: values and gradients against the plain torch path."""

import pytest
import torch
import torch.nn.functional as F
from interpreter import kernel_tests

from gptablate.model.normproj import norm_proj


def _plain(x, g, b, W, center):
    if center:
        h = F.layer_norm(x, (x.shape[-1],), g, b, 1e-5)
    else:
        h = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * g
    return h @ W


@pytest.mark.parametrize("center", [True, False])
def test_values_and_gradients_match_norm_then_matmul(center):
    torch.manual_seed(0)
    x = (torch.randn(2, 5, 4, 24, dtype=torch.float64) * 3 + 0.5).requires_grad_()
    g = (1 + 0.1 * torch.randn(24, dtype=torch.float64)).requires_grad_()
    b = (0.1 * torch.randn(24, dtype=torch.float64)).requires_grad_()
    W = torch.randn(24, 6, dtype=torch.float64, requires_grad=True)
    expected = _plain(x, g, b if center else None, W, center)
    z = norm_proj(x, g[:, None] * W, 1e-5, center).double()  # the op runs in fp32
    if center:
        z = z + (b[:, None] * W).sum(0)
    assert torch.allclose(z, expected, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(expected)
    want = torch.autograd.grad(expected, (x, g, b, W) if center else (x, g, W), grad)
    got = torch.autograd.grad(z, (x, g, b, W) if center else (x, g, W), grad)
    for a, e in zip(got, want):
        assert torch.allclose(a, e, atol=1e-4, rtol=1e-4)


def test_op_gradcheck_in_float64():
    torch.manual_seed(1)
    x = torch.randn(7, 12, dtype=torch.float64, requires_grad=True)
    W = torch.randn(12, 3, dtype=torch.float64, requires_grad=True)
    for center in (True, False):
        assert torch.autograd.gradcheck(lambda a, w: torch.ops.gptablate.norm_proj(a, w, 1e-5, center)[0], (x, W))


def test_compiles_without_a_graph_break():
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    x = torch.randn(3, 4, 16, requires_grad=True)
    W = torch.randn(16, 6, requires_grad=True)
    f = torch.compile(lambda a, w: torch.tanh(norm_proj(a * 2, w, 1e-5, True)).sum(), backend=backend, fullgraph=True)
    f(x, W).backward()
    assert len(graphs) == 1
    want = torch.autograd.grad(torch.tanh(_plain(x * 2, torch.ones(16), torch.zeros(16), W, True)).sum(), (x, W))
    assert torch.allclose(x.grad, want[0], atol=1e-5) and torch.allclose(W.grad, want[1], atol=1e-5)
    torch._dynamo.reset()


_KERNEL_CHECK = """
import torch, gptablate.model.normproj as P, gptablate.model.kernels as K
K.INTERPRET = {interpret}
dev = "cuda" if not K.INTERPRET else "cpu"
torch.manual_seed(0)
for rows, K, J in ((37, 24, 6), (9, 48, 5), (1030, 768, 6)):  # partial tiles, K not a power of 2
    x = torch.randn(rows, K, device=dev) * 2 + 0.3
    w = torch.randn(K, J, device=dev)
    dz = torch.randn(rows, J, device=dev)
    for center in (True, False):
        z, mean, rstd = torch.ops.gptablate.norm_proj(x, w, 1e-5, center)
        rz, rmean, rstd_ref = P.norm_proj_reference(x.double(), w.double(), 1e-5, center)
        assert (z.double() - rz).abs().max() < 1e-3, ("z", rows, K, center, (z.double() - rz).abs().max())
        assert (rstd.double() - rstd_ref).abs().max() < 1e-5
        dx = torch.ops.gptablate.norm_proj_backward(x, w, mean, rstd, dz, center)
        rdx = P.norm_proj_backward_reference(x.double(), w.double(), rmean, rstd_ref, dz.double(), center)
        assert (dx.double() - rdx).abs().max() < 1e-3, ("dx", rows, K, center, (dx.double() - rdx).abs().max())
print("ok")
"""


test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    ["-c", _KERNEL_CHECK.format(interpret=True)], ["-c", _KERNEL_CHECK.format(interpret=False)])
