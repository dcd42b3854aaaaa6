"""Where data and runs live: $GPTABLATE_DATA and $GPTABLATE_RUNS, defaults under the cwd."""

from __future__ import annotations

import os
from pathlib import Path


def data_root() -> Path:
    return Path(os.environ.get("GPTABLATE_DATA") or "data").resolve()


RECIPE_FILE = "recipe.yaml"  # a run folder's resolved recipe, the first file `train` writes there


def runs_root() -> Path:
    return Path(os.environ.get("GPTABLATE_RUNS") or "runs").resolve()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write a file so that readers see the old content or the new, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
