"""Taking runs out of the results table, with their folders: `gptablate rm`.

A run's folder is first renamed beside itself (`.ID.removing`), then its rows leave the table in one transaction, then
the renamed folder is deleted. A failed transaction renames the folders back, so the table and the folders never
disagree about a run; a deletion cut short leaves only a hidden folder that names itself.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..paths import RECIPE_FILE
from .store import STATUSES, ResultStore

@dataclass
class Removal:
    rows: list[dict]
    force: bool = False
    folders: dict[str, Path] = field(default_factory=dict)  # run id -> its folder, to delete
    kept: dict[str, str] = field(default_factory=dict)      # run id -> why its folder stays

    def size(self) -> int:
        return sum(f.stat().st_size for d in self.folders.values() for f in d.rglob("*") if f.is_file())


def select(store: ResultStore, refs: list[str], statuses: list[str], tag: str | None, arm: str | None) -> list[dict]:
    """The runs named (ids, unique prefixes of ids, or run folders), or, with no names, those of the statuses, tag and
    arm given (every one given must hold; the arm by its label, or by the label@hash compare gives two arms whose
    labels are the same)."""
    rows = store.runs()
    if refs:
        if statuses or tag or arm:
            raise UserError("give RUNS or --status/--tag/--arm to pick runs, not both")
        picked = {}
        for ref in refs:
            row = _one(rows, ref, store.path)
            picked[row["run_id"]] = row
        return list(picked.values())
    if not (statuses or tag or arm):
        raise UserError("name the runs to remove (ids, prefixes or folders), or pick them with --status, --tag or "
                        "--arm")
    for s in statuses:
        if s not in STATUSES:
            raise UserError(f"--status {s!r}: use one or more of {', '.join(STATUSES)}, comma-separated")
    return [r for r in rows
            if (not statuses or r["status"] in statuses) and (tag is None or tag in json.loads(r["tags"] or "[]"))
            and (arm is None or arm in (r["arm"], f"{r['arm']}@{r['arm_hash'][:6]}"))]


def _one(rows: list[dict], ref: str, db: Path) -> dict:
    if not ref.strip():  # as a prefix it would match every run
        raise UserError("an empty run id: give a run id, a prefix of one, or a run folder")
    by_id = {r["run_id"]: r for r in rows}
    if ref in by_id:
        return by_id[ref]
    p = Path(ref)
    if p.is_dir():
        if p.resolve() == (db.parent / p.name).resolve() and p.name in by_id:
            return by_id[p.name]
        raise UserError(f"{ref}: not the folder of a run in {db} (a run's folder is its id, beside the table)")
    matches = [r for r in rows if r["run_id"].startswith(ref)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"'{ref}' matches {len(matches)} runs ({', '.join(r['run_id'] for r in matches[:4])}"
                        f"{'…' if len(matches) > 4 else ''}): give more of the id")
    raise UserError(f"'{ref}' is neither a run id (or a prefix of one) in {db} nor a run folder "
                    "(see `gptablate compare --by run`)")


def plan(rows: list[dict], store_root: Path, keep_files: bool, force: bool) -> Removal:
    """What removing these runs would do. A run still running is refused: on this host its process is alive (the
    table marks the others interrupted when read); on another, only --force takes it, since its process cannot be
    seen from here. Only a folder beside the table (where train makes it) is deleted."""
    here = socket.gethostname()
    for r in rows:
        if r["status"] == "running" and (r["host"] == here or not force):
            where = f"pid {r['pid']} here" if r["host"] == here else f"on host {r['host']}, --force removes it anyway"
            raise UserError(f"run {r['run_id']} is still running ({where}): stop it first")
    out = Removal(rows, force)
    for r in rows:
        if keep_files:
            continue
        folder = store_root / r["run_id"]  # never the recorded path: a copied table would point at the original's
        if not folder.exists():
            out.kept[r["run_id"]] = f"no folder {folder}"
        elif not (folder / RECIPE_FILE).is_file():
            out.kept[r["run_id"]] = f"{folder} holds no {RECIPE_FILE}, so it may not be this run's: left in place"
        else:
            out.folders[r["run_id"]] = folder
    return out


def execute(store: ResultStore, removal: Removal) -> list[str]:
    """Carry a plan out; returns the folders that could not be deleted (their rows are gone: delete them by hand)."""
    moved: dict[str, tuple[Path, Path]] = {}
    try:
        for rid, folder in removal.folders.items():
            aside = folder.with_name(f".{folder.name}.removing")
            os.rename(folder, aside)
            moved[rid] = (folder, aside)
        store.remove_runs([r["run_id"] for r in removal.rows], running=removal.force)
    except BaseException as e:
        for folder, aside in moved.values():
            os.rename(aside, folder)
        if isinstance(e, KeyError):
            raise UserError(f"run {e.args[0]} started again or left the table while it was being removed: nothing "
                            "was removed") from None
        raise
    left = []
    for folder, aside in moved.values():
        shutil.rmtree(aside, ignore_errors=True)
        if aside.exists():
            left.append(str(aside))
    return left
