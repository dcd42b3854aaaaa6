import multiprocessing as mp
import sqlite3
import subprocess
import sys

import pandas as pd
import pytest

from gptablate.errors import UserError
from gptablate.recipe import load_recipe
from gptablate.results.store import SCHEMA_VERSION, ResultStore


def _writer(db, worker, n):
    store = ResultStore(db)
    recipe = load_recipe("tiny", [f"train.seed={worker}"])
    for i in range(n):
        rid = f"w{worker}-{i}"
        store.start_run(rid, recipe, 1, "cpu", db.parent / rid, None)
        store.update_run(rid, status="finished", val_loss=float(i))
        store.add_eval(rid, "val", "loss", float(i))


def test_concurrent_writers_lose_no_row(tmp_path):
    db = tmp_path / "results.sqlite"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(db, w, 25)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    store = ResultStore(db)
    runs = store.runs()
    assert len(runs) == 200 and all(r["status"] == "finished" for r in runs)
    assert len(store.evals()) == 200


def test_the_file_system_of_a_folder_is_read_from_the_mount_table():
    from gptablate.results.store import SHARED_FILESYSTEMS, filesystem_type

    mounts = "\n".join(["22 1 0:21 / / rw - ext4 /dev/sda1 rw",
                         "23 22 0:22 / /home rw,relatime - nfs4 server:/home rw,vers=4.2",
                         "24 23 0:23 / /home/me/scratch\\040disk rw - xfs /dev/sdb1 rw",
                         "25 22 0:24 / /lus rw shared:7 - lustre 10.0.0.1@o2ib:/fs rw"])
    assert filesystem_type("/home/me/runs", mounts) == "nfs4" in SHARED_FILESYSTEMS
    assert filesystem_type("/home/me/scratch disk/runs", mounts) == "xfs"  # a mount point with a space
    assert filesystem_type("/homework", mounts) == "ext4"  # a prefix of the name is not a parent
    assert filesystem_type("/lus/project/runs", mounts) == "lustre" in SHARED_FILESYSTEMS
    assert filesystem_type("/", mounts) == "ext4"


def test_a_folder_this_host_exports_over_nfs_is_shared():
    from gptablate.results.store import exported

    etab = "/srv/share\tnode*(rw,sync,wdelay,hide,no_subtree_check,sec=sys)\n/srv/lab\\040runs\t10.0.0.0/8(rw)\n"
    assert exported("/srv/share/runs", etab) and exported("/srv/share", etab)
    assert exported("/srv/lab runs/x", etab)  # a space, as etab escapes it
    assert not exported("/srv/shared/runs", etab) and not exported("/srv", etab) and not exported("/srv/x", "")


def test_a_table_on_storage_several_hosts_share_keeps_a_rollback_journal(tmp_path, monkeypatch):
    """WAL's index is memory shared by one host's processes; a table that several hosts write takes the rollback
    journal (GPTABLATE_DB_JOURNAL=delete here, as a shared file system's mount gives it), and a table in WAL switches
    with its rows; concurrent writers lose no row either way."""
    db = tmp_path / "results.sqlite"
    _writer(db, 0, 3)  # a table made in WAL
    monkeypatch.setenv("GPTABLATE_DB_JOURNAL", "delete")
    store = ResultStore(db)
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert len(store.runs()) == 3 and not (tmp_path / "results.sqlite-wal").exists()
    ctx = mp.get_context("spawn")  # the children take the variable with the environment
    procs = [ctx.Process(target=_writer, args=(db, w, 25)) for w in range(1, 5)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert len(store.runs()) == 103 and len(store.evals()) == 103
    assert sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    monkeypatch.setenv("GPTABLATE_DB_JOURNAL", "journal")
    with pytest.raises(UserError, match="GPTABLATE_DB_JOURNAL='journal': use wal"):
        ResultStore(db)


def test_wal_mode_and_schema_version(tmp_path):
    ResultStore(tmp_path / "r.sqlite")
    conn = sqlite3.connect(tmp_path / "r.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_newer_schema_is_refused_not_damaged(tmp_path):
    db = tmp_path / "r.sqlite"
    ResultStore(db)
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(UserError, match="newer"):
        ResultStore(db)


def test_corrupt_database_is_a_user_error(tmp_path):
    db = tmp_path / "r.sqlite"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(UserError, match="corrupt"):
        ResultStore(db)


def test_a_run_whose_process_is_gone_is_not_left_running(tmp_path):
    store = ResultStore(tmp_path / "r.sqlite")
    store.start_run("alive", load_recipe("tiny"), 1, "cpu", tmp_path, None)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    store.start_run("gone", load_recipe("tiny"), 1, "cpu", tmp_path, None)
    store.update_run("gone", pid=int(dead.stdout))
    status = {r["run_id"]: r["status"] for r in store.runs()}
    assert status == {"alive": "running", "gone": "interrupted"}


def test_a_table_of_the_first_schema_is_upgraded_in_place_with_its_rows(tmp_path):
    """A results table written by the first gptablate (schema 1) opens with every later column added, its rows kept,
    the new columns empty (not known then); a newer gptablate never strands an older table's runs."""
    from gptablate.results.store import MIGRATIONS

    db = tmp_path / "results.sqlite"
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
    conn.execute("INSERT INTO runs (run_id, recipe, arm, arm_hash, status, seed, val_loss, created_at, updated_at) "
                 "VALUES ('old', 'tiny', 'tiny', 'abc', 'finished', 1, 4.5, 0, 0)")
    conn.execute("INSERT INTO evals (run_id, task, metric, value, created_at) VALUES ('old', 'piqa', 'acc', 60, 0)")
    conn.close()
    store = ResultStore(db)
    assert sqlite3.connect(db).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == len(MIGRATIONS)
    (run,) = store.runs()
    assert run["run_id"] == "old" and run["val_loss"] == 4.5 and run["note"] is None and run["n_params"] is None
    (ev,) = store.evals()
    assert ev["value"] == 60 and ev["samples"] is None and ev["complete"] is None
    from gptablate.results.leaderboard import runs_frame

    frame = runs_frame(store)
    assert frame.loc[0, "piqa_acc"] == 60 and frame.loc[0, "piqa_acc_partial"] is pd.NA  # not known, not False
    assert store.add_eval("old", "piqa", "acc", 61.0, 1.0, samples=1838, complete=True) is None
    assert [(e["value"], e["samples"], e["complete"]) for e in store.evals()] == [(61.0, 1838, 1)]
