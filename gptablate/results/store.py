"""The results table: a SQLite file under the runs root.

WAL mode, so readers never block the writer; on a file system shared between hosts (NFS, Lustre, GPFS...), where
SQLite's WAL does not work (its index is memory shared by the processes of one host), the rollback journal, whose file
locks are what SQLite offers across hosts. Every write is one short IMMEDIATE transaction with a busy timeout, so
concurrent runs lose no row. The schema carries a version (PRAGMA user_version) and a list of migrations: a newer
gptablate upgrades an older file in place and never strands its rows.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import UserError
from ..paths import runs_root

DB_NAME = "results.sqlite"
STATUSES = ("running", "finished", "failed", "interrupted", "diverged")

# Append-only: each entry upgrades the schema by one version. Never edit a shipped entry.
MIGRATIONS: list[str] = [
    # 1: runs and evals
    """
    CREATE TABLE runs (
        run_id       TEXT PRIMARY KEY,
        run_name     TEXT,
        recipe       TEXT NOT NULL,
        arm          TEXT NOT NULL,   -- label: recipe name plus science-changing --set overrides
        arm_hash     TEXT NOT NULL,   -- hash of the resolved recipe without seed/run/speed settings
        norm         TEXT, block TEXT, residual TEXT,
        n_layer      INTEGER, n_head INTEGER, n_embd INTEGER, block_size INTEGER,
        dataset      TEXT,
        max_iters    INTEGER, batch_size INTEGER,
        seed         INTEGER,
        world_size   INTEGER,
        device       TEXT,
        git_commit   TEXT,
        tags         TEXT,            -- JSON list
        step         INTEGER DEFAULT 0,
        tokens       INTEGER DEFAULT 0,
        val_loss     REAL,
        wall_s       REAL,
        tokens_per_s REAL,
        mfu          REAL,
        status       TEXT NOT NULL,
        pid          INTEGER,
        host         TEXT,
        run_dir      TEXT,
        recipe_json  TEXT,
        created_at   REAL NOT NULL,
        updated_at   REAL NOT NULL
    );
    CREATE INDEX runs_arm ON runs(arm_hash);
    CREATE TABLE evals (
        run_id     TEXT NOT NULL REFERENCES runs(run_id),
        task       TEXT NOT NULL,
        metric     TEXT NOT NULL,
        value      REAL,
        stderr     REAL,
        created_at REAL NOT NULL,
        PRIMARY KEY (run_id, task, metric)
    );
    """,
    # 2: how many documents an evaluation used (a --limit run is not a full one)
    """
    ALTER TABLE evals ADD COLUMN samples INTEGER
    """,
    # 3: why a run stopped (divergence, a full disk...)
    """
    ALTER TABLE runs ADD COLUMN note TEXT
    """,
    # 4: whether an evaluation took its task's every example (1) or part of them, with --limit (0); NULL: not known
    """
    ALTER TABLE evals ADD COLUMN complete INTEGER
    """,
    # 5: the model's parameter count as nanoGPT counts it (every parameter but the position embedding); NULL: recorded
    # before gptablate kept it
    """
    ALTER TABLE runs ADD COLUMN n_params INTEGER
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


# File systems that hosts share (types as /proc/self/mountinfo names them): the table keeps its rollback journal there.
SHARED_FILESYSTEMS = {"nfs", "nfs4", "lustre", "gpfs", "cifs", "smb3", "smbfs", "beegfs", "ceph", "glusterfs", "9p",
                      "afs", "panfs", "wekafs", "orangefs", "pvfs2", "ocfs2", "gfs2", "fuse.sshfs", "fuse.glusterfs",
                      "fuse.ceph-fuse", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs", "fuse.rclone"}
JOURNALS = ("wal", "delete")


def _unescaped(path: str) -> str:
    """A path from the kernel's tables, its octal escapes (\\040 for a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _table(path: str) -> str:
    """A table of the kernel's or of the NFS server's; none (empty) where this system has no such file."""
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _within(target: Path, folder: Path) -> bool:
    return target == folder or folder in target.parents


def filesystem_type(folder: Path, mountinfo: str | None = None) -> str | None:
    """The type of the file system holding folder, from /proc/self/mountinfo (Linux); None where it cannot be read."""
    mountinfo = _table("/proc/self/mountinfo") if mountinfo is None else mountinfo
    target = Path(os.path.realpath(folder))
    best, found = -1, None
    for line in mountinfo.splitlines():
        fields = line.split(" - ", 1)
        head, tail = fields[0].split(), fields[1].split() if len(fields) == 2 else []
        if len(head) < 5 or not tail:
            continue
        point = Path(_unescaped(head[4]))
        if _within(target, point) and len(point.parts) >= best:  # the last mount is on top
            best, found = len(point.parts), tail[0]
    return found


def exported(folder: Path, etab: str | None = None) -> bool:
    """Whether this host exports folder over NFS (/var/lib/nfs/etab, the exports in force): its own disk to it, a
    shared file system to the hosts that mount it."""
    etab = _table("/var/lib/nfs/etab") if etab is None else etab
    target = Path(os.path.realpath(folder))
    return any(_within(target, Path(_unescaped(line.split()[0]))) for line in etab.splitlines()
               if line.strip() and not line.startswith("#"))


def journal_mode(folder: Path) -> str:
    """wal, or delete (the rollback journal) on a file system shared between hosts (mounted from another host, or
    exported by this one over NFS); GPTABLATE_DB_JOURNAL decides where neither tells (a Samba share, say)."""
    forced = (os.environ.get("GPTABLATE_DB_JOURNAL") or "").strip().lower()
    if forced:
        if forced not in JOURNALS:
            raise UserError(f"GPTABLATE_DB_JOURNAL={forced!r}: use wal (one host) or delete (a table that several "
                            "hosts write)")
        return forced
    return "delete" if filesystem_type(folder) in SHARED_FILESYSTEMS or exported(folder) else "wal"


def db_path(root: Path | None = None) -> Path:
    return (root or runs_root()) / DB_NAME


class ResultStore:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else db_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @contextmanager
    def _connect(self):
        timeout = float(os.environ.get("GPTABLATE_DB_TIMEOUT") or 60)  # seconds to wait for a busy database
        try:
            conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except sqlite3.Error as e:
            raise UserError(f"{self.path}: cannot open the results database ({e})") from None
        try:
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            yield conn
        except sqlite3.DatabaseError as e:
            if isinstance(e, sqlite3.OperationalError) and "locked" in str(e):
                raise UserError(f"{self.path}: the results database is locked by another process (waited up to "
                                f"{timeout:g} s): retry when it is done") from None
            if "not a database" in str(e) or "malformed" in str(e):
                raise UserError(f"{self.path}: the results database is corrupt ({e}); move it aside "
                                "and the next command starts a new one") from None
            raise
        finally:
            conn.close()

    @contextmanager
    def _write(self):
        """One short write transaction, taken up front so writers queue instead of deadlocking."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _migrate(self) -> None:
        """Open (its journal mode set) and upgrade the schema. Switching the journal mode reports "locked" at once,
        without the busy handler, while another process is opening the same file: retry then."""
        journal = journal_mode(self.path.parent)  # once: the mount table and the exports are read for it
        deadline = time.monotonic() + float(os.environ.get("GPTABLATE_DB_TIMEOUT") or 60)
        while True:
            try:
                return self._migrate_once(journal)
            except UserError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _migrate_once(self, journal: str) -> None:
        with self._connect() as conn:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != journal:
                conn.execute(f"PRAGMA journal_mode = {journal.upper()}")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(f"{self.path}: results database has schema version {version}, newer than this "
                                f"gptablate understands ({SCHEMA_VERSION}); upgrade gptablate")
            if version == SCHEMA_VERSION:
                return
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have won
            for v in range(version, SCHEMA_VERSION):
                for statement in MIGRATIONS[v].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {v + 1}")

    # ------------------------------------------------------------------ runs

    def start_run(self, run_id: str, recipe, world_size: int, device: str, run_dir: Path,
                  git_commit: str | None, n_params: int | None = None) -> None:
        now = time.time()
        r = recipe
        row = dict(run_id=run_id, run_name=r.run.name, recipe=r.name, arm=r.arm_label(), arm_hash=r.arm_hash(),
                   norm=r.arch.norm, block=r.arch.block, residual=r.arch.residual,
                   n_layer=r.model.n_layer, n_head=r.model.n_head, n_embd=r.model.n_embd,
                   block_size=r.model.block_size, dataset=r.data.dataset, max_iters=r.train.max_iters,
                   batch_size=r.train.batch_size, seed=r.train.seed, world_size=world_size, device=device,
                   git_commit=git_commit, tags=json.dumps(list(r.run.tags)), status="running",
                   pid=os.getpid(), host=socket.gethostname(), run_dir=str(run_dir),
                   recipe_json=json.dumps(r.to_dict()), n_params=n_params, created_at=now, updated_at=now)
        cols = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        with self._write() as conn:
            conn.execute(f"INSERT INTO runs ({cols}) VALUES ({marks})", list(row.values()))

    def update_run(self, run_id: str, **fields) -> None:
        if "status" in fields and fields["status"] not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        fields["updated_at"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._write() as conn:
            cur = conn.execute(f"UPDATE runs SET {sets} WHERE run_id = ?", [*fields.values(), run_id])
            if cur.rowcount != 1:
                raise KeyError(run_id)

    def add_eval(self, run_id: str, task: str, metric: str, value: float, stderr: float | None = None,
                 samples: int | None = None, complete: bool | None = None) -> int | None:
        """Record a run's metric, replacing its earlier figure unless that one was taken over more samples (an
        evaluation with --limit never replaces a fuller one). complete: whether it took the task's every example.
        Returns None when recorded, else the kept figure's sample count."""
        if stderr is not None and stderr != stderr:  # NaN: no estimate
            stderr = None
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO evals (run_id, task, metric, value, stderr, created_at, samples, complete) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id, task, metric) DO UPDATE SET value = excluded.value, stderr = excluded.stderr, "
                "created_at = excluded.created_at, samples = excluded.samples, complete = excluded.complete "
                "WHERE evals.samples IS NULL OR excluded.samples IS NULL OR excluded.samples >= evals.samples",
                (run_id, task, metric, value, stderr, time.time(), samples,
                 None if complete is None else int(complete)))
            if cur.rowcount:
                return None
            return conn.execute("SELECT samples FROM evals WHERE run_id = ? AND task = ? AND metric = ?",
                                (run_id, task, metric)).fetchone()[0]

    def remove_runs(self, run_ids: list[str], running: bool = False) -> None:
        """Take these runs and their evaluations out of the table, all or none. A run that is gone, or running
        (unless running=True), stops the removal: KeyError(run_id)."""
        keep = "" if running else " AND status != 'running'"
        with self._write() as conn:
            for rid in run_ids:
                conn.execute("DELETE FROM evals WHERE run_id = ?", (rid,))
                if conn.execute(f"DELETE FROM runs WHERE run_id = ?{keep}", (rid,)).rowcount != 1:
                    raise KeyError(rid)

    # ------------------------------------------------------------------ reads

    def reconcile(self) -> int:
        """Mark 'running' rows whose process is gone (on this host) as interrupted."""
        host = socket.gethostname()
        with self._connect() as conn:
            rows = conn.execute("SELECT run_id, pid FROM runs WHERE status = 'running' AND host = ?", (host,)).fetchall()
        dead = [r["run_id"] for r in rows if r["pid"] and not _pid_alive(r["pid"])]
        if dead:
            with self._write() as conn:
                conn.executemany("UPDATE runs SET status = 'interrupted', updated_at = ? "
                                 "WHERE run_id = ? AND status = 'running'", [(time.time(), d) for d in dead])
        return len(dead)

    def runs(self, tag: str | None = None) -> list[dict]:
        """Every run, oldest first, its run_dir where its folder is now (`folder`); with tag, those whose run.tags
        hold it."""
        self.reconcile()
        with self._connect() as conn:
            rows = [dict(r) for r in conn.execute("SELECT * FROM runs ORDER BY created_at, run_id")]
        for r in rows:
            folder = self.folder(r)
            r["run_dir"] = str(folder) if folder else None
        return [r for r in rows if tag in json.loads(r["tags"] or "[]")] if tag else rows

    def evals(self) -> list[dict]:
        with self._connect() as conn:
            return [dict(r) for r in conn.execute("SELECT * FROM evals ORDER BY run_id, task, metric")]

    def folder(self, run: dict) -> Path | None:
        """A run's folder: the one of its id beside this table, where `train` makes it, or else the one recorded
        (a table copied or moved away from its folders)."""
        beside = self.path.parent / run["run_id"]
        if beside.is_dir():
            return beside
        return Path(run["run_dir"]) if run["run_dir"] else None

    def get_run(self, run_id: str) -> dict | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return dict(row) if row else None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
