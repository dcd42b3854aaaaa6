"""`gptablate eval`: load checkpoints, run the evaluation suite on them, record the numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..console import info
from ..errors import UserError
from ..model.gpt import GPT, GPTConfig
from ..plugins import restore_plugins
from ..recipe import Recipe, recipe_from_dict
from ..results.store import ResultStore
from ..train.checkpoint import load_checkpoint
from ..train.engine import CHECKPOINT, resolve_device
from ..train.launch import resolve_run_dir


class PartlyScored(UserError):
    """Some of the runs could not be loaded; `results` holds the others' (run id, metrics), recorded already."""

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results


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
    run_dir = resolve_run_dir(ref, what="a checkpoint file")
    if not (run_dir / CHECKPOINT).is_file():
        raise UserError(f"run {run_dir.name} has no {CHECKPOINT} (the run did not finish)")
    return run_dir / CHECKPOINT


def load_run(ref: str, device: torch.device) -> LoadedRun:
    path = resolve_checkpoint(ref)
    ckpt = load_checkpoint(path)
    restore_plugins(ckpt.get("plugins") or {})  # the plug-in code the model was trained with
    recipe = recipe_from_dict(ckpt["recipe"])
    model = GPT(GPTConfig.from_recipe(recipe))
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return LoadedRun(ckpt.get("run_id") or path.parent.name, path, recipe, model)


def unscored(store: ResultStore, tasks: list[str], tag: str | None = None,
             partial_counts: bool = True) -> tuple[dict[str, list[str]], list[str]]:
    """The finished runs (those carrying tag, if given) without a recorded figure for some of tasks: {run id: the
    tasks it lacks} for those whose checkpoint is there to score, and the ids of those whose is not (a run trained
    elsewhere, or its folder removed). A figure over part of a task (--limit) counts as recorded only with
    partial_counts (a quick look after a quick look has nothing to add; a full evaluation does)."""
    have: dict[str, set] = {}
    partial: dict[str, set] = {}
    for e in store.evals():
        have.setdefault(e["run_id"], set()).add(e["task"])
        if e["complete"] == 0:
            partial.setdefault(e["run_id"], set()).add(e["task"])
    if not partial_counts:
        have = {rid: got - partial.get(rid, set()) for rid, got in have.items()}
    todo, lost = {}, []
    for run in store.runs(tag):
        if run["status"] != "finished":
            continue
        done = have.get(run["run_id"], set()) | ({"val"} if run["val_loss"] is not None else set())
        lacking = [t for t in tasks if t not in done]
        if not lacking:
            continue
        if run["run_dir"] and (Path(run["run_dir"]) / CHECKPOINT).is_file():
            todo[run["run_id"]] = lacking
        else:
            lost.append(run["run_id"])
    return todo, lost


def evaluate_runs(refs: list[str], tasks: list[str] | dict[str, list[str]], device_request: str | None = None,
                  batch_size: int | None = None, data_dir: Path | None = None, limit: int | None = None,
                  store: ResultStore | None = None) -> list[tuple[str, list]]:
    """Score each run on the tasks (the same for every run, or each ref's own) and record the numbers (rank 0).
    Returns (run id, metrics) per run. Of several runs, one that cannot be loaded is named and passed over, and the
    error at the end counts those; an error in the tasks (their data) stops at once, as it would for every run."""
    from ..train.engine import init_distributed
    from .run import evaluate_model, record

    dinfo, device = init_distributed(resolve_device(device_request))
    out, failed = [], []
    for ref in refs:
        try:
            run = load_run(ref, device)
        except UserError as e:
            if len(refs) == 1:
                raise
            if dinfo.is_main:
                info(f"error: {e}; passed over")
            failed.append(ref)
            continue
        metrics = evaluate_model(run.model, run.recipe, tasks[ref] if isinstance(tasks, dict) else tasks, device,
                                 dinfo, batch_size, data_dir, limit)
        if dinfo.is_main:
            store = store or ResultStore()
            if store.get_run(run.run_id) is None:
                # A checkpoint from elsewhere: record it so its numbers have a row to hang on.
                store.start_run(run.run_id, run.recipe, world_size=None, device=device.type,
                                run_dir=run.checkpoint.parent, git_commit=None)
                store.update_run(run.run_id, status="finished", pid=None, step=run.recipe.train.max_iters)
            for line in record(store, run.run_id, metrics):
                info(line)
            out.append((run.run_id, metrics))
    if failed:
        raise PartlyScored(f"{len(failed)} of {len(refs)} runs not scored, each named above: {', '.join(failed)}",
                           out)
    return out
