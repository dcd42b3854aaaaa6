"""Name -> class registries for the pluggable parts: `arch.norm`, `arch.block`, `arch.residual`.

A recipe names parts by string; the model resolves the string here when it is built, so
recipes stay plain data. An unknown name fails with the list of known ones.
"""

from __future__ import annotations

from typing import Callable

from ..errors import UserError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: `@NORMS.register("rmsnorm")`. The docstring's first line describes it."""

        def deco(cls: type) -> type:
            if name in self._entries and self._entries[name] is not cls:
                raise ValueError(f"{self.kind} '{name}' is already registered by {self._entries[name].__qualname__}")
            self._entries[name] = cls
            return cls

        return deco

    def get(self, name: str) -> type:
        try:
            return self._entries[name]
        except KeyError:
            raise UserError(f"unknown arch.{self.kind} '{name}'; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        doc = (self._entries[name].__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


NORMS = Registry("norm")
BLOCKS = Registry("block")
RESIDUALS = Registry("residual")
