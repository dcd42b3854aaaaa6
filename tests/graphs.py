"""What torch.compile makes of a model's forward and backward (tests that an operation compiles without a graph break)."""

import torch


def compiled_graphs(fn, *args) -> list:
    """The FX graphs that torch.compile(fn, fullgraph=True) hands its backend for fn(*args).sum() and its backward."""
    torch._dynamo.reset()
    graphs = []

    def backend(gm, example_inputs):
        graphs.append(gm)
        return gm.forward

    try:
        torch.compile(fn, backend=backend, fullgraph=True)(*args).sum().backward()
    finally:
        torch._dynamo.reset()
    return graphs
