"""What torch.compile makes of a model's forward and backward (tests that an operation compiles without a graph break)."""

import torch


def compiled_graphs(fn, *args) -> list:
    """The FX graphs that torch.compile(fn, fullgraph=True) hands its backend for fn(*args).sum() and its backward."""
    with counting_backend() as traced:
        torch.compile(fn, backend=traced.backend, fullgraph=True)(*args).sum().backward()
    return traced.graphs


class counting_backend:
    """`with counting_backend() as traced:` a dynamo backend that records each graph it is handed and runs it as
    traced (`traced.backend`), with dynamo's caches reset on entry and exit; `len(traced)` is the graphs so far."""

    def __enter__(self) -> "counting_backend":
        torch._dynamo.reset()
        self.graphs = []
        return self

    def __exit__(self, *exc) -> None:
        torch._dynamo.reset()

    def __len__(self) -> int:
        return len(self.graphs)

    def backend(self, gm, example_inputs):
        self.graphs.append(gm)
        return gm.forward


def backward_graph(fn, *args):
    """The FX graph of the backward AOTAutograd hands inductor for fn(*args).sum() (torch.compile, fullgraph, the
    backward not compiled further: it runs as traced)."""
    from torch._dynamo.backends.common import aot_autograd
    from torch._functorch.aot_autograd import make_boxed_func

    graphs = []

    def keep(gm, example_inputs):
        graphs.append(gm)
        return make_boxed_func(gm.forward)

    torch._dynamo.reset()
    try:
        backend = aot_autograd(fw_compiler=lambda gm, _: make_boxed_func(gm.forward), bw_compiler=keep)
        torch.compile(fn, backend=backend, fullgraph=True)(*args).sum().backward()
    finally:
        torch._dynamo.reset()
    assert len(graphs) == 1
    return graphs[0]
