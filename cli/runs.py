"""`gptablate rm RUN... | --status S --tag T --arm A [--keep-files] [--dry-run] [--yes] [--force]`."""

from __future__ import annotations

import sys
from typing import List, Optional

import typer

from gptablate.console import amount
from gptablate.errors import UserError

from .app import app


@app.command()
def rm(
    runs: Optional[List[str]] = typer.Argument(None, help="Run ids (a unique prefix will do) or run folders."),
    status: Optional[str] = typer.Option(None, "--status", help="Instead of RUNS: the runs of these statuses, "
                                         "comma-separated (failed, interrupted, diverged, finished)."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Instead of RUNS: the runs carrying this tag."),
    arm: Optional[str] = typer.Option(None, "--arm", help="Instead of RUNS: the runs of this arm (its label as "
                                      "compare shows it)."),
    keep_files: bool = typer.Option(False, "--keep-files", help="Take the runs out of the table only; their folders "
                                    "stay."),
    dry_run: bool = typer.Option(False, "--dry-run", help="List what would be removed; remove nothing."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
    force: bool = typer.Option(False, "--force", help="Also remove runs marked running on another host (whose "
                               "process cannot be checked from here)."),
) -> None:
    """Remove runs from the results table, with their folders (checkpoints, logs): debugging runs, failed ones, an arm
    trained with a mistake. Lists what it would remove and asks first."""
    from gptablate.results.remove import execute, plan, select
    from gptablate.results.store import ResultStore

    store = ResultStore()
    statuses = [s.strip() for s in status.split(",") if s.strip()] if status else []
    rows = select(store, list(runs or []), statuses, tag, arm)
    if not rows:
        print(f"no run in {store.path} matches")
        return
    removal = plan(rows, store.path.parent, keep_files, force)
    for r in rows:
        where = removal.kept.get(r["run_id"]) or ("folder kept" if keep_files else str(removal.folders[r["run_id"]]))
        print(f"  {r['run_id']}  {r['arm']}  seed {r['seed']}  {r['status']}  {where}")
    n = len(rows)
    what = f"{n} run{'s' * (n > 1)}"
    if removal.folders:
        k = len(removal.folders)
        what += f" and {k} folder{'s' * (k > 1)} ({amount(removal.size(), 'bytes')})"
    if dry_run:
        print(f"would remove {what} (--dry-run: nothing removed)")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UserError(f"this would remove {what}: add --yes to remove them (no terminal to ask on)")
        if not typer.confirm(f"Remove {what}?", default=False):
            print("nothing removed")
            return
    left = execute(store, removal)
    print(f"removed {what} from {store.path}")
    if left:
        print(f"could not delete: {', '.join(left)} (no longer in the table: delete by hand)", file=sys.stderr)
        raise typer.Exit(1)
