"""`gptablate eval RUN...`: the evaluation suite on runs or checkpoints."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

from gptablate.console import info
from gptablate.errors import UserError
from gptablate.eval.tasks import ALL_TASKS

from .app import app, at_least_one

FORMATS = ("table", "markdown", "json")


@app.command("eval")
def eval_(
    runs: Optional[List[str]] = typer.Argument(None, help="Run ids (a unique prefix will do), run directories or "
                                               "checkpoint files."),
    tasks: Optional[str] = typer.Option(None, "--tasks", help=f"Comma-separated, from: {','.join(ALL_TASKS)} [default: all]."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N examples (documents for wikitext2)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per forward pass [32 on GPU, 8 on CPU]."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda [default: cuda when available]."),
    gpus: int = typer.Option(1, "--gpus", help="Ranks to shard the requests over (torchrun)."),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="Read the datasets from this folder (their original "
                                            "public files, e.g. arc/ARC-Easy-Test.jsonl) instead of the hub."),
    fmt: str = typer.Option("table", "--format", help="table, markdown (lm-eval style) or json."),
    missing: bool = typer.Option(False, "--missing", help="Instead of RUNS: every finished run in the results table "
                                 "without a figure for some of the tasks (without --limit: a figure over all of the "
                                 "task's examples), scored on those it lacks."),
    tag: Optional[str] = typer.Option(None, "--tag", help="With --missing: only the runs carrying this tag."),
) -> None:
    """Validation loss, WikiText-2 and LAMBADA perplexity, HellaSwag, ARC-Easy, PIQA, WinoGrande accuracy.

    Each task follows lm-evaluation-harness's definition. Data comes from the Hugging Face Hub
    (parquet, cached under HF_HOME) or from --data-dir. Local HellaSwag is a derived text
    rendering whose queries keep ctx_b's case, so its numbers can differ slightly from the harness.
    """
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    from gptablate.eval.run import parse_tasks, render  # torch and the engine: loaded by this command only

    names = parse_tasks(tasks)
    at_least_one(limit=limit, batch_size=batch_size, gpus=gpus)
    if missing and runs:
        raise UserError("--missing finds the runs to score itself: give it without RUNS")
    if tag is not None and not missing:
        raise UserError("--tag picks among the runs --missing finds: give it with --missing")
    if not missing and not runs:
        raise UserError("give RUNS (run ids, run folders or checkpoint files), or --missing for every finished run "
                        "without a figure for some of the tasks")
    plan = None
    if missing:
        from gptablate.eval.val import unscored
        from gptablate.results.store import ResultStore

        plan, lost = unscored(ResultStore(), names, tag, partial_counts=limit is not None)
        if lost:
            info(f"not scored, no checkpoint in their run folders: {', '.join(lost)}")
        if not plan:
            info(f"nothing to score: every finished run{f' tagged {tag!r}' if tag else ''}"
                 f"{' with a checkpoint' if lost else ''} has a {'' if limit else 'full '}figure for "
                 f"{', '.join(names)}")
            return
        info(f"scoring {len(plan)} run{'s' * (len(plan) > 1)}: "
             + "; ".join(f"{rid} ({', '.join(t)})" for rid, t in plan.items()))
        runs = list(plan)
    if gpus > 1:
        from gptablate.train.launch import run_ranks, torchrun

        args = (["--plan", json.dumps(plan)] if plan else [*runs, "--tasks", ",".join(names)]) + ["--format", fmt]
        for flag, value in (("--device", device), ("--batch-size", batch_size), ("--data-dir", data_dir),
                            ("--limit", limit)):
            if value is not None:
                args += [flag, str(value)]
        with tempfile.TemporaryDirectory(prefix="gptablate-eval-") as scratch:
            error = Path(scratch) / "error"
            rc = run_ranks(torchrun("gptablate.eval.worker", args + ["--error-file", str(error)], gpus), gpus, error)
        if rc:
            raise typer.Exit(rc if rc in (2, 130) else 1)
        return
    from gptablate.eval.val import PartlyScored, evaluate_runs

    try:
        results = evaluate_runs(runs, plan or names, device, batch_size, data_dir, limit)
    except PartlyScored as e:  # the runs that were scored are shown, then the error
        if e.results:
            print(render(e.results, fmt))
        raise
    print(render(results, fmt))
