"""Checkpoints: one file that is enough on its own to evaluate the model.

It embeds the resolved recipe, so `gptablate eval path/to/checkpoint.pt` needs nothing else.
Written atomically (temp file, fsync, rename); read with weights_only=True.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import UserError

FORMAT = "gptablate-checkpoint"
VERSION = 1


def save_checkpoint(path: Path, model: torch.nn.Module, recipe, step: int, run_id: str, extra: dict | None = None) -> None:
    path = Path(path)
    payload = {"format": FORMAT, "version": VERSION, "run_id": run_id, "step": step,
               "recipe": recipe.to_dict(), "model": model.state_dict(), **(extra or {})}
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:
        raise UserError(f"cannot write checkpoint {path} ({_write_failure(e)}); earlier checkpoints are intact") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _write_failure(e: Exception) -> str:
    if isinstance(e, OSError):
        return e.strerror or str(e)
    return "the write failed part-way: disk full or a file-size limit?"


def load_checkpoint(path: Path, map_location="cpu") -> dict:
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint") from None
    except Exception as e:
        raise UserError(f"{path}: not a readable gptablate checkpoint ({e.__class__.__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path}: not a gptablate checkpoint")
    if ckpt.get("version", 0) > VERSION:
        raise UserError(f"{path}: checkpoint version {ckpt['version']} is newer than this gptablate reads ({VERSION})")
    return ckpt


# --------------------------------------------------------------------------- resumable training state

STATE_DIR = "checkpoints"


def state_path(run_dir: Path, step: int) -> Path:
    return Path(run_dir) / STATE_DIR / f"step_{step:07d}.pt"


def save_train_state(run_dir: Path, step: int, payload: dict, keep: int) -> Path:
    """Write one resumable checkpoint atomically, then drop all but the newest `keep`.

    A failed write (disk full, a file-size limit) leaves every earlier checkpoint as it was.
    """
    path = state_path(run_dir, step)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format": FORMAT, "version": VERSION, "kind": "train_state", "step": step, **payload}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as e:  # torch's zip writer reports a short write as a RuntimeError
        raise UserError(f"cannot write checkpoint {path} ({_write_failure(e)}); the run stopped at step {step} and "
                        "its earlier checkpoints are intact: free space and `gptablate train --resume`") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    for old in sorted(path.parent.glob("step_*.pt"))[:-keep]:
        old.unlink()
    return path


def latest_train_state(run_dir: Path) -> Path | None:
    states = sorted((Path(run_dir) / STATE_DIR).glob("step_*.pt"))
    return states[-1] if states else None
