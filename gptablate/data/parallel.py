"""Order-keeping parallel map on threads, for tokenizing.

tiktoken releases the GIL while it encodes, so threads use every core without shipping text
and tokens between processes (on 2 cores: 13.6 MB/s against 9.0 MB/s for a process pool, with
tiktoken's own batch encoder at 17.7 MB/s). At most `workers * ahead` items are in flight, so
memory stays flat however large the corpus.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, ahead: int = 4) -> Iterator[R]:
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        window: deque = deque()
        source = iter(items)
        while True:
            while len(window) < max(1, workers) * ahead:
                item = next(source, _END)
                if item is _END:
                    break
                window.append(pool.submit(fn, item))
            if not window:
                return
            yield window.popleft().result()


_END = object()
