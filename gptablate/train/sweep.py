"""Sweeps: many runs (recipes × seeds) queued over this machine's GPUs, or written out for Slurm.

Each run is an ordinary `gptablate train` in its own process: on a GPU machine, one run per
`gpus_per_run` GPUs at a time (CUDA_VISIBLE_DEVICES gives each its share); on a CPU machine
one at a time. A run whose arm and seed already finished (or diverged) is skipped; one that
was interrupted and left a checkpoint is resumed. Beyond one machine, `slurm_script` writes
a job array that runs the same commands, one per array task.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..recipe import load_recipe
from ..results.store import ResultStore
from .checkpoint import latest_train_state
from .launch import preflight


@dataclass
class Job:
    recipe: str
    seed: int | None
    overrides: tuple[str, ...]
    arm: str
    action: str  # train, resume or skip
    run_id: str | None = None
    why: str = ""
    arm_hash: str = ""
    train_seed: int | None = None  # the recipe's seed (seed is None when the sweep sets none)

    def command(self, gpus: int, device: str | None) -> list[str]:
        base = ["gptablate", "train"]
        if self.action == "resume":
            cmd = base + ["--resume", self.run_id]
        else:
            cmd = base + [self.recipe]
            for o in self.overrides + ((f"train.seed={self.seed}",) if self.seed is not None else ()):
                cmd += ["--set", o]
        cmd += ["--gpus", str(gpus)]
        return cmd + (["--device", device] if device else [])


def plan(recipes: list[str], seeds: int | None, overrides: list[str], gpus_per_run: int,
         store: ResultStore | None = None) -> list[Job]:
    store = store or ResultStore()
    runs = store.runs()
    jobs = []
    for ref in recipes:
        for seed in (range(1, seeds + 1) if seeds else [None]):
            r = load_recipe(ref, list(overrides) + ([f"train.seed={seed}"] if seed is not None else []))
            preflight(r, gpus_per_run)
            same = same_seed(runs, r)
            done = [x for x in same if x["status"] in ("finished", "diverged")]
            resumable = [x for x in same if x["status"] in ("interrupted", "failed")
                         and x["run_dir"] and latest_train_state(Path(x["run_dir"])) is not None]
            job = Job(ref, seed, tuple(overrides), r.arm_label(), "train", arm_hash=r.arm_hash(),
                      train_seed=r.train.seed)
            if done:
                job.action, job.run_id, job.why = "skip", done[-1]["run_id"], f"{done[-1]['status']} as {done[-1]['run_id']}"
            elif any(x["status"] == "running" for x in same):
                job.action, job.why = "skip", "running now"
            elif resumable:
                job.action, job.run_id, job.why = "resume", resumable[-1]["run_id"], "from its newest checkpoint"
            jobs.append(job)
    return jobs


def same_seed(runs: list[dict], recipe) -> list[dict]:
    """The runs (results-table rows) of this recipe's arm at its seed: the runs that training it again would repeat."""
    arm = recipe.arm_hash()  # once: a hash of the resolved recipe
    return [x for x in runs if x["arm_hash"] == arm and x["seed"] == recipe.train.seed]


def gpu_slots(gpus_per_run: int, device: str | None) -> list[str | None]:
    """CUDA_VISIBLE_DEVICES values, one per concurrent run; [None] on a CPU machine (one at a time)."""
    import torch

    if device == "cpu" or not torch.cuda.is_available():
        return [None]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    return [",".join(ids[i:i + gpus_per_run]) for i in range(0, len(ids) - gpus_per_run + 1, gpus_per_run)]


def execute(jobs: list[Job], gpus_per_run: int, device: str | None, say=print,
            store: ResultStore | None = None) -> dict[str, int]:
    """Run the jobs over the slots; returns each job's exit status (by its description). Each run's stderr (its log
    lines, its error) goes to a temporary file, whose last line is shown if it fails: a pipe read only at the end
    would fill and stop the run."""
    slots = gpu_slots(gpus_per_run, device)
    queue = [j for j in jobs if j.action != "skip"]
    running: dict[int, tuple[subprocess.Popen, Job, object, float]] = {}
    results: dict[str, int] = {}
    while queue or running:
        for slot, devices in enumerate(slots):
            if slot in running or not queue:
                continue
            job = queue.pop(0)
            cmd = [sys.executable, "-m", "gptablate_cli"] + job.command(gpus_per_run, device)[1:]
            env = dict(os.environ)
            if devices is not None:
                env["CUDA_VISIBLE_DEVICES"] = devices
            say(f"start  {describe(job)}" + (f" on GPU {devices}" if devices else ""))
            errors = tempfile.TemporaryFile("w+", prefix="gptablate-sweep-")
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=errors, text=True)
            running[slot] = (proc, job, errors, time.time())
        time.sleep(0.2)
        for slot, (proc, job, errors, started) in list(running.items()):
            if proc.poll() is None:
                continue
            errors.seek(0)
            lines = errors.read().strip().splitlines()
            errors.close()
            results[describe(job)] = proc.returncode
            if proc.returncode == 0:
                say(f"done   {describe(job)}{_outcome(job, started, store)}")
            else:
                say(f"FAIL   {describe(job)} (exit {proc.returncode})" + (f": {lines[-1]}" if lines else ""))
            del running[slot]
    return results


def _outcome(job: Job, started: float, store: ResultStore | None) -> str:
    """': RUN_ID, val loss X, N s' for the run the job trained (the newest of its arm and seed since it started)."""
    rows = [r for r in (store or ResultStore()).runs()
            if r["run_id"] == job.run_id or (job.run_id is None and r["arm_hash"] == job.arm_hash
                                             and r["seed"] == job.train_seed and r["created_at"] >= started - 1)]
    if not rows:
        return ""
    r = rows[-1]
    loss = f", val loss {r['val_loss']:.4f}" if r["val_loss"] is not None else ""
    return f": {r['run_id']}{loss}, {time.time() - started:.0f} s"


def describe(job: Job) -> str:
    return job.arm + (f" seed {job.seed}" if job.seed is not None else "")


def slurm_script(jobs: list[Job], gpus_per_run: int, device: str | None, job_name: str = "gptablate") -> str:
    todo = [j for j in jobs if j.action != "skip"]
    lines = [
        "#!/usr/bin/env bash",
        f"# Written by `gptablate sweep --slurm`: {len(todo)} run(s), one per array task, each on {gpus_per_run} GPU(s).",
        "# Submit with: sbatch THIS_FILE. Each task runs `gptablate train`, which starts torchrun for its GPUs;",
        "# $GPTABLATE_DATA and $GPTABLATE_RUNS must point at storage that every node shares (the results table keeps",
        "# SQLite's rollback journal there; where gptablate cannot tell that it is shared, e.g. a Samba share,",
        "# export GPTABLATE_DB_JOURNAL=delete on every host that uses it).",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --array=0-{max(len(todo) - 1, 0)}",
        "#SBATCH --nodes=1",
        f"#SBATCH --gpus-per-node={gpus_per_run}",
        "#SBATCH --ntasks-per-node=1",
        "set -euo pipefail",
        "commands=(",
        *[f"  {shlex.quote(shlex.join(j.command(gpus_per_run, device)))}" for j in todo],
        ")",
        'eval "${commands[$SLURM_ARRAY_TASK_ID]}"',
    ]
    return "\n".join(lines) + "\n"
