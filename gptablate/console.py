"""Progress and log lines: a rich bar on a terminal, plain periodic lines elsewhere (CI, files)."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)

console = Console(stderr=True, highlight=False)


def interactive() -> bool:
    return sys.stderr.isatty()


def info(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Bar:
    """`with Bar("tokenizing", total=n, unit="bytes") as bar: bar.advance(k, note="...")`."""

    def __init__(self, description: str, total: float, unit: str = "items", plain_every_s: float = 10.0):
        self.description, self.total, self.unit = description, total, unit
        self.done = 0.0
        self.note = ""
        self._plain_every = plain_every_s
        self._last_plain = 0.0
        self._start = time.time()
        self._rich = None

    def __enter__(self):
        if interactive():
            cols = [TextColumn("[bold]{task.description}"), BarColumn(),
                    DownloadColumn() if self.unit == "bytes" else MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[note]}")]
            self._rich = Progress(*cols, console=console, transient=False)
            self._rich.start()
            self._task = self._rich.add_task(self.description, total=self.total, note="")
        return self

    def advance(self, n: float = 1, note: str | None = None) -> None:
        self.done += n
        if note is not None:
            self.note = note
        if self._rich is not None:
            self._rich.update(self._task, advance=n, note=self.note)
        else:
            now = time.time()
            if now - self._last_plain >= self._plain_every:
                self._last_plain = now
                self._plain_line()

    def _plain_line(self) -> None:
        pct = 100.0 * self.done / self.total if self.total else 100.0
        extra = f" {self.note}" if self.note else ""
        info(f"{self.description}: {pct:5.1f}% ({amount(self.done, self.unit)} of {amount(self.total, self.unit)}, "
             f"{time.time() - self._start:.0f}s){extra}")

    def __exit__(self, *exc):
        if self._rich is not None:
            self._rich.stop()
        elif exc[0] is None:
            self._plain_line()
        return False


def amount(x: float, unit: str) -> str:
    """`amount(2.5e6, "bytes")` is "2.5 MB"; other units are counted: "1,200 tokens"."""
    if unit == "bytes":
        for u in ("B", "KB", "MB", "GB", "TB"):
            if abs(x) < 1000 or u == "TB":
                return f"{x:.1f} {u}" if u != "B" else f"{int(x)} B"
            x /= 1000
    return f"{int(x):,} {unit}"
