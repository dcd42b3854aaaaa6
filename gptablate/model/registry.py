"""Name -> class registries for the pluggable parts: `arch.norm`, `arch.block`, `arch.residual`.

A recipe names parts by string; the model resolves the string here when it is built, so
recipes stay plain data. An unknown name fails with the list of known ones.

A registered class may carry a `Settings` dataclass: the recipe section named after the
variant (`arch.hyper: {n: 4}`) is validated against it and its defaults fill the rest.
The dataclass may name its settings' ranges in `BOUNDS`, a class attribute (not a field):
`BOUNDS = {"iters": Bound(low=1)}`; a recipe outside them is refused when it loads.
Its docstring's first line is the one-line description `gptablate ls` shows.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Optional

from ..errors import UserError


class Bound(NamedTuple):
    """A number setting's range: at least `low`, at most `high`, above `above` (None: no such limit); null passes."""

    low: Optional[float] = None
    high: Optional[float] = None
    above: Optional[float] = None

    def holds(self, value) -> bool:
        return value is None or not ((self.low is not None and value < self.low)
                                     or (self.high is not None and value > self.high)
                                     or (self.above is not None and value <= self.above))

    def describe(self) -> str:
        parts = ([f"at least {self.low:g}"] if self.low is not None else []) + (
            [f"above {self.above:g}"] if self.above is not None else []) + (
            [f"at most {self.high:g}"] if self.high is not None else [])
        return " and ".join(parts)


def out_of_bounds(settings) -> Optional[tuple[str, str]]:
    """(field, 'must be ...') for the first setting outside its Settings' BOUNDS, else None."""
    for name, bound in getattr(settings, "BOUNDS", {}).items():
        value = getattr(settings, name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not bound.holds(value):
            return name, f"must be {bound.describe()}, got {value:g}"
    return None


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: `@NORMS.register("rmsnorm")`."""

        def deco(cls: type) -> type:
            for other in REGISTRIES:
                owner = other._entries.get(name)
                if owner is not None and owner is not cls and not (other is self and _reloaded(owner, cls)):
                    raise ValueError(f"arch name '{name}' is already registered as a {other.kind} "
                                     f"by {owner.__module__}.{owner.__qualname__}")
            cls.registered_name = name
            self._entries[name] = cls
            return cls

        return deco

    def get(self, name: str) -> type:
        _load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            raise UserError(f"unknown arch.{self.kind} '{name}'; known: {', '.join(self.names())}") from None

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._entries)

    def describe(self, name: str) -> str:
        doc = (self._entries[name].__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


def _reloaded(owner: type, cls: type) -> bool:
    """The same plug-in class from a re-run of its file (or of a checkpoint's copy of it)."""
    return (owner.__qualname__ == cls.__qualname__ and owner.__module__.startswith("gptablate_plugin_")
            and cls.__module__.startswith("gptablate_plugin_"))


NORMS = Registry("norm")
BLOCKS = Registry("block")
RESIDUALS = Registry("residual")
REGISTRIES = (NORMS, BLOCKS, RESIDUALS)

_builtins_loaded = False


def _load_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        from . import blocks, norms, residuals  # noqa: F401  (their decorators register them)


def all_settings() -> dict[str, type]:
    """Variant name -> its Settings dataclass, for every registered variant that has one."""
    _load_builtins()
    return {name: cls.Settings for reg in REGISTRIES for name, cls in reg._entries.items()
            if getattr(cls, "Settings", None) is not None}


def settings_of(cls: type, arch) -> object | None:
    """The Settings instance for a registered class, from the recipe's arch section."""
    if getattr(cls, "Settings", None) is None:
        return None
    return cls.Settings(**arch.settings.get(cls.registered_name, {}))
