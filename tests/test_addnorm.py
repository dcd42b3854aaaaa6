"""Pre-LN's add and norm as one operation (model/addnorm.py): its backward, its kernels, the model's two paths."""

import inspect
from pathlib import Path

import pytest
import torch

from fused import assert_fused_is_plain
from interpreter import HAVE_TRITON, kernel_tests, run_check
from gptablate.model import addnorm as AN
from gptablate.model import biasgelu as BG
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.model.residuals import HyperConnections, _Aggregator
from gptablate.recipe import load_recipe


@pytest.mark.parametrize("has_add", [True, False])
@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("biases", [True, False])
def test_hand_written_backward_matches_autograd(has_add, center, biases):
    g = torch.Generator().manual_seed(1)
    r = lambda *shape, s=1.0: (s * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()
    M, D = 6, 10
    x, out, pb, w, b = r(M, D, s=2.0), r(M, D), r(D, s=0.1), r(D, s=0.3), r(D, s=0.1)
    with torch.no_grad():
        w += 1
    dxn, dh = torch.randn(M, D, generator=g, dtype=torch.float64), torch.randn(M, D, generator=g, dtype=torch.float64)
    e = torch.zeros(0, dtype=torch.float64)
    leaves = [x, w] + ([out] if has_add else []) + ([pb] if has_add and biases else []) + ([b] if biases else [])
    # the op (its torch rule on the CPU, the hand-written backward) against autograd through the reference
    xn, h = AN.add_norm(x, out if has_add else None, pb if biases else None, w, b if biases else None, 1e-5, center,
                        torch.float64)
    got = torch.autograd.grad((h * dh).sum() + ((xn * dxn).sum() if has_add else 0), leaves)
    rxn, rh, _, _ = AN.add_norm_reference(x, out, pb if biases else e, w, b if biases else e, 1e-5, has_add, center,
                                          torch.float64)
    want = torch.autograd.grad((rh * dh).sum() + ((rxn * dxn).sum() if has_add else 0), leaves)
    assert torch.allclose(h, rh, atol=1e-12) and torch.allclose(xn, rxn, atol=1e-12)
    for a, b_ in zip(got, want):
        assert torch.allclose(a, b_, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("center", [True, False])
@pytest.mark.parametrize("copy", [False, True])
def test_extra_term_is_added_and_takes_outs_gradient(center, copy):
    # LAuReL-LR's low-rank term joins the add: x' = x + out + extra + b_proj; its gradient is out's. With copy,
    # x' in h's dtype comes out too, and its gradient joins x''s in the backward
    g = torch.Generator().manual_seed(3)
    r = lambda *shape, s=1.0: (s * torch.randn(*shape, generator=g, dtype=torch.float64)).requires_grad_()
    M, D = 5, 12
    x, out, extra, pb, w, b = r(M, D, s=2.0), r(M, D), r(M, D, s=0.5), r(D, s=0.1), r(D, s=0.3), r(D, s=0.1)
    dxn, dh, dxc = (torch.randn(M, D, generator=g, dtype=torch.float64) for _ in range(3))
    leaves = [x, out, extra, pb, w, b]
    xn, h, *xc = AN.add_norm(x, out, pb, w, b, 1e-5, center, torch.float64, extra, copy)
    got = torch.autograd.grad((h * dh).sum() + (xn * dxn).sum() + ((xc[0] * dxc).sum() if copy else 0), leaves)
    rxn, rh, _, _ = AN.add_norm_reference(x, out + extra, pb, w, b, 1e-5, True, center, torch.float64)
    want = torch.autograd.grad((rh * dh).sum() + (rxn * dxn).sum() + ((rxn * dxc).sum() if copy else 0), leaves)
    assert torch.allclose(h, rh, atol=1e-12) and torch.allclose(xn, rxn, atol=1e-12)
    assert len(xc) == copy and (not copy or torch.equal(xc[0], xn))
    for a, b_ in zip(got, want):
        assert torch.allclose(a, b_, atol=1e-10, rtol=1e-9)
    assert got[2].abs().max() > 0.1  # not a trivial gradient
    with pytest.raises(ValueError, match="extra"):
        AN.add_norm(x, None, None, w, b, 1e-5, center, torch.float64, extra)


def test_copy_without_an_add_is_the_input_rounded():
    # the first site's norm: x' is x, and its copy's gradient reaches x
    x = torch.randn(4, 8, dtype=torch.float64, requires_grad=True)
    w = torch.ones(8, dtype=torch.float64)
    xn, h, xc = AN.add_norm(x, None, None, w, None, 1e-5, True, torch.float64, None, True)
    assert xn is x and torch.equal(xc, x) and xc.data_ptr() != x.data_ptr()
    (gx,) = torch.autograd.grad(xc.sum() * 3, x)
    assert torch.allclose(gx, torch.full_like(x, 3.0))


def test_bias_gelu_backward_matches_autograd():
    g = torch.Generator().manual_seed(2)
    pre = (2 * torch.randn(5, 12, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.randn(12, generator=g, dtype=torch.float64).requires_grad_()
    dact = torch.randn(5, 12, generator=g, dtype=torch.float64)
    act = BG.bias_gelu(pre, b)  # the op: its torch rule on the CPU, the hand-written backward
    got = torch.autograd.grad(act, (pre, b), dact)
    want_act = torch.nn.functional.gelu(pre + b, approximate="tanh")
    want = torch.autograd.grad(want_act, (pre, b), dact)
    assert torch.allclose(act, want_act, atol=1e-12)
    for a, w in zip(got, want):
        assert torch.allclose(a, w, atol=1e-10, rtol=1e-9)


def _model(sets):
    torch.manual_seed(0)
    cfg = GPTConfig.from_recipe(load_recipe("tiny", ["model.n_layer=2", "model.dropout=0.0", *sets]))
    model = GPT(cfg)
    with torch.no_grad():  # biases and gains away from their init (0 and 1), so that a dropped one shows
        for p in model.parameters():
            if p.dim() == 1 and p.numel() > 1:
                p.add_(0.1 * torch.randn_like(p))
    return model


def _assert_fused_is_plain(model):
    assert_fused_is_plain(model, dict(atol=1e-6), dict(atol=1e-5, rtol=1e-4))


@pytest.mark.parametrize("sets", [[], ["arch.norm=rmsnorm"], ["model.bias=false"],
                                  ["arch.qk_norm=true", "arch.value_residual=true"]])
def test_fused_walk_is_the_blocks_function(sets):
    # the fused walk (add_norm and the fused sublayers) against the blocks' own
    model = _model(sets)
    assert model.prenorm_fusable()
    _assert_fused_is_plain(model)


def test_laurel_lr_takes_the_fused_walk():
    # its low-rank term B(A x) joins add_norm's add (Residual.prenorm_addend)
    model = _model(["arch.residual=laurel", "arch.laurel.mode=lr", "arch.laurel.rank=4"])
    with torch.no_grad():  # B starts at 0, which would leave A's gradient 0 on both paths
        for low_rank in model.residual.low_rank:
            low_rank.B.weight.normal_(std=0.1)
    assert model.prenorm_fusable()
    _assert_fused_is_plain(model)
    assert model.residual.low_rank[0].A.weight.grad.abs().max() > 1e-4


@pytest.mark.parametrize("sets", [["arch.block=sandwich"], ["arch.block=parallel", "arch.norm=dyt"],
                                  ["arch.residual=hyper"], ["arch.residual=attnres"],
                                  ["model.bias=false", "arch.block=post"]])
def test_fused_sublayers_are_the_plain_function_in_every_form(sets):
    # forms without Pre-LN's walk still take the fused MLP and c_attn (their torch rules on the CPU): the same
    # loss and gradients as the plain layers
    model = _model(sets)
    assert not model.prenorm_fusable()
    _assert_fused_is_plain(model)


@pytest.mark.parametrize("sets, copies", [([], 0), (["arch.residual=laurel", "arch.laurel.mode=lr"], 4)])
def test_the_walk_writes_the_streams_copy_only_for_an_addend(sets, copies, monkeypatch):
    # the rounded copy of the stream (add_norm's `copy`) is what LAuReL-LR's A x reads: every norm but the last
    # writes one there; the baseline's would be a stream-sized write forward, and a gradient of zeros read backward
    model = _model(sets)
    model.fused_kernels = True
    asked, real = [], AN.add_norm

    def add_norm(*args, **kwargs):
        asked.append(inspect.signature(real).bind(*args, **kwargs).arguments.get("copy", False))
        return real(*args, **kwargs)

    monkeypatch.setattr(AN, "add_norm", add_norm)
    model(torch.randint(0, model.config.vocab_size, (2, 16)))
    assert len(asked) == 2 * model.config.n_layer + 1 and sum(map(bool, asked)) == copies


def test_the_fused_walk_compiles_with_its_own_inductor_options():
    # the coalescing analysis of inductor's tiling off for the walk (GPT.compile_options), nothing set elsewhere;
    # inductor takes the option's name (it refuses names it does not know) and the compiled model is the eager one
    model, other = _model([]), _model(["arch.block=sandwich"])
    model.fused_kernels = other.fused_kernels = True
    assert model.compile_options() == {"triton.coalesce_tiling_analysis": False}
    assert other.compile_options() is None
    model.fused_kernels = False
    assert model.compile_options() is None
    model.fused_kernels = True
    idx = torch.randint(0, model.config.vocab_size, (2, 16))
    eager = model(idx, idx)
    compiled = torch.compile(model, options=model.compile_options())(idx, idx)
    torch.testing.assert_close(compiled, eager, atol=1e-5, rtol=1e-5)
    with pytest.raises(Exception, match="not_an_option"):
        torch.compile(model, options={"triton.not_an_option": False})(idx, idx)


def test_wide_models_keep_the_plain_layers():
    """At 1.5B's width the sublayers and Pre-LN's walk keep the plain layers (their kernels were measured at 768 and
    1,024 only); attnres's aggregations and Hyper-Connections' folded norms, checked and timed at 1,600 too, do not."""
    model = _model(["model.n_embd=1600", "model.n_head=25"])
    model.fused_kernels = True
    assert not model.prenorm_fusable()
    assert not any(m.fused for m in model.modules() if hasattr(m, "fused"))
    for residual, kind in (("attnres", _Aggregator), ("hyper", HyperConnections)):
        wide = _model(["model.n_embd=1600", "model.n_head=25", f"arch.residual={residual}"])
        wide.fused_kernels = True
        flags = [(isinstance(m, kind), m.fused) for m in wide.modules() if hasattr(m, "fused")]
        assert any(mine for mine, _ in flags) and all(on == mine for mine, on in flags), residual
        narrow = _model([f"arch.residual={residual}"])
        narrow.fused_kernels = True
        assert all(m.fused for m in narrow.modules() if hasattr(m, "fused")), residual


@pytest.mark.parametrize("sets", [["arch.block=sandwich"], ["arch.residual=hyper"], ["model.dropout=0.1"],
                                  ["arch.norm=dyt"], ["model.n_embd=1600", "model.n_head=25"],
                                  ["arch.residual=laurel"], ["arch.residual=gates"]])
def test_other_forms_keep_their_own_walk(sets):
    assert not _model(sets).prenorm_fusable()


def test_norm_kernel_does_not_make_a_new_arm():
    torch_path, base = load_recipe("tiny", ["train.norm_kernel=torch"]), load_recipe("tiny")
    assert torch_path.arm_hash() == base.arm_hash() and torch_path.arm_label() == "tiny"


_CHECK = Path(__file__).with_name("addnorm_kernel_check.py")

test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    [str(_CHECK), "interp"], [str(_CHECK)])

_COMPILED = Path(__file__).with_name("compiled_kernels_check.py")


def _run_compiled_check(args: list[str]) -> None:
    run_check([str(_COMPILED), *args], timeout=900)


@pytest.mark.parametrize("unit", [[], ["block"]])
def test_compiled_model_with_the_operations_matches_eager_on_cpu(unit):
    """The operations' torch rules inside a compiled model (one graph, or by block): the eager step's loss and
    gradients."""
    _run_compiled_check(["cpu", *unit])


@pytest.mark.skipif(not (torch.cuda.is_available() and HAVE_TRITON), reason="needs CUDA and Triton")
@pytest.mark.parametrize("unit", [[], ["block"]])
def test_inductor_launches_the_kernels_in_a_compiled_model_on_gpu(unit):
    """Inductor launches the kernels itself (no opaque custom op), without copying inputs, and matches eager."""
    _run_compiled_check(unit)
