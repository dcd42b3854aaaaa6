"""`gptablate train RECIPE [--set k=v ...] [--gpus N] [--device cpu|cuda] [--seeds N] [--resume RUN]`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
import yaml

from gptablate.console import info
from gptablate.errors import UserError
from gptablate.recipe import load_recipe, recipe_from_dict

from .app import app, at_least_one

EXIT_DIVERGED = 3


@app.command()
def train(
    recipe: Optional[str] = typer.Argument(None, help="A recipe file, or the name of a built-in recipe (e.g. gpt2_124m, tiny)."),
    set_: List[str] = typer.Option([], "--set", "-s", help="Override a key: --set train.lr=3e-4 (repeatable, YAML-typed)."),
    gpus: int = typer.Option(1, "--gpus", help="Ranks on this node; >1 re-launches through torchrun with DDP."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda [default: cuda when available]."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Train seeds 1..N of the recipe, one run each."),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a stopped run (its id or folder) from its newest checkpoint."),
    nnodes: int = typer.Option(1, "--nnodes", help="Nodes: start the same command on each (torchrun, c10d)."),
    rdzv_endpoint: Optional[str] = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of the rendezvous, multi-node."),
) -> None:
    """Train a recipe and record the run in the results table. Exit 3 if the divergence guard stopped it."""
    import torch  # here, not at the top: the other commands and --help start without torch

    from gptablate.train.engine import resolve_device
    from gptablate.train.launch import (RECIPE_FILE, create_run_dir, discard_unrecorded, preflight, resolve_run_dir,
                                        resume_preflight)

    dev = resolve_device(device)
    if dev not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: use cpu or cuda")
    if gpus < 1 or nnodes < 1:
        raise UserError("--gpus and --nnodes must be at least 1")
    if dev == "cuda":
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA GPU is visible here; use --device cpu")
        if gpus > torch.cuda.device_count():
            raise UserError(f"--gpus {gpus}: only {torch.cuda.device_count()} GPU(s) visible")
    multi = dict(nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)
    if resume is not None:
        if recipe or set_ or seeds:
            raise UserError("--resume continues a run with its own saved recipe: give no RECIPE, --set or --seeds")
        run_dir = resolve_run_dir(resume)
        r = recipe_from_dict(yaml.safe_load((run_dir / RECIPE_FILE).read_text()))
        preflight(r, gpus * nnodes)
        resume_preflight(run_dir, r, gpus * nnodes)
        _run(r, run_dir.name, run_dir, dev, gpus, multi, resume=True)
        return
    if recipe is None:
        raise UserError("give a RECIPE (a file or a built-in name: see `gptablate ls`), or --resume RUN")
    if seeds is not None:
        at_least_one(seeds=seeds)
        if any(s.split("=", 1)[0].strip() == "train.seed" for s in set_):
            raise UserError("--seeds N trains seeds 1..N: leave out --set train.seed")
    from gptablate.results.store import ResultStore
    from gptablate.train.sweep import same_seed

    earlier = ResultStore().runs()
    worst = 0
    for seed in range(1, (seeds or 1) + 1):
        r = load_recipe(recipe, list(set_) + ([f"train.seed={seed}"] if seeds else []))
        preflight(r, gpus * nnodes)
        if seed == 1:
            print("# resolved recipe\n" + r.to_yaml(), flush=True)
        done = [x["run_id"] for x in same_seed(earlier, r) if x["status"] == "finished"]
        if done:
            info(f"seed {r.train.seed} of {r.arm_label()} already finished as {', '.join(done)}: this run repeats it "
                 "(compare takes a seed's runs as one, their mean; `gptablate sweep` skips finished seeds)")
        run_id, run_dir = create_run_dir(r)
        try:
            _run(r, run_id, run_dir, dev, gpus, multi)
        except typer.Exit as e:
            if e.exit_code != EXIT_DIVERGED or seeds is None:
                raise
            worst = EXIT_DIVERGED  # one diverged seed does not stop the others
        finally:
            discard_unrecorded(run_dir, run_id)
    if worst:
        raise typer.Exit(worst)


def _run(r, run_id: str, run_dir: Path, dev: str, gpus: int, multi: dict, resume: bool = False) -> None:
    from gptablate.results.store import ResultStore
    from gptablate.train.engine import Diverged, train as train_run
    from gptablate.train.launch import joined_run, launch_distributed

    if gpus * multi["nnodes"] == 1:
        try:
            train_run(r, run_dir, run_id, dev, resume=resume)
        except Diverged as e:
            print(f"run {run_id} {e}", file=sys.stderr)
            raise typer.Exit(EXIT_DIVERGED)
    else:
        try:
            rc = launch_distributed(run_dir, run_id, gpus, dev, resume=resume, **multi)
        finally:  # several nodes: the run is rank 0's, whichever node holds it
            run_id, run_dir = joined_run(run_dir, run_id)
        if rc != 0:
            row = ResultStore().get_run(run_id)
            if row and row["status"] == "diverged":
                print(f"run {run_id} {row['note']}", file=sys.stderr)
                raise typer.Exit(EXIT_DIVERGED)
            print(f"run {run_id}: torchrun exited with status {rc}", file=sys.stderr)
            raise typer.Exit(rc if rc in (2, 130) else 1)
    print(f"run {run_id} finished: {run_dir or 'its folder is on the node of rank 0'}")
