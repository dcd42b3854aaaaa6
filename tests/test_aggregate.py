"""attnres's aggregation as one operation (model/aggregate.py): its backward, the two paths, the kernels."""

import operator
from pathlib import Path

import pytest
import torch
from fused import assert_fused_is_plain
from graphs import backward_graph, compiled_graphs
from interpreter import kernel_tests

from gptablate.model import aggregate as AG
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.model.kernels import by_width
from gptablate.model.residuals import _Aggregator
from gptablate.recipe import load_recipe


def _sources(K, M=5, D=12, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(M, D, generator=g, dtype=dtype) * (1 + k)).requires_grad_() for k in range(K)]


@pytest.mark.parametrize("K", [1, 2, 5])
def test_hand_backward_matches_autograd_through_the_reference(K):
    sources = _sources(K)
    u = (0.5 * torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).requires_grad_()
    dout = torch.randn(5, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    want_out = AG.aggregate_reference(sources, u, 1e-5)
    got_out = torch.ops.gptablate.aggregate(sources, u, 1e-5)  # the op: its torch rule here, the hand backward
    assert torch.allclose(got_out, want_out, atol=1e-12)
    want = torch.autograd.grad(want_out, [*sources, u], dout)
    got = torch.autograd.grad(got_out, [*sources, u], dout)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-10), (a - b).abs().max()


@pytest.mark.parametrize("K", [9, 12])
def test_many_rule_matches_autograd_through_the_reference(K):
    # past AGG_HOLD sources: p_k from the forward's log-denominator, Σ_j p_j dp_j from its output
    sources = _sources(K)
    assert AG._many(sources)
    u = (0.5 * torch.randn(12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)).requires_grad_()
    dout = torch.randn(5, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    want_out = AG.aggregate_reference(sources, u, 1e-5)
    got_out, lse = torch.ops.gptablate.aggregate_many(sources, u, 1e-5)
    assert torch.allclose(got_out, want_out, atol=1e-12) and not lse.requires_grad
    V, r, s, _ = AG._stats(sources, u, 1e-5)
    assert torch.allclose(lse.double(), torch.logsumexp(r * s, 0), atol=1e-6)
    want = torch.autograd.grad(want_out, [*sources, u], dout)
    got = torch.autograd.grad(got_out, [*sources, u], dout)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-5), (a - b).abs().max()  # lse is fp32


def test_sites_past_the_held_count_take_the_many_operation(monkeypatch):
    agg = _aggregator()
    agg.fused = True
    taken = []
    for name in ("_aggregate_op", "_aggregate_many_op"):
        op = getattr(AG, name)
        monkeypatch.setattr(AG, name, lambda *args, op=op, name=name: taken.append(name) or op(*args))
    for K in (AG.AGG_HOLD, AG.AGG_HOLD + 1):
        out = agg([s.view(1, 5, 12) for s in _sources(K)])
        assert out.shape == (1, 5, 12)
    assert taken == ["_aggregate_op", "_aggregate_many_op"]
    # the first source may have a dtype of its own (the embedding's fp32); a mix among the rest stays on the held one
    mixed = _sources(AG.AGG_HOLD + 1)
    mixed[2] = mixed[2].float()
    assert not AG._many(mixed) and AG._many([mixed[2]] + mixed[:2] + mixed[3:])


def test_wide_rows_take_the_wide_backward_tuning():
    # 1.5B's 1,600 features have their own backward tuning (call DV swept them); 124M's and 345M's 768 and 1,024 share
    # the 768 one
    backward = [by_width(AG.AGG_MANY, D)[1] for D in (768, 1024, 1600)]
    assert backward[0] == backward[1] == AG.AGG_MANY[768][1]
    assert backward[2] == AG.AGG_MANY[1600][1] != backward[0]


def _aggregator(D=12):
    torch.manual_seed(3)
    agg = _Aggregator(D, 1.0).double()
    with torch.no_grad():  # off the init (query 0: uniform weights, no gradient through the scores)
        agg.query.normal_(0, 0.5)
        agg.norm.weight.add_(0.2 * torch.randn(D, dtype=torch.float64))
    return agg


def test_fused_aggregator_is_the_modules_torch_code():
    agg = _aggregator()
    results = []
    for fused in (False, True):
        agg.fused = fused
        agg.zero_grad(set_to_none=True)
        leaves = _sources(4)
        out = agg([s.view(1, 5, 12) for s in leaves])
        (out * torch.linspace(-1, 1, 12, dtype=torch.float64)).square().sum().backward()
        results.append([out.detach(), agg.query.grad, agg.norm.weight.grad] + [s.grad for s in leaves])
    for a, b in zip(*results):  # the module's RMSNorm computes in fp32, even for float64 sources
        assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()


def test_mixed_dtypes_keep_each_sources_dtype():
    # as in training: the embedding in fp32, the sublayers' outputs in bf16; the output is fp32
    agg = _aggregator().float()
    agg.fused = True
    leaves = [s.detach().to(dt).requires_grad_() for s, dt in zip(_sources(3), (torch.float32, torch.bfloat16,
                                                                               torch.bfloat16))]
    out = agg([s.view(1, 5, 12) for s in leaves])
    out.sum().backward()
    assert out.dtype == torch.float32
    assert [s.grad.dtype for s in leaves] == [torch.float32, torch.bfloat16, torch.bfloat16]
    agg.fused = False
    want = agg([s.view(1, 5, 12) for s in leaves])
    # the torch path rounds RMSNorm(v) of a bf16 source to bf16 before the scores
    assert torch.allclose(out, want, atol=2e-2)


def _model(sets):
    base = ["model.n_layer=3", "model.n_embd=32", "model.n_head=2", "model.block_size=16", "model.vocab_size=64",
            "model.dropout=0.0", "arch.residual=attnres"]
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_recipe(load_recipe("gpt2_124m", base + sets))).double()
    with torch.no_grad():
        for agg in model.residual.aggregators:
            agg.query.normal_(0, 0.5)
    return model


@pytest.mark.parametrize("sets", [["arch.attnres.mode=block"], ["arch.attnres.mode=full"],
                                  ["arch.attnres.mode=full", "model.n_layer=5"],  # up to 11 sources: both operations
                                  ["arch.attnres.blocks=3", "arch.block=parallel"]])
def test_fused_and_torch_paths_give_the_same_model(sets):
    model = _model(sets)
    assert all(hasattr(a, "fused") for a in model.residual.aggregators)  # so that fused_kernels sets them
    # fp32 arithmetic in the RMSNorms of the torch path
    assert_fused_is_plain(model, dict(rtol=1e-6), dict(rtol=1e-5, atol=1e-6))


@pytest.mark.parametrize("mode", ["block", "full"])
def test_fused_model_compiles_without_a_graph_break(mode):
    model = _model([f"arch.attnres.mode={mode}", "model.n_layer=5"]).float()  # full: up to 11 sources
    model.fused_kernels = True
    graphs = compiled_graphs(model.hidden, torch.randint(0, 64, (2, 16)))
    ops = {str(node.target) for node in graphs[0].graph.nodes}
    assert len(graphs) == 1 and "gptablate.aggregate.default" in ops
    assert ("gptablate.aggregate_many.default" in ops) == (mode == "full")


def test_carried_sites_give_the_same_gradients():
    # a chain of many sites as attnres full walks them, each reading the last one's carriers: the same output and
    # gradients as each reading the sources themselves, the gradients summed by autograd
    agg = _aggregator()
    agg.fused = True
    results = []
    for carry in (False, True):
        agg.zero_grad(set_to_none=True)
        leaves = _sources(AG.AGG_HOLD + 1)
        sources, outs = [s.view(1, 5, 12) for s in leaves], []
        for _ in range(3):
            h, passed = agg.carry(sources) if carry else (agg(sources), sources)
            assert (passed is not sources) == carry
            assert all(p.data_ptr() == s.data_ptr() for p, s in zip(passed, sources))  # the same tensors
            outs.append(h)
            sources = passed + [torch.tanh(h)]
        out = agg(sources)
        (out * torch.linspace(-1, 1, 12, dtype=torch.float64)).square().sum().backward()
        results.append([out.detach(), *[h.detach() for h in outs], agg.query.grad, agg.norm.weight.grad]
                       + [s.grad for s in leaves])
    for a, b in zip(*results):
        assert torch.allclose(a, b, atol=1e-12), (a - b).abs().max()


def _op(node) -> str:
    """The custom operation a backward graph's node calls, directly or (one that mutates) through
    auto_functionalized; else its target's name."""
    return str(node.args[0] if "auto_functionalized" in str(node.target) else node.target)


def _contribution_adds(model) -> tuple[list, list]:
    """In model.hidden's compiled backward: the calls of aggregate.py's backward operations, and the additions that take
    a gradient a many site's backward returned (through views)."""
    graph = backward_graph(model.hidden, torch.randint(0, 64, (2, 16))).graph
    backward = [n for n in graph.nodes if "aggregate" in _op(n) and "backward" in _op(n)]
    returned = {n for n in backward if "aggregate_many_backward" in _op(n)}
    adds = []
    for n in (n for n in graph.nodes if n.op == "call_function"):
        if (n.target is operator.getitem or "view" in str(n.target)) and n.args[0] in returned:
            returned.add(n)
        elif "add" in str(n.target) and any(a in returned for a in n.args):
            adds.append(n)
    return backward, adds


def test_attnres_full_sums_no_gradients_of_many_sites(monkeypatch):
    # each many site adds its gradient for a source to the running one the site above passed it, in its kernel: in the
    # compiled backward, the only additions of what many sites return are the first many site's (its sources'
    # gradients from the held sites below it), however many many sites there are. Without the carriers autograd adds
    # every site's gradient for every source, and inductor kept them all until the source's own backward.
    model = _model(["arch.attnres.mode=full", "model.n_layer=5"]).float()  # sites of up to 11 sources: 3 many sites
    model.fused_kernels = True
    backward, adds = _contribution_adds(model)
    assert sum("aggregate_many_backward" in _op(n) for n in backward) == 3 and 0 < len(adds) <= AG.AGG_HOLD
    # many sites write their gradients into tensors of their own, returning nothing: inductor keeps an operation's
    # list of outputs, and so each tensor in it, until the last (u's gradient) is taken from it
    assert len(backward) == 11 and all(("auto_functionalized" in str(n.target)) == ("many" in _op(n))
                                       for n in backward)
    monkeypatch.setattr(_Aggregator, "carry", lambda self, sources: (self(sources), sources))
    assert len(_contribution_adds(model)[1]) > AG.AGG_HOLD  # the same model without them: 19


_CHECK = Path(__file__).with_name("aggregate_kernel_check.py")

test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    [str(_CHECK), "interp"], [str(_CHECK)])
