"""User plug-ins: Python files that register new norms, blocks or residual strategies.

A recipe opts in by naming files (`plugins: [my_norms.py]`, relative to the recipe);
nothing else in a recipe runs code. A plug-in registers with the decorators below:

    import torch
    from gptablate.plugins import register_norm

    @register_norm("centered_rms")
    class CenteredRMS(torch.nn.Module):
        '''RMSNorm after subtracting the mean (one line: gptablate ls shows it).'''
        def __init__(self, dim, bias=True, settings=None): ...
        def forward(self, x): ...

A training run copies each plug-in's source into its checkpoint, so `gptablate eval` can
rebuild the model later even if the file has changed or gone.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

from .errors import UserError
from .model.registry import BLOCKS, NORMS, RESIDUALS, Bound  # noqa: F401  (Bound: for plug-ins' Settings)

register_norm = NORMS.register
register_block = BLOCKS.register
register_residual = RESIDUALS.register

_loaded: dict[str, str] = {}  # path -> source that was executed


def _module_name(path: str, source: str) -> str:
    return "gptablate_plugin_" + hashlib.sha256((path + "\0" + source).encode()).hexdigest()[:12]


def load_plugin(path: Path, source: str | None = None) -> None:
    """Execute a plug-in file (or its saved source) once; its decorators register its names."""
    key = str(path)
    if source is None:
        if key in _loaded and not path.is_file():
            return  # restored from a checkpoint earlier in this process
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as e:
            raise UserError(f"plug-in {path}: cannot read it ({e.strerror})") from None
    if _loaded.get(key) == source:
        return
    name = _module_name(key, source)
    spec = importlib.util.spec_from_loader(name, loader=None, origin=key)
    module = importlib.util.module_from_spec(spec)
    module.__file__ = key
    sys.modules[name] = module
    try:
        exec(compile(source, key, "exec"), module.__dict__)
    except UserError:
        raise
    except Exception as e:
        del sys.modules[name]
        raise UserError(f"plug-in {path} failed to load: {e.__class__.__name__}: {e}") from None
    _loaded[key] = source


def is_loaded(path: Path) -> bool:
    return str(path) in _loaded


def plugin_sources(paths) -> dict[str, str]:
    """What a checkpoint keeps: path -> source as executed."""
    return {p: _loaded.get(p) or Path(p).read_text(encoding="utf-8") for p in paths}


def restore_plugins(sources: dict[str, str]) -> None:
    for path, source in sources.items():
        load_plugin(Path(path), source)
