"""prepare text -> train -> eval -> compare through the real console entry point."""

import json
import sqlite3

import pandas as pd
import pytest

from conftest import TINY, run_cli, write_corpus


def test_prepare_train_eval_compare(tmp_path, roots):
    data, runs = roots
    write_corpus(tmp_path / "text")
    p = run_cli("prepare", "text", str(tmp_path / "text"), "--name", "corpus", "--val-tokens", "20000", check=True)
    assert "validation 20,000 tokens" in p.stderr

    args = ["train", "tiny", *TINY, "--set", "train.max_iters=40", "--set", "train.log_interval=5",
            "--set", "data.eval_interval=20", "--set", "train.lr=1e-2", "--device", "cpu"]
    t = run_cli(*args, check=True)
    assert "# resolved recipe" in t.stdout and "dataset: corpus" in t.stdout

    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(5, 41, 5))
    for key in ("tokens", "train_loss", "lr", "tokens_per_s", "mfu"):
        assert key in rows[0]
    assert rows[0]["tokens"] == 5 * 8 * 32
    vals = [r["val_loss"] for r in rows if "val_loss" in r]
    assert len(vals) == 2 and vals[1] < vals[0] < 10.8  # ln(50257) = 10.8 at init
    assert rows[-1]["train_loss"] < rows[0]["train_loss"] - 1.0  # the loss falls
    assert (run_dir / "checkpoint.pt").is_file() and (run_dir / "recipe.yaml").is_file()
    assert "finished" in (run_dir / "log.txt").read_text()

    conn = sqlite3.connect(runs / "results.sqlite")
    row = conn.execute("SELECT run_id, arm, status, val_loss, tokens, world_size FROM runs").fetchone()
    assert row[0] == run_dir.name and row[2] == "finished"
    assert row[1].startswith("tiny[model.n_layer=2") and abs(row[3] - vals[-1]) < 1e-9
    assert row[4] == 40 * 8 * 32 and row[5] == 1

    e = run_cli("eval", run_dir.name[:20], "--tasks", "val", "--device", "cpu", "--format", "json", check=True)
    (result,) = json.loads(e.stdout)
    assert result["run_id"] == run_dir.name and abs(result["value"] - vals[-1]) < 1e-5

    c = run_cli("compare", "--by", "run", "--format", "csv", check=True)
    from io import StringIO
    frame = pd.read_csv(StringIO(c.stdout))
    assert {"run_id", "run_name", "arm", "seed", "world_size", "val_loss", "status"} <= set(frame.columns)
    assert frame.loc[0, "run_id"] == run_dir.name and frame.loc[0, "status"] == "finished"

    # a second arm at another learning rate: two rows in the leaderboard, Δ against the first
    run_cli(*args[:-4], "--set", "train.lr=5e-4", "--device", "cpu", check=True)
    board = json.loads(run_cli("compare", "--format", "json", check=True).stdout)
    assert len(board) == 2 and board[0]["val_loss"] < board[1]["val_loss"]
    from gptablate.model.gpt import GPT, GPTConfig
    from gptablate.recipe import load_recipe

    model = GPT(GPTConfig.from_recipe(load_recipe("tiny", [s for s in args[2:-2] if s != "--set"])))
    assert [b["n_params"] for b in board] == [model.num_params()] * 2  # the nanoGPT count the run's log gives
    assert f"{model.num_params() / 1e6:.2f}M" in run_cli("compare", check=True).stdout
    assert {b["arm"].split("train.lr=")[1].rstrip("]") for b in board} == {"0.01", "0.0005"}
    base = [b for b in board if b["delta"] == 0.0]
    assert len(base) == 1
    table = run_cli("compare", check=True).stdout
    assert table.count("tiny[model.n_layer=2") >= 2  # both rows (and the caption): labels survive rich markup
    md = run_cli("compare", "--format", "markdown", check=True).stdout
    assert md.startswith("| # | arm |") and "Δ is against the baseline arm" in md


@pytest.mark.parametrize("args, needle", [
    (["train", "tiny", "--set", "train.lrr=1"], "did you mean 'train.lr'"),
    (["train", "tiny", "--set", "data.dataset=nowhere", "--device", "cpu"], "nowhere"),
    (["train", "no_such_recipe"], "recipe 'no_such_recipe' not found"),
    (["train", "tiny", "--gpus", "3", "--device", "cpu"], "cannot be split over 3 ranks"),
    (["compare", "--format", "xml"], "--format 'xml'"),
    (["eval", "not-a-run"], "neither a checkpoint file nor a run"),
    (["eval", "not-a-run", "--batch-size", "0"], "--batch-size must be at least 1"),  # 0 had meant the default
    (["eval", "not-a-run", "--gpus", "0"], "--gpus must be at least 1"),
])
def test_user_errors_are_one_line_and_exit_2(roots, args, needle):
    p = run_cli(*args)
    assert p.returncode == 2, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr


def test_commands_that_need_no_model_start_without_torch_and_the_exit_skips_the_final_collection(roots):
    """Every command registers with the CLI without importing torch or pandas (each loads what it uses when it runs):
    `--help` loads neither and `compare` only pandas; the process's last act is to freeze the heap
    (heap.freeze_for_exit), a user error's exit included."""
    import subprocess
    import sys

    probe = ("import atexit, gc, sys\n"
             "atexit.register(lambda: print('frozen' if gc.get_freeze_count() else 'not frozen', "
             "sorted(m for m in ('torch', 'pandas') if m in sys.modules)))\n"
             "from gptablate_cli.main import main\n"
             "sys.argv = ['gptablate'] + sys.argv[1:]\n"
             "main()\n")
    p = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and "train" in p.stdout, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "frozen []", p.stdout[-300:]
    p = subprocess.run([sys.executable, "-c", probe, "compare", "--format", "csv"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip().splitlines()[-1] == "frozen ['pandas']", p.stdout[-300:]  # compare's own frame library
    p = subprocess.run([sys.executable, "-c", probe, "compare", "--format", "xml"], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2 and p.stdout.strip().splitlines()[-1] == "frozen []", (p.stdout, p.stderr)
