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
