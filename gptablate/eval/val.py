"""`gptablate eval`: load checkpoints, run the evaluation suite on them, record the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..model.gpt import GPT, GPTConfig
from ..paths import runs_root
from ..plugins import restore_plugins
from ..recipe import Recipe, recipe_from_dict
from ..results.store import ResultStore
from ..train.checkpoint import load_checkpoint
from ..train.engine import CHECKPOINT, resolve_device


@dataclass
class LoadedRun:
    run_id: str
    checkpoint: Path
    recipe: Recipe
    model: GPT


def resolve_checkpoint(ref: str) -> Path:
    """A checkpoint file, a run directory, or a run id (a unique prefix will do)."""
    p = Path(ref)
    if p.is_file():
        return p
    if p.is_dir():
        if (p / CHECKPOINT).is_file():
            return p / CHECKPOINT
        raise UserError(f"{p}: run directory has no {CHECKPOINT} (the run did not finish)")
    root = runs_root()
    exact = root / ref
    if (exact / CHECKPOINT).is_file():
        return exact / CHECKPOINT
    matches = sorted(d for d in root.glob(f"{ref}*") if d.is_dir()) if root.is_dir() else []
    if len(matches) == 1:
        if (matches[0] / CHECKPOINT).is_file():
            return matches[0] / CHECKPOINT
        raise UserError(f"run {matches[0].name} has no {CHECKPOINT} (the run did not finish)")
    if len(matches) > 1:
        raise UserError(f"'{ref}' matches {len(matches)} runs ({', '.join(m.name for m in matches[:4])}…): give more of the id")
    raise UserError(f"'{ref}' is neither a checkpoint file nor a run under {root} (see `gptablate compare --by run`)")


def load_run(ref: str, device: torch.device) -> LoadedRun:
    path = resolve_checkpoint(ref)
    ckpt = load_checkpoint(path)
    restore_plugins(ckpt.get("plugins") or {})  # the plug-in code the model was trained with
    recipe = recipe_from_dict(ckpt["recipe"])
    model = GPT(GPTConfig.from_recipe(recipe))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return LoadedRun(ckpt.get("run_id") or path.parent.name, path, recipe, model)


def evaluate_runs(refs: list[str], tasks: list[str], device_request: str | None = None,
                  batch_size: int | None = None, data_dir: Path | None = None, limit: int | None = None,
                  store: ResultStore | None = None) -> list[tuple[str, list]]:
    """Score each run on the tasks and record the numbers (rank 0). Returns (run id, metrics) per run."""
    from ..train.engine import init_distributed
    from .run import evaluate_model, record

    dinfo, device = init_distributed(resolve_device(device_request))
    out = []
    for ref in refs:
        run = load_run(ref, device)
        metrics = evaluate_model(run.model, run.recipe, tasks, device, dinfo, batch_size, data_dir, limit)
        if dinfo.is_main:
            store = store or ResultStore()
            if store.get_run(run.run_id) is None:
                # A checkpoint from elsewhere: record it so its numbers have a row to hang on.
                store.start_run(run.run_id, run.recipe, world_size=None, device=device.type,
                                run_dir=run.checkpoint.parent, git_commit=None)
                store.update_run(run.run_id, status="finished", pid=None, step=run.recipe.train.max_iters)
            record(store, run.run_id, metrics)
            out.append((run.run_id, metrics))
    return out
