"""`gptablate sweep RECIPE... [--seeds N] [--gpus-per-run K] [--dry-run] [--slurm FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gptablate.paths import atomic_write_text

from .app import app, at_least_one


@app.command()
def sweep(
    recipes: List[str] = typer.Argument(..., help="Recipes (files or built-in names), e.g. gpt2_124m rmsnorm hyper."),
    seeds: Optional[int] = typer.Option(None, "--seeds", help="Seeds 1..N of every recipe."),
    set_: List[str] = typer.Option([], "--set", "-s", help="An override for every run (repeatable)."),
    gpus_per_run: int = typer.Option(1, "--gpus-per-run", help="GPUs per run; runs share the machine's GPUs side by side."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda [default: cuda when available]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would run, skip and resume; run nothing."),
    slurm: Optional[Path] = typer.Option(None, "--slurm", help="Write a Slurm job-array script for the runs instead."),
) -> None:
    """Queue runs (recipes × seeds): skip finished ones, resume interrupted ones, run the rest."""
    from gptablate.train.sweep import describe, execute, plan, slurm_script

    at_least_one(gpus_per_run=gpus_per_run, seeds=seeds)
    jobs = plan(recipes, seeds, list(set_), gpus_per_run)
    for j in jobs:
        print(f"{j.action:<6}  {describe(j)}" + (f"  ({j.why})" if j.why else ""))
    todo = [j for j in jobs if j.action != "skip"]
    if slurm is not None:
        atomic_write_text(slurm, slurm_script(jobs, gpus_per_run, device))
        print(f"wrote {slurm}: a job array of {len(todo)} run(s); submit it with `sbatch {slurm}`")
        return
    if dry_run or not todo:
        print(f"{len(todo)} to run, {len(jobs) - len(todo)} to skip" + (" (dry run)" if dry_run else ""))
        return
    results = execute(jobs, gpus_per_run, device)
    failed = {k: v for k, v in results.items() if v != 0}
    print(f"sweep: {len(results) - len(failed)} finished, {len(failed)} did not")
    if failed:
        raise typer.Exit(3 if all(v == 3 for v in failed.values()) else 1)
