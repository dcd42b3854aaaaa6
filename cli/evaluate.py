"""`gptablate eval RUN...`: score runs (the validation loss now; tasks come with the eval suite)."""

from __future__ import annotations

import json
from typing import List, Optional

import typer

from gptablate.eval.val import evaluate_val

from .app import app


@app.command("eval")
def eval_(
    runs: List[str] = typer.Argument(..., help="Run ids (a unique prefix will do), run directories or checkpoint files."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda [default: cuda when available]."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Sequences per forward pass."),
    fmt: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Compute the validation loss over the recipe's whole validation prefix and record it."""
    out = []
    for ref in runs:
        run, loss = evaluate_val(ref, device, batch_size)
        out.append({"run_id": run.run_id, "task": "val", "metric": "loss", "value": loss})
    if fmt == "json":
        print(json.dumps(out, indent=2))
    else:
        for row in out:
            print(f"{row['run_id']}  val loss {row['value']:.4f}")
