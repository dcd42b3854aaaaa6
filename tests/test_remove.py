"""`gptablate rm`: runs leave the results table with their folders, only what was picked, only when confirmed."""

import shutil
import socket

import pytest

from gptablate.errors import UserError
from gptablate.results.remove import execute, plan, select
from gptablate.results.store import ResultStore

from conftest import record_run, results_table, run_cli


def _table(runs_root, runs) -> ResultStore:
    """runs: {run id: (status, overrides)}; each with a folder beside the table and an evaluation."""
    store = results_table(runs_root)
    for rid, (status, overrides) in runs.items():
        folder = runs_root / rid
        folder.mkdir(parents=True)
        (folder / "recipe.yaml").write_text("base: tiny\n")
        (folder / "checkpoint.pt").write_bytes(b"x" * 1000)
        record_run(store, rid, overrides, status=status, evals=[("hellaswag", "acc", 30.0, 1.0, 100)],
                   **({"pid": None} if status != "running" else {}))
    return store


RUNS = {"20261125-100000-tiny-aaaaaa": ("finished", []),
        "20261125-100100-tiny-bbbbbb": ("failed", []),
        "20261125-100200-tiny-cccccc": ("finished", ["train.lr=0.001"]),
        "20261125-100300-tiny-dddddd": ("interrupted", ["train.lr=0.001"])}
A, B, C, D = RUNS


def _left(store) -> set:
    return {r["run_id"] for r in store.runs()}


def test_rm_removes_the_picked_runs_rows_evals_and_folders_only_when_confirmed(roots):
    _, runs_root = roots
    store = _table(runs_root, RUNS)

    refused = run_cli("rm", A)  # no terminal to ask on: nothing happens without --yes
    assert refused.returncode == 2 and "add --yes" in refused.stderr and A in refused.stdout
    assert _left(store) == set(RUNS) and (runs_root / A).is_dir()
    for args in ([A], [A, "--yes"]):
        shown = run_cli("rm", *args, "--dry-run")
        assert shown.returncode == 0 and A in shown.stdout, shown.stderr
        assert "would remove 1 run and 1 folder (" in shown.stdout and "nothing removed" in shown.stdout
    assert _left(store) == set(RUNS) and (runs_root / A / "checkpoint.pt").is_file()

    ambiguous = run_cli("rm", "20261125-1001", "-y")
    assert ambiguous.returncode == 0, ambiguous.stderr  # a unique prefix: B
    assert _left(store) == {A, C, D} and not (runs_root / B).exists()
    assert {e["run_id"] for e in store.evals()} == {A, C, D}

    many = run_cli("rm", "20261125-", "-y")
    assert many.returncode == 2 and "matches 3 runs" in many.stderr and "give more of the id" in many.stderr

    by_arm = run_cli("rm", "--arm", "tiny[train.lr=0.001]", "--status", "interrupted", "--yes")
    assert by_arm.returncode == 0, by_arm.stderr
    assert _left(store) == {A, C} and not (runs_root / D).exists() and (runs_root / C).is_dir()

    h = next(r["arm_hash"] for r in store.runs() if r["run_id"] == C)[:6]  # the label compare gives a shared one
    listed = run_cli("rm", "--arm", f"tiny[train.lr=0.001]@{h}")
    assert listed.returncode == 2 and C in listed.stdout and A not in listed.stdout
    kept = run_cli("rm", str(runs_root / C), "--keep-files", "-y")
    assert kept.returncode == 0, kept.stderr
    assert _left(store) == {A} and (runs_root / C / "checkpoint.pt").is_file()
    assert not list(runs_root.glob(".*removing"))

    for args, message in ((["nope"], "neither a run id"), ([""], "an empty run id"), ([A, "--tag", "x"], "not both"),
                          ([], "name the runs"),
                          (["--status", "done"], "use one or more of running, finished"),
                          ([str(runs_root / C)], "not the folder of a run")):
        bad = run_cli("rm", *args, "-y")
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr, (args, bad.stderr)
    assert _left(store) == {A}


def test_a_running_run_is_refused_and_a_folder_elsewhere_is_left_alone(roots, tmp_path):
    _, runs_root = roots
    store = _table(runs_root, {A: ("running", []), B: ("finished", [])})  # A's process: this test's, alive
    running = run_cli("rm", A, "-y")
    assert running.returncode == 2 and f"run {A} is still running" in running.stderr
    assert _left(store) == {A, B}

    # A table copied away from its folders names them where they were: rm never deletes there.
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(runs_root / "results.sqlite", copy / "results.sqlite")
    out = run_cli("rm", B, "-y", env={"GPTABLATE_RUNS": str(copy)})
    assert out.returncode == 0, out.stderr
    assert f"no folder {copy / B}" in out.stdout and (runs_root / B / "checkpoint.pt").is_file()
    assert _left(ResultStore(copy / "results.sqlite")) == {A}

    # Marked running on another host: only --force takes it.
    store.update_run(A, host="elsewhere", status="running")
    assert "--force removes it anyway" in run_cli("rm", A, "-y").stderr
    assert run_cli("rm", A, "-y", "--force").returncode == 0 and _left(store) == {B}


def test_a_copied_table_reads_the_folders_beside_it(roots, tmp_path):
    _, runs_root = roots
    _table(runs_root, {A: ("finished", [])})
    moved = tmp_path / "moved"
    shutil.copytree(runs_root, moved)
    (runs_root / A / "checkpoint.pt").unlink()
    assert ResultStore(moved / "results.sqlite").runs()[0]["run_dir"] == str(moved / A)
    shutil.rmtree(moved / A)  # no folder beside it: the recorded one
    assert ResultStore(moved / "results.sqlite").runs()[0]["run_dir"] == str(runs_root / A)


def test_a_removal_that_fails_in_the_table_puts_the_folders_back(roots):
    _, runs_root = roots
    store = _table(runs_root, {A: ("finished", []), B: ("finished", [])})
    removal = plan(select(store, [A, B], [], None, None), runs_root, keep_files=False, force=False)
    assert set(removal.folders) == {A, B} and removal.size() == 2 * (1000 + len("base: tiny\n"))
    store.update_run(B, status="running", host=socket.gethostname())  # resumed after it was picked
    with pytest.raises(UserError, match=f"run {B} started again"):
        execute(store, removal)
    assert _left(store) == {A, B} and len(store.evals()) == 2
    assert (runs_root / A / "checkpoint.pt").is_file() and (runs_root / B / "checkpoint.pt").is_file()
    assert not list(runs_root.glob(".*removing"))
