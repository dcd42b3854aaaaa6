"""Starting a run: in this process, or re-launched through torchrun for several ranks."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

from ..data.shards import open_dataset
from ..errors import UserError
from ..model.gpt import check_arch
from ..paths import RECIPE_FILE, atomic_write_text, data_root, runs_root
from ..recipe import Recipe, plan_batch

WORKER_ERROR = ".worker_error"  # a torchrun rank's user error, for the launcher to report as one line
WORKER_RUN = ".worker_run"  # on a node whose ranks trained another node's run (multi-node): that run's id
BOOKKEEPING = {RECIPE_FILE, WORKER_ERROR, WORKER_RUN}  # what a run folder holds before its run is recorded


def new_run_id(recipe: Recipe) -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{recipe.name}-{secrets.token_hex(3)}"


def preflight(recipe: Recipe, world_size: int) -> None:
    """Every user error we can see before spending a second of compute."""
    check_arch(recipe)
    plan_batch(recipe.train, world_size)
    if recipe.eval.tasks:
        from ..eval.run import parse_tasks

        parse_tasks(list(recipe.eval.tasks))
        if recipe.eval.data_dir and not Path(recipe.eval.data_dir).is_dir():
            raise UserError(f"eval.data_dir {recipe.eval.data_dir}: no such folder")
    open_dataset(data_root() / recipe.data.dataset)
    from .engine import check_log_backend

    check_log_backend(recipe.train.log)


def resume_preflight(run_dir: Path, recipe: Recipe, world_size: int) -> None:
    """What would stop a resume, found before any process starts."""
    from .checkpoint import latest_train_state, load_checkpoint

    path = latest_train_state(run_dir)
    if path is None:
        raise UserError(f"{run_dir}: no checkpoint to resume from (set train.checkpoint_interval to write them)")
    state = load_checkpoint(path)
    if state["step"] >= recipe.train.max_iters:
        raise UserError(f"run {run_dir.name} already finished all {recipe.train.max_iters} steps")
    if state["world_size"] != world_size and recipe.model.dropout > 0:
        raise UserError(f"run {run_dir.name} trained on {state['world_size']} rank(s); resuming on {world_size} would "
                        f"change its dropout random streams: resume with --gpus {state['world_size']}")


def create_run_dir(recipe: Recipe) -> tuple[str, Path]:
    root = runs_root()
    for _ in range(10):
        run_id = new_run_id(recipe)
        run_dir = root / run_id
        try:
            run_dir.mkdir(parents=True, exist_ok=False)
        except FileExistsError:
            continue
        atomic_write_text(run_dir / RECIPE_FILE, recipe.to_yaml())
        return run_id, run_dir
    raise RuntimeError("could not create a unique run directory")


def _bookkeeping_only(run_dir: Path) -> bool:
    return {p.name for p in run_dir.iterdir()} <= BOOKKEEPING


def joined_run(run_dir: Path, run_id: str) -> tuple[str, Path | None]:
    """The run this node's ranks trained, and its folder where this node sees one.

    On a node other than rank 0's (multi-node) the ranks trained rank 0's run, not the one this node made a folder
    for before they met; that folder, holding nothing but its recipe, is removed."""
    told = run_dir / WORKER_RUN
    if not told.is_file():
        return run_id, run_dir
    theirs = told.read_text().strip()
    if _bookkeeping_only(run_dir):
        shutil.rmtree(run_dir, ignore_errors=True)
    folder = run_dir.parent / theirs
    return theirs, folder if (folder / RECIPE_FILE).is_file() else None


def discard_unrecorded(run_dir: Path, run_id: str) -> None:
    """Remove a new run's folder if the run never reached the results table and the folder holds only its recipe:
    a run stopped before its first step (a user error found by the ranks, an interrupt) leaves nothing behind."""
    from ..results.store import ResultStore

    try:
        if not run_dir.is_dir() or not _bookkeeping_only(run_dir):
            return
        if ResultStore().get_run(run_id) is None:
            shutil.rmtree(run_dir, ignore_errors=True)
    except (OSError, UserError):
        pass  # the error that stopped the run is the one to report


def resolve_run_dir(ref: str, what: str = "a run folder") -> Path:
    """A run folder, or a run id (a unique prefix will do) under the runs root.

    `what` names the other things the caller would have accepted, for the error message.
    """
    if not ref.strip():  # as a prefix it would match every run
        others = "" if what == "a run folder" else f" or {what}"
        raise UserError(f"an empty run id: give a run id (a unique prefix will do), a run folder{others}")
    p = Path(ref)
    if (p / RECIPE_FILE).is_file():
        return p.resolve()
    root = runs_root()
    matches = sorted(d for d in root.glob(f"{ref}*") if (d / RECIPE_FILE).is_file()) if root.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UserError(f"'{ref}' matches {len(matches)} runs ({', '.join(m.name for m in matches[:4])}…): give more of the id")
    raise UserError(f"'{ref}' is neither {what} nor a run under {root} (see `gptablate compare --by run`)")


def torchrun(module: str, args: list[str], nproc: int, nnodes: int = 1, rdzv_endpoint: str | None = None) -> list[str]:
    """`python -m torch.distributed.run ... -m MODULE ARGS` (through gptablate.train.torchrun, which leaves a rank's
    reported failure to the rank): standalone on one node, c10d across several."""
    cmd = [sys.executable, "-m", "gptablate.train.torchrun", f"--nproc-per-node={nproc}"]
    if nnodes > 1:
        if not rdzv_endpoint:
            raise UserError("--nnodes > 1 needs --rdzv-endpoint HOST:PORT (the same on every node)")
        cmd += [f"--nnodes={nnodes}", "--rdzv-backend=c10d",
                f"--rdzv-endpoint={rdzv_endpoint}"]
    else:
        cmd += ["--standalone"]
    return cmd + ["-m", module, *args]


def torchrun_command(run_dir: Path, run_id: str, nproc: int, device: str, resume: bool = False,
                     checkpoints: bool = True, **multi_node) -> list[str]:
    args = ["--run-dir", str(run_dir), "--run-id", run_id, "--device", device] + (["--resume"] if resume else [])
    args += [] if checkpoints else ["--no-checkpoints"]
    return torchrun("gptablate.train.worker", args, nproc, **multi_node)


def worker_env(nproc: int) -> dict:
    """The environment of torchrun workers: this very gptablate on the path, threads shared out."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def launch_distributed(run_dir: Path, run_id: str, nproc: int, device: str, resume: bool = False,
                       checkpoints: bool = True, **multi_node) -> int:
    """Run torchrun; a user error on any rank comes back as UserError (one line, exit 2)."""
    return run_ranks(torchrun_command(run_dir, run_id, nproc, device, resume=resume, checkpoints=checkpoints,
                                      **multi_node), nproc, run_dir / WORKER_ERROR)


def run_ranks(cmd: list[str], nproc: int, error_file: Path) -> int:
    """Run a torchrun command line to its end; the user error a rank wrote to error_file (`tell_launcher`) comes back
    as UserError, its one line printed once however many ranks stopped on it."""
    error_file.unlink(missing_ok=True)
    rc = subprocess.run(cmd, env=worker_env(nproc)).returncode
    if rc != 0 and error_file.is_file():
        message = error_file.read_text().strip()
        error_file.unlink()
        raise UserError(message)
    return rc


def tell_launcher(error_file: Path, e: UserError) -> None:
    """A rank's user error, for `run_ranks` to print (every rank that stops on it writes the same line); printed
    here where it cannot be written."""
    try:
        atomic_write_text(error_file, str(e))
    except OSError:
        print(f"error: {e}", file=sys.stderr)
