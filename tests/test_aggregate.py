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


def test_offset_tables_are_made_once_a_layout(monkeypatch):
    slab = torch.zeros(64, dtype=torch.bfloat16)
    rows = [slab[0:8], slab[16:24], slab[40:48]]
    memo = {}
    table, aligned = AG._table(slab, rows, memo=memo)
    assert table.tolist() == [0, 16, 40] and aligned
    again = AG._table(slab, [slab[0:8], slab[16:24], slab[40:48]], memo=memo)  # new views, the same offsets
    assert again[0] is table and len(memo) == 1
    # another layout: its own table; a gap of 4 elements (8 bytes) is not aligned
    other, aligned = AG._table(slab, [slab[0:8], slab[24:32]], memo=memo)
    assert other.tolist() == [0, 24] and aligned and len(memo) == 2
    assert AG._table(slab, [slab[0:8], slab[4:12]], memo=memo)[0].tolist() == [0, 4]
    assert not AG._table(slab, [slab[0:8], slab[4:12]], memo=memo)[1]
    # two lists (the many backward's sources and their gradients): one after the other, each from its own first
    both = AG._table(slab, rows, [slab[8:16], slab[32:40]], memo=memo)[0]
    assert both.tolist() == [0, 16, 40, 0, 24]
    assert AG._table(slab, rows, memo=None)[0] is not table  # no memo: made again
    monkeypatch.setattr(AG, "_TABLES_MAX", len(memo))
    AG._table(slab, [slab[0:8], slab[56:64]], memo=memo)  # full: emptied, then this one kept
    assert len(memo) == 1


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
                                  ["arch.attnres.blocks=3", "arch.block=parallel"],
                                  # full's folded norms: RMSNorm, LayerNorm without a bias, and other layouts
                                  ["arch.attnres.mode=full", "arch.norm=rmsnorm"],
                                  ["arch.attnres.mode=full", "model.bias=false"],
                                  ["arch.attnres.mode=full", "arch.block=sandwich"],
                                  ["arch.attnres.mode=full", "arch.block=parallel"],
                                  ["arch.attnres.mode=full", "arch.norm=dyt"]])  # not folded: its own norms
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
    assert len(graphs) == 1
    # full: each site an autograd function (_Pulled), its forward and backward traced as subgraphs
    ops = {str(node.target) for gm in graphs[0].modules() for node in gm.graph.nodes}
    assert ("gptablate.aggregate.default" in ops) == (mode == "block")
    # full: every site's norm folded into its aggregation (LayerNorm, Pre-LN)
    for op in ("aggregate_site", "aggregate_norm_back", "aggregate_pull"):
        assert (f"gptablate.{op}.default" in ops) == (mode == "full"), op
    assert "gptablate.aggregate_many.default" not in ops


def test_pulled_sites_give_autograds_gradients():
    # attnres full's walk as _Pulled runs it (each site's output gradient stacked, each source's gradient formed once
    # at its lowest site), against autograd through the torch reference, site by site: the outputs and every gradient
    S, M, D = AG.AGG_HOLD + 3, 5, 12  # sites of 1 to 11 sources
    results = []
    for pulled in (False, True):
        x = torch.randn(M, D, generator=torch.Generator().manual_seed(0), dtype=torch.float64).requires_grad_()
        U = (0.5 * torch.randn(S, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
             ).requires_grad_()
        sources, tokens, outs = [x.view(1, M, D)], (), []
        for k in range(S):
            if pulled:
                h, tokens = AG.aggregate_pulled(sources, U, k, tokens, 1e-5, torch.float64)
                assert len(tokens) == (2 if k < S - 1 else 0)
            else:
                h = AG.aggregate_reference([v.view(M, D) for v in sources], U[k], 1e-5).view(1, M, D)
            outs.append(h)
            sources.append(torch.tanh(h) * (1 + k % 3))  # a sublayer
        weights = torch.randn(S, M, D, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        sum((h * w).sum() for h, w in zip(outs, weights)).backward()  # every site's output reaches the loss
        results.append([h.detach() for h in outs] + [x.grad, U.grad])
        assert torch.equal(U.grad[0], torch.zeros(D, dtype=torch.float64))  # one source: a softmax's exact zero
    for a, b in zip(*results):  # the forward's log-denominator is fp32 (the many kernels'): p to about 1e-7
        assert (a - b).abs().max() <= 1e-6 * b.abs().max(), (a - b).abs().max()


def test_attnres_full_first_sites_parameters_get_exactly_zero():
    # site 0 reads one source (the embedding): its query and gain change nothing, and both paths give them exactly 0.
    # Pulled and compiled (inductor sums ḡ·h in its own order) they got rounding's ~1e-6, which AdamW would turn into
    # full-size steps; eagerly on the CPU the two sums cancel exactly either way
    model = _model(["arch.attnres.mode=full"]).float()
    for fused in (False, True):
        model.fused_kernels = fused
        model.zero_grad(set_to_none=True)
        torch._dynamo.reset()
        torch.compile(model.hidden)(torch.randint(0, 64, (2, 16))).square().sum().backward()
        first = model.residual.aggregators[0]
        assert not first.query.grad.any() and not first.norm.weight.grad.any()
        assert model.residual.aggregators[1].query.grad.abs().max() > 0
    torch._dynamo.reset()


def test_attnres_full_forms_each_sources_gradient_once():
    # in the compiled backward of a 5-layer full model under bf16 autocast: one pull a site, writing into stacks
    # allocated once (in place: the mutating form) and never copied, and no gradient of a source added to another
    # (each is whole when its lowest site forms it)
    model = _model(["arch.attnres.mode=full", "model.n_layer=5"]).float()  # 11 sites
    model.fused_kernels = True

    def hidden(idx):
        with torch.autocast("cpu", torch.bfloat16):
            return model.hidden(idx)

    graph = backward_graph(hidden, torch.randint(0, 64, (2, 16))).graph
    calls = [n for n in graph.nodes if "aggregate" in _op(n)]
    assert all("auto_functionalized" in str(n.target) for n in calls)
    # each site's norm backward writes its rows of the stacks, then its pull reads them
    assert [_op(n).split(".")[1] for n in calls] == ["aggregate_norm_back", "aggregate_pull"] * 11
    calls = [n for n in calls if "aggregate_pull" in _op(n)]
    stacked = [n for n in graph.nodes if isinstance(n.meta.get("val"), torch.Tensor)
               and tuple(n.meta["val"].shape)[:1] == (11,) and n.meta["val"].dim() > 1]
    stacks = [n for n in stacked if "empty" in str(n.target)]
    assert len(stacks) == 2 and stacks[0].meta["val"].dtype == torch.bfloat16  # the gradients' stack and the stats'
    # site 0's tokens once had the embedding's dtype (fp32), and autograd cast the whole stack to it there
    assert not [n for n in stacked if "copy" in str(n.target) or "convert" in str(n.target)]
    formed = set(calls)
    adds = []
    for n in (n for n in graph.nodes if n.op == "call_function"):
        if (n.target is operator.getitem or "view" in str(n.target)) and n.args[0] in formed:
            formed.add(n)
        elif "add" in str(n.target) and any(a in formed for a in n.args):
            adds.append(n)
    assert not adds, adds


def _op(node) -> str:
    """The custom operation a backward graph's node calls, directly or (one that mutates) through
    auto_functionalized; else its target's name."""
    return str(node.args[0] if "auto_functionalized" in str(node.target) else node.target)


_CHECK = Path(__file__).with_name("aggregate_kernel_check.py")

test_kernels_match_reference_in_triton_interpreter, test_kernels_match_reference_on_gpu = kernel_tests(
    [str(_CHECK), "interp"], [str(_CHECK)])
