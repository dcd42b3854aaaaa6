"""The Python garbage collector during training: what it costs, and keeping compiled graphs out of its scans.

torch.compile leaves hundreds of thousands of long-lived Python objects behind (graphs,
guards, generated code): 640K for GPT-2 at 12 layers, measured on the CPU. A full
collection walks all of them: 0.46 s on this project's 2-core CI machine. The collector
starts one on its own whenever enough new objects have survived, at a moment nobody
chooses; under DDP the rank that collects holds every other rank at the next all-reduce.
`settle()` collects once and freezes what is alive (`gc.freeze`: those objects are never
scanned again, and are still freed when their reference counts drop), so later collections
only look at what the loop itself makes. Cycles among the frozen objects wait until
`unfreeze` at the end of the run.
"""

from __future__ import annotations

import gc
import time


class CollectorClock:
    """Counts the seconds spent in garbage collections while it is open; `settle` freezes the heap."""

    def __init__(self) -> None:
        self.seconds = 0.0  # since the last take()
        self.collections = 0
        self._began: float | None = None

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        elif self._began is not None:
            self.seconds += time.perf_counter() - self._began
            self.collections += 1
            self._began = None

    def __enter__(self) -> "CollectorClock":
        gc.callbacks.append(self._on_gc)
        return self

    def __exit__(self, *exc) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)
        gc.unfreeze()  # what this run froze (its graphs) becomes collectable again

    def settle(self) -> None:
        """Collect now and freeze the survivors (after compilation: they live as long as the run)."""
        gc.collect()
        gc.freeze()

    def take(self) -> float:
        """Seconds spent collecting since the last take (the settle's own collection included)."""
        seconds, self.seconds = self.seconds, 0.0
        return seconds
