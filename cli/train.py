"""`gptablate train RECIPE [--set k=v ...] [--gpus N] [--device cpu|cuda]`."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from gptablate.errors import UserError
from gptablate.recipe import load_recipe
from gptablate.train.launch import create_run_dir, launch_distributed, preflight

from .app import app


@app.command()
def train(
    recipe: str = typer.Argument(..., help="A recipe file, or the name of a built-in recipe (e.g. gpt2_124m, tiny)."),
    set_: List[str] = typer.Option([], "--set", "-s", help="Override a key: --set train.lr=3e-4 (repeatable, YAML-typed)."),
    gpus: int = typer.Option(1, "--gpus", help="Ranks on this node; >1 re-launches through torchrun with DDP."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda [default: cuda when available]."),
    nnodes: int = typer.Option(1, "--nnodes", help="Nodes in a multi-node job (torchrun)."),
    node_rank: int = typer.Option(0, "--node-rank", help="This node's rank in a multi-node job."),
    rdzv_endpoint: Optional[str] = typer.Option(None, "--rdzv-endpoint", help="HOST:PORT of the rendezvous, multi-node."),
) -> None:
    """Train one run of a recipe and record it in the results table."""
    import torch

    from gptablate.train.engine import resolve_device, train as train_run

    r = load_recipe(recipe, set_)
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
    world = gpus * nnodes
    preflight(r, world)
    print("# resolved recipe\n" + r.to_yaml(), flush=True)
    run_id, run_dir = create_run_dir(r)
    if world == 1:
        train_run(r, run_dir, run_id, dev)
    else:
        rc = launch_distributed(run_dir, run_id, gpus, dev, nnodes=nnodes, node_rank=node_rank,
                                rdzv_endpoint=rdzv_endpoint)
        if rc != 0:
            print(f"run {run_id}: torchrun exited with status {rc}", file=sys.stderr)
            raise typer.Exit(rc if rc in (2, 130) else 1)
    print(f"run {run_id} finished: {run_dir}")
