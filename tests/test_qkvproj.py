"""Attention's q/k/v projection with the joined gradient (model/qkvproj.py) against c_attn's own."""

from pathlib import Path

import pytest
import torch

from interpreter import kernel_tests
from gptablate.model.qkvproj import qkv_projection


def _grads(x, lin, project, gs):
    q, k, v = project(x)
    loss = sum((t.to(g.dtype) * g).sum() for t, g in zip((q, k, v), gs))
    params = [x, lin.weight] + ([lin.bias] if lin.bias is not None else [])
    return (q, k, v), torch.autograd.grad(loss, params)


def _case(seed, B, T, C, bias=True, dtype=torch.float32):
    """c_attn of width C, an input (B, T, C) and gradients for q, k and v."""
    torch.manual_seed(seed)
    lin = torch.nn.Linear(C, 3 * C, bias=bias).to(dtype)
    x = torch.randn(B, T, C, dtype=dtype, requires_grad=True)
    return lin, x, [torch.randn(B, T, C, dtype=dtype) for _ in range(3)]


@pytest.mark.parametrize("bias", [True, False])
def test_projection_is_c_attn_with_its_gradients(bias):
    C = 12
    lin, x, gs = _case(0, 2, 5, C, bias, torch.float64)
    got_out, got = _grads(x, lin, lambda h: qkv_projection(h, lin.weight, lin.bias), gs)
    want_out, want = _grads(x, lin, lambda h: lin(h).split(C, dim=2), gs)
    for a, b in zip(got_out + got, want_out + want):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-12, rtol=1e-12)


def test_projection_compiles_to_the_same_gradients():
    lin, x, gs = _case(1, 2, 8, 16)
    project = lambda h: qkv_projection(h, lin.weight, lin.bias)
    _, eager = _grads(x, lin, project, gs)
    compiled = torch.compile(lambda h: sum((t * g).sum() for t, g in zip(project(h), gs)), fullgraph=True)
    got = torch.autograd.grad(compiled(x), (x, lin.weight, lin.bias))
    for a, b in zip(got, eager):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)


def test_projection_under_autocast_takes_the_autocast_dtype():
    # as F.linear under autocast: q, k, v in bf16; the fp32 parameters' gradients in fp32, the bias's summed
    # in fp32 (the plain path rounds it to bf16 first), so the two agree to bf16 rounding and no closer
    C = 16
    lin, x, gs = _case(2, 2, 8, C)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got_out, got = _grads(x, lin, lambda h: qkv_projection(h, lin.weight, lin.bias), gs)
        want_out, want = _grads(x, lin, lambda h: lin(h).split(C, dim=2), gs)
    assert all(t.dtype == torch.bfloat16 for t in got_out)
    assert [g.dtype for g in got] == [torch.float32] * 3
    for a, b in zip(got_out + got, want_out + want):
        assert torch.allclose(a.float(), b.float(), atol=2e-2, rtol=2e-2)


_CHECK = Path(__file__).with_name("qkvproj_kernel_check.py")

test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    [str(_CHECK), "interp"], [str(_CHECK)])
