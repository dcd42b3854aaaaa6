"""Hyper-Connections' fused stream step: the hand-written backward, the model's two paths, the kernels."""

from pathlib import Path

import pytest
import torch
from fused import (assert_bf16_streams_follow_fp32, assert_compiled_autocast_keeps_gradients,
                   assert_op_backward_is_autograds, kernel_key_paths, losses_after_perturbing, perturb_alike)
from graphs import compiled_graphs
from interpreter import kernel_tests

from gptablate.model import hyperstatic as HSt
from gptablate.model import hyperstep as HS
from gptablate.model.addnorm import add_norm_reference
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.model.norms import RMSNorm
from gptablate.recipe import load_recipe
from gptablate.errors import UserError

FLAGS = [(w, d, c) for w in (True, False) for d in (True, False) for c in (True, False)]


def _inputs(n, D, M, has_write, dynamic, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape, s=1.0: (s * torch.randn(*shape, generator=g, dtype=dtype)).requires_grad_()
    Hk, out, Ck = r(M, n, D, s=2.0), r(M, D), r(M, n, n + 2)
    wt, bw, s = r(n + 2, D, s=0.3), r(n + 2, s=0.1), r(2, s=0.3)
    a_s, b_s = r(n, n + 1), r(n)
    if not has_write:
        out, Ck = torch.zeros(0, dtype=dtype), torch.zeros(0, dtype=dtype)
    if not dynamic:
        wt, bw, s = (torch.zeros(0, dtype=dtype) for _ in range(3))
    return [Hk, out, Ck, wt, bw, s, a_s, b_s]


def _norm_inputs(D, bias, dtype=torch.float64, seed=1):
    """The site's norm's gain and bias (an empty bias: none), away from their initial values."""
    g = torch.Generator().manual_seed(seed)
    weight = (1 + 0.3 * torch.randn(D, generator=g, dtype=dtype)).requires_grad_()
    b = (0.2 * torch.randn(D, generator=g, dtype=dtype)).requires_grad_() if bias else torch.zeros(0, dtype=dtype)
    return [weight, b]


@pytest.mark.parametrize("has_write,dynamic,center", FLAGS)
def test_hand_backward_matches_autograd_through_the_reference(has_write, dynamic, center):
    empty = torch.zeros(0, dtype=torch.float64)
    assert_op_backward_is_autograds(torch.ops.gptablate.hyper_step, HS.hyper_step_reference,
                                    _inputs(3, 10, 4, has_write, dynamic) + [empty, empty],
                                    (1e-5, has_write, dynamic, center, torch.float64))


@pytest.mark.parametrize("has_write", [True, False])
@pytest.mark.parametrize("norm", [(True, True), (True, False), (False, False)])  # LayerNorm ± bias, RMSNorm
def test_hand_backward_with_the_sites_norm_matches_autograd(has_write, norm):
    """The dynamic step with the site's norm folded in (its output h = N(x_in')): forward and hand-written backward
    against autograd through plain torch, the norm's gain and bias gradients included."""
    center, bias = norm
    assert_op_backward_is_autograds(torch.ops.gptablate.hyper_step, HS.hyper_step_reference,
                                    _inputs(3, 10, 4, has_write, True) + _norm_inputs(10, bias),
                                    (1e-5, has_write, True, center, torch.float64))


def test_weight_gradient_keeps_the_streams_dtype_when_compiled_under_autocast():
    """The projection's weight gradient (a matmul over H' in the op's backward) in fp32 under a compiled autocast
    region: it had run in bf16 there, casting H' first (a stream-sized copy a site)."""
    def step(*a):
        H1, y, C1 = HS.hyper_step(*a, eps=1e-5, has_write=True, dynamic=True, center=True)
        return H1.sum() + (y * y).sum() + C1.sum()

    assert_compiled_autocast_keeps_gradients(step, _inputs(4, 64, 256, True, True, dtype=torch.float32))


def _model(sets, dtype=torch.float64):
    base = ["model.n_layer=2", "model.n_embd=32", "model.n_head=2", "model.block_size=16", "model.vocab_size=64",
            "arch.residual=hyper"]
    torch.manual_seed(0)
    return GPT(GPTConfig.from_recipe(load_recipe("gpt2_124m", base + sets))).to(dtype)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
@pytest.mark.parametrize("dynamic", ["true", "false"])
def test_fused_and_torch_paths_give_the_same_model(norm, dynamic):
    sets = [f"arch.norm={norm}", f"arch.hyper.dynamic={dynamic}"]
    fused, plain = kernel_key_paths(lambda more: _model(sets + more), "arch.hyper.kernel")

    def perturb(name, p, e):  # connection weights away from their initial values, so every term is exercised
        if name.startswith("residual."):
            p.add_(0.3 * e)

    a, b = losses_after_perturbing((fused, plain), perturb)
    assert torch.allclose(a, b, atol=1e-6)
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6, rtol=1e-5), name


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_bf16_streams_are_stored_in_bf16_and_follow_the_fp32_model(norm, monkeypatch):
    """arch.hyper.stream_dtype=bfloat16: the fused step's streams and the per-site code's in bf16, the loss and the
    gradients those of fp32 streams within bf16's rounding."""
    def perturb(name, p, e):
        if name.startswith("residual."):
            p.add_(0.3 * e)

    assert_bf16_streams_follow_fp32(lambda more: _model([f"arch.norm={norm}"] + more, torch.float32), "hyper",
                                    "hyper_step", perturb, monkeypatch)


@pytest.mark.skipif(not (torch.cuda.is_available() and HS.triton is not None), reason="needs CUDA and Triton")
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_bf16_streams_follow_the_fp32_model_on_gpu(norm, monkeypatch):
    """The same on a GPU, where the fused step takes the kernels: with bf16 streams the forward's one-pass statistics
    (LayerNorm) and the projection's weight gradient on the tensor cores (hyperstep.weight_grad)."""
    def perturb(name, p, e):
        if name.startswith("residual."):
            p.add_(0.3 * e)

    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    assert_bf16_streams_follow_fp32(lambda more: _model([f"arch.norm={norm}"] + more, torch.float32).cuda(), "hyper",
                                    "hyper_step", perturb, monkeypatch)


def test_bf16_streams_step_rounds_only_the_streams():
    """hyper_step on bf16 streams: H' and the streams' gradient in bf16, the rest in fp32, each exactly what fp32
    streams holding the same (bf16) values give, rounded: the arithmetic is the same. The projection's weight gradient
    is the one exception, to bf16's rounding: its pass reads the stored H'."""
    args32 = [t.detach().float().requires_grad_() for t in _inputs(4, 24, 6, True, True)]
    args16 = [t.detach().clone().requires_grad_() for t in args32]
    args16[0] = args32[0].detach().bfloat16().requires_grad_()
    with torch.no_grad():
        args32[0].copy_(args16[0].float())
    weights = [torch.randn(6, 4, 24).bfloat16().float(), torch.randn(6, 24), torch.randn(6, 4, 6)]  # dH' in bf16
    outs = []
    for args in (args32, args16):
        outs.append(HS.hyper_step(*args, eps=1e-5, has_write=True, dynamic=True, center=True))
        sum((o.float() * w).sum() for o, w in zip(outs[-1], weights)).backward()
    (H32, y32, C32), (H16, y16, C16) = outs
    assert (H16.dtype, y16.dtype, C16.dtype, args16[0].grad.dtype) == (torch.bfloat16, torch.float32, torch.float32,
                                                                       torch.bfloat16)
    assert torch.equal(H16, H32.bfloat16()) and torch.equal(y16, y32) and torch.equal(C16, C32)
    assert torch.equal(args16[0].grad, args32[0].grad.bfloat16())
    for k, (a, b) in enumerate(zip(args16[1:], args32[1:]), 1):
        if k == 3:  # wt
            assert (a.grad - b.grad).norm() <= 1e-2 * b.grad.norm()
        else:
            assert torch.equal(a.grad, b.grad), k


def test_bf16_streams_are_refused_for_the_static_form():
    with pytest.raises(UserError, match=r"arch.hyper.stream_dtype=bfloat16: takes float32 with arch.hyper.dynamic"):
        _model(["arch.hyper.dynamic=false", "arch.hyper.stream_dtype=bfloat16"])


def test_launch_warps_keep_the_tuned_warps_to_768_features_and_bound_the_parts_past_it():
    """hyper_step's kernels hold a row in parts of one 128-feature chunk a warp: TUNING's warps up to the width they
    were tuned at (768), past it doubled until the row is at most PARTS parts (the forward's 4, the backward's 2)."""
    assert [HS.launch_warps(2, D, parts=2) for D in (192, 768, 1024, 1600, 2048)] == [2, 2, 4, 8, 8]
    assert [HS.launch_warps(2, D, parts=4) for D in (768, 1024, 1600, 2048)] == [2, 2, 4, 4]
    assert HS.launch_warps(1, 768) == 1 and HS.launch_warps(1, 1024, parts=2) == 4
    assert HS.launch_warps(2, 24, 32) == 2 and HS.launch_warps(16, 10**6) == 32


def test_other_norms_take_the_torch_path():
    cpu = torch.zeros(1)
    assert not _model(["arch.norm=scalenorm", "arch.hyper.kernel=fused"]).residual.fused_for(cpu)
    # static: no norm
    assert _model(["arch.norm=scalenorm", "arch.hyper.dynamic=false", "arch.hyper.kernel=fused"]).residual.fused_for(cpu)


def test_fused_model_compiles_without_a_graph_break():
    model = _model(["arch.hyper.kernel=fused"]).float()
    graphs = compiled_graphs(model.hidden, torch.randint(0, 64, (2, 16)))
    assert len(graphs) == 1 and any("hyper_step" in str(node.target) for node in graphs[0].graph.nodes)


_CHECK = Path(__file__).with_name("hyperstep_kernel_check.py")


test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    [str(_CHECK), "interp"], [str(_CHECK)])


def _static_inputs(n, S, D, M, seed=0):
    g = torch.Generator().manual_seed(seed)
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()
    return [r(M, S, D), r(M, D), r(S, n), r(n), r(n)]


def _static_reference(H, out, mix, b, r, weight, bias, eps, center, h_dtype, store_h):
    """(H', x), or with a norm (H', N(x)): the static step and the next norm in plain torch, differentiable."""
    H1, x = HSt.static_step_reference(H, out, mix, b, r, store_h)
    if not weight.numel():
        return H1, x
    return H1, add_norm_reference(x, None, None, weight, bias, eps, False, center, h_dtype)[1]


def _static_op(*args):
    H1, x, h, _, _ = torch.ops.gptablate.hyper_static_step(*args)
    return (H1, h) if args[5].numel() else (H1, x)


# None, or (center, with a bias): LayerNorm with and without bias, RMSNorm
STATIC_NORMS = [None, (True, True), (True, False), (False, False)]


@pytest.mark.parametrize("store_h", [True, False])
@pytest.mark.parametrize("S", [4, 1])
@pytest.mark.parametrize("norm", STATIC_NORMS)
def test_static_step_hand_backward_matches_autograd(store_h, S, norm):
    """Forward and hand-written backward against autograd through plain torch (float64); with a norm folded in, the
    gradients of its gain and bias too."""
    g = torch.Generator().manual_seed(1)
    D = 10
    empty = torch.zeros(0, dtype=torch.float64)
    weight = (1 + 0.3 * torch.randn(D, generator=g, dtype=torch.float64)).requires_grad_() if norm else empty
    bias = (0.2 * torch.randn(D, generator=g, dtype=torch.float64)).requires_grad_() if norm and norm[1] else empty
    center = bool(norm and norm[0])
    assert_op_backward_is_autograds(_static_op, _static_reference, _static_inputs(4, S, D, 6) + [weight, bias],
                                    (1e-5, center, torch.float64, store_h))


def test_static_fused_model_reads_the_embedding_once_and_stores_no_last_streams():
    """The static walk: one hyper_static_step a site, the first with one stream (the entry's n copies never made),
    the last without H' (the exit's sum); no hyper_step."""
    model = _model(["arch.hyper.kernel=fused", "arch.hyper.dynamic=false"]).float()
    graph = compiled_graphs(model.hidden, torch.randint(0, 64, (2, 16)))[0].graph
    calls = [n for n in graph.nodes if "hyper_static_step" in str(n.target)]
    assert len(calls) == 4 and not any("hyper_step" in str(n.target) and "static" not in str(n.target)
                                       for n in graph.nodes)
    assert [c.args[-1] for c in calls] == [True, True, True, False]
    assert calls[0].args[0].meta["example_value"].shape[1] == 1
    assert calls[1].args[0].meta["example_value"].shape[1] == 4
    assert all(c.args[5].meta["example_value"].numel() == 0 for c in calls)  # no norm without fused_kernels


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_dynamic_walk_folds_every_sites_norm_into_its_steps(norm):
    """With fused_kernels, each hyper_step writes its site's normalised input: the only norm of the graph's own is
    ln_f (the streams' norms are inside the steps), and the steps' norm weights are the layers' ln_1 and ln_2 in
    turn."""
    model = _model(["arch.hyper.kernel=fused", f"arch.norm={norm}"]).float()
    model.fused_kernels = True
    graph = compiled_graphs(model.hidden, torch.randint(0, 64, (2, 16)))[0].graph
    calls = [n for n in graph.nodes if "hyper_step" in str(n.target) and "static" not in str(n.target)]
    assert len(calls) == 4 and [c.args[11] for c in calls] == [False, True, True, True]  # has_write
    sources = [c.args[8].args[0].name for c in calls]  # `param.to(dtype)`: the parameter's graph input
    want = ["h_modules_0_modules_ln_1_", "h_modules_0_modules_ln_2_", "h_modules_1_modules_ln_1_",
            "h_modules_1_modules_ln_2_"]
    assert all(w in s for w, s in zip(want, sources)), sources
    assert [c.args[13] for c in calls] == [norm == "layernorm"] * 4  # center
    ops = [n for n in graph.nodes if n.op == "call_function"]
    norms = [n for n in ops if "layer_norm" in str(n.target) or "rsqrt" in str(n.target)]
    assert len(norms) == 1, norms


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
def test_static_walk_folds_every_norm_but_the_first_into_its_steps(norm):
    """With fused_kernels, each step writes the next site's normalised input and the last one ln_f's output: one norm
    of its own in the graph (the first site's), the steps' norm weights the layers' ln_2, ln_1 and ln_f in turn."""
    model = _model(["arch.hyper.kernel=fused", "arch.hyper.dynamic=false", f"arch.norm={norm}"]).float()
    model.fused_kernels = True
    graph = compiled_graphs(model.hidden, torch.randint(0, 64, (2, 16)))[0].graph
    calls = [n for n in graph.nodes if "hyper_static_step" in str(n.target)]
    weights = [c.args[5].meta["example_value"] for c in calls]
    assert len(calls) == 4 and all(w.shape == (32,) for w in weights)
    assert [c.args[8] for c in calls] == [norm == "layernorm"] * 4  # center
    # each step's norm weight is `param.to(dtype)`: the parameter's graph input, named by dynamo after its path
    sources = [c.args[5].args[0].name for c in calls]
    want = ["h_modules_0_modules_ln_2_", "h_modules_1_modules_ln_1_", "h_modules_1_modules_ln_2_",
            "transformer_modules_ln_f_"]
    assert all(w in s for w, s in zip(want, sources)), sources
    ops = [n for n in graph.nodes if n.op == "call_function"]
    norms = [n for n in ops if "layer_norm" in str(n.target) or "rsqrt" in str(n.target)]
    assert len(norms) == 1, norms


def _hidden_after_perturbing(models, perturb):
    """As losses_after_perturbing, but the final norm's output and its gradient from fixed random weights over it,
    float64 throughout (the loss computes in fp32): the outputs, and each model's .grad set."""
    g = perturb_alike(models, perturb)
    idx = torch.randint(0, 64, (2, 16), generator=g)
    outs = [model.hidden(idx) for model in models]
    weights = torch.randn(outs[0].shape, generator=g, dtype=outs[0].dtype)
    for out in outs:
        (out * weights).sum().backward()
    return outs


@pytest.mark.parametrize("dynamic", ["false", "true"])
@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm"])
@pytest.mark.parametrize("block", ["pre", "sandwich", "parallel", "parallel_neox"])
def test_walk_with_the_norms_folded_is_the_per_site_model(norm, block, dynamic, monkeypatch):
    """The fold (fused_kernels on, the walk on its fused operation) against the per-site code with the same
    sublayers: the final norm's output and every gradient, the norms' gains and biases included (float64, the torch
    rules; RMSNorm's module, which computes in fp32 for bf16 inputs, here in float64). parallel_neox has two norms a
    site: no fold, same result."""
    monkeypatch.setattr(RMSNorm, "forward", lambda self, x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
                        * self.weight)
    sets = [f"arch.norm={norm}", f"arch.block={block}", f"arch.hyper.dynamic={dynamic}"]
    fused, plain = kernel_key_paths(lambda more: _model(sets + more), "arch.hyper.kernel")
    fused.fused_kernels = plain.fused_kernels = True

    def perturb(name, p, e):  # connection weights and norms away from their initial values
        if name.startswith("residual.") or ".ln_" in name:
            p.add_(0.3 * e)

    a, b = _hidden_after_perturbing((fused, plain), perturb)
    assert (a - b).abs().max() <= 1e-11 * b.abs().max()
    for (name, p), q in zip(fused.named_parameters(), plain.parameters()):
        assert (p.grad - q.grad).abs().max() <= 1e-11 * q.grad.abs().max(), name


@pytest.mark.skipif(not (torch.cuda.is_available() and HS.triton is not None), reason="needs CUDA and Triton")
@pytest.mark.parametrize("dynamic", ["false", "true"])
@pytest.mark.parametrize("fold", ["", "layernorm", "rmsnorm"])
def test_model_with_the_kernels_matches_the_per_site_code_on_gpu(fold, dynamic, monkeypatch):
    """The whole model in fp32 on a GPU, its walk on the kernels (forward and backward, 4 sites deep), against the
    per-site code in float64: the final hidden states to 1e-5 of their largest entry, and every gradient to 1e-4 of
    its largest entry or, where the per-site code in fp32 is itself further from float64 than a third of that, to 3
    times its distance. The dynamic sites' s_a and s_b are sums over every token, stream and column whose terms cancel
    (Σ|terms| / |Σ| 140-205 at this model's sites, measured in Triton's interpreter): rounding moves them by about
    1e-4 in either fp32 path (the kernels 1.4e-4 from the fp32 per-site code at one site in call EZ). With `fold`,
    fused_kernels on and the norms (of that kind) folded into the kernels. TF32 off (the engine turns it on for the
    whole process), so that the per-site code's coefficient matmuls are fp32 as the kernels' sums are."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(RMSNorm, "forward", lambda self, x: x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
                        * self.weight)  # in the input's dtype: float64 in the reference (the module's own is fp32)
    fused, a, b, errors, fp32_errors = kernels_against_per_site_on_gpu(fold, dynamic)
    cuda = torch.zeros(1, device="cuda")
    assert fused.residual.fused_for(cuda) and HS.use_stream_kernel(cuda)
    assert (a.double() - b).abs().max() <= 1e-5 * b.abs().max()
    for err, name in errors:
        assert err <= max(1e-4, 3 * fp32_errors[name]), (name, err, fp32_errors[name])


def kernels_against_per_site_on_gpu(fold: str, dynamic: str):
    """The test above's models on the GPU: the walk on the kernels (`arch.hyper.kernel=fused`, fp32) and on the
    per-site code in fp32 and in float64, after one perturbed step each, the final hidden states weighted by fixed
    random numbers as the loss (the model's own loss computes in fp32): (the kernels' model, its hidden states, the
    float64 model's, every parameter's gradient difference from the float64 model's relative to that one's largest
    entry with its name, sorted; the same for the fp32 per-site code, by name). TF32 as the caller sets it.
    scripts/device/perf_cy.sh prints the largest of these."""
    sets = [f"arch.hyper.dynamic={dynamic}", "model.n_embd=192", "model.n_head=3", "model.block_size=64"]
    sets += [f"arch.norm={fold}"] if fold else []
    models = [_model(sets + [f"arch.hyper.kernel={k}"]).to("cuda", dt)
              for k, dt in (("fused", torch.float32), ("torch", torch.float32), ("torch", torch.float64))]
    for model in models[1:]:
        model.load_state_dict(models[0].state_dict())
    for model in models:
        model.fused_kernels = bool(fold)

    def perturb(name, p, e):
        if name.startswith("residual.") or ".ln_" in name:
            p.add_(0.3 * e.to(p.device))

    g = perturb_alike(models, perturb)
    idx = torch.randint(0, 64, (2, 16), generator=g).cuda()
    outs = [model.hidden(idx) for model in models]
    weights = torch.randn(outs[2].shape, generator=g, dtype=torch.float64).cuda()
    for out in outs:
        (out.double() * weights).sum().backward()

    def differences(model):
        return [(((p.grad.double() - r.grad).abs().max() / (r.grad.abs().max() + 1e-12)).item(), name)
                for (name, p), r in zip(model.named_parameters(), models[2].parameters())]

    return models[0], outs[0], outs[2], sorted(differences(models[0])), {n: e for e, n in differences(models[1])}


_STATIC_CHECK = Path(__file__).with_name("hyperstatic_kernel_check.py")

test_static_kernels_match_reference_in_triton_interpreter, test_static_kernels_match_reference_on_gpu = kernel_tests(
    [str(_STATIC_CHECK), "interp"], [str(_STATIC_CHECK)])
