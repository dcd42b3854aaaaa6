"""Shared fixtures: isolated data/runs roots, the real shared data, a written corpus."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GPTABLATE_SHARED_DATA", REPO.parent / "shared" / "data"))
SHARED_BPE = SHARED_DATA / "tokenizer" / "gpt2.tiktoken"


def pytest_configure(config):
    # Offline machines: use the shared ranks file when set-up has not cached one.
    from gptablate.data.tokenizer import cached_ranks_path

    if not os.environ.get("GPTABLATE_BPE_FILE") and not cached_ranks_path().is_file() and SHARED_BPE.is_file():
        os.environ["GPTABLATE_BPE_FILE"] = str(SHARED_BPE)


def shared(relpath: str) -> Path:
    p = SHARED_DATA / relpath
    if not p.is_file():
        pytest.skip(f"shared data file {p} not present")
    return p


@pytest.fixture
def roots(tmp_path, monkeypatch):
    """Fresh $GPTABLATE_DATA and $GPTABLATE_RUNS for one test."""
    data, runs = tmp_path / "data", tmp_path / "runs"
    monkeypatch.setenv("GPTABLATE_DATA", str(data))
    monkeypatch.setenv("GPTABLATE_RUNS", str(runs))
    return data, runs


WORDS = ("the cat dog bird sat ran flew on under over a mat log tree quickly slowly and then "
         "because it was warm cold day night red blue green small big").split()


def write_corpus(folder: Path, n_files: int = 12, sentences: int = 300, seed: int = 0) -> list[Path]:
    """Text with learnable structure: sentences from a small vocabulary and grammar."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for i in range(n_files):
        lines = []
        for _ in range(sentences):
            subj, verb, prep, obj = rng.choice(WORDS[1:4]), rng.choice(WORDS[4:7]), rng.choice(WORDS[7:10]), rng.choice(WORDS[11:14])
            lines.append(f"The {subj} {verb} {prep} the {obj}, {rng.choice(WORDS[14:16])}.")
        p = folder / f"doc_{i:03d}.txt"
        p.write_text("\n".join(lines) + "\n")
        files.append(p)
    return files


def run_cli(*args: str, env: dict | None = None, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real console entry point in a child process (exit codes and stderr as a user sees them)."""
    proc = subprocess.run([sys.executable, "-m", "gptablate_cli.main", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"gptablate {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def results_table(runs_root: Path):
    """A real results table at runs_root/results.sqlite, for runs written with record_run."""
    from gptablate.results.store import ResultStore

    return ResultStore(runs_root / "results.sqlite")


def record_run(store, run_id: str, overrides=(), seed: int = 1, evals=(), folder: Path | None = None, **fields):
    """A run of the tiny recipe (with the overrides and seed) in a results table without training it: finished at step
    200 and 204,800 tokens unless fields say otherwise; evals: (task, metric, value[, stderr[, samples]]) each."""
    from gptablate.recipe import load_recipe

    recipe = load_recipe("tiny", [f"train.seed={seed}", *overrides])
    store.start_run(run_id, recipe, 1, "cpu", folder or store.path.parent / run_id, None)
    store.update_run(run_id, **{"status": "finished", "step": 200, "tokens": 204800, **fields})
    for e in evals:
        store.add_eval(run_id, *e)


@pytest.fixture(scope="session")
def prepared_corpus(tmp_path_factory):
    """A written corpus prepared once into a data root shared by the slower tests."""
    from gptablate.data.prepare_text import prepare_text

    base = tmp_path_factory.mktemp("corpus")
    write_corpus(base / "text")
    data = base / "data"
    prepare_text([base / "text"], "corpus", data, val_tokens=20_000, workers=1)
    return data


# Small enough for a few dozen steps in seconds on 2 cores.
TINY = ["--set", "model.n_layer=2", "--set", "model.n_embd=32", "--set", "model.n_head=2",
        "--set", "model.block_size=32", "--set", "data.dataset=corpus", "--set", "data.eval_tokens=4096"]
