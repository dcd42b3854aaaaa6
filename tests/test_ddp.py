"""A 2-rank gloo DDP run gives the per-step losses of a 1-rank run at the same batch_size; two nodes train one run."""

import json
import os
import socket
import sqlite3
import subprocess
import sys

from conftest import TINY, run_cli


def _losses(run_dir):
    return [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _runs_by_name(runs_root, names):
    """{run.name: its run folder} for the runs under runs_root, each named one of names."""
    found = {}
    for d in runs_root.iterdir():
        if d.is_dir():
            text = (d / "recipe.yaml").read_text()
            found[next(n for n in names if f"name: {n}" in text)] = d
    return found


def test_two_ranks_match_one_rank(prepared_corpus, tmp_path):
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    common = ["train", "tiny", *TINY, "--set", "train.max_iters=8", "--set", "train.log_interval=1",
              "--set", "data.eval_interval=4", "--device", "cpu"]
    run_cli(*common, "--set", "run.name=one", "--set", "train.micro_batch=4", env=env, check=True)
    # two ranks, and a different micro-batch (2 x 2 accumulation steps per rank); gradients as
    # views into DDP's buckets (the default), and copied into many small buckets
    run_cli(*common, "--set", "run.name=two", "--set", "train.micro_batch=2", "--gpus", "2", env=env, check=True)
    run_cli(*common, "--set", "run.name=copied", "--set", "train.micro_batch=2", "--set", "train.ddp_bucket_view=false",
            "--set", "train.ddp_bucket_mb=1", "--gpus", "2", env=env, check=True)
    by_name = {name: _losses(d) for name, d in _runs_by_name(tmp_path / "runs", ("two", "copied", "one")).items()}
    one = by_name["one"]
    for other in (by_name["two"], by_name["copied"]):
        assert [r["step"] for r in one] == [r["step"] for r in other] == list(range(1, 9))
        for a, b in zip(one, other):
            assert abs(a["train_loss"] - b["train_loss"]) < 1e-4, (a, b)
            assert ("val_loss" in a) == ("val_loss" in b)
            if "val_loss" in a:
                assert abs(a["val_loss"] - b["val_loss"]) < 1e-4
    assert one[-1]["train_loss"] < one[0]["train_loss"]
    board = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    assert sorted(r["world_size"] for r in board) == [1, 2, 2]
    assert len({r["arm"] for r in board}) == 1  # rank count and micro-batch do not make a new arm


def test_compiled_ranks_split_or_whole_graph(prepared_corpus, tmp_path):
    """Compiled under DDP: dynamo's graph cut at the buckets (train.ddp_graph=split) and one whole graph (what auto
    takes for a small model on one node) train the same losses as the uncompiled ranks, and validate to the same
    loss (compiled, through the training graph; uncompiled, in eval mode)."""
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    common = ["train", "tiny", *TINY, "--set", "train.max_iters=4", "--set", "train.log_interval=1",
              "--set", "data.eval_interval=4", "--set", "train.micro_batch=2", "--set", "train.ddp_bucket_mb=1",
              "--device", "cpu", "--gpus", "2"]
    for graph in ("split", "auto"):
        run_cli(*common, "--set", f"run.name={graph}", "--set", f"train.ddp_graph={graph}",
                "--set", "train.compile=true", env=env, check=True)
    run_cli(*common, "--set", "run.name=eager", "--set", "train.compile=false", env=env, check=True)
    by_name = {}
    logged = {"split": "compile=True (DDP graph: split)", "auto": "compile=True (DDP graph: whole by auto)",
              "eager": "compile=False,"}
    for name, d in _runs_by_name(tmp_path / "runs", ("split", "auto", "eager")).items():
        by_name[name] = _losses(d)
        assert logged[name] in (d / "log.txt").read_text()
    split, whole, eager = by_name["split"], by_name["auto"], by_name["eager"]
    assert [r["step"] for r in split] == [r["step"] for r in whole] == [r["step"] for r in eager] == [1, 2, 3, 4]
    for a, b, c in zip(split, whole, eager):
        assert abs(a["train_loss"] - c["train_loss"]) < 1e-4 and abs(b["train_loss"] - c["train_loss"]) < 1e-4, (a, b, c)
    assert "val_loss" in split[-1] and "val_loss" in whole[-1] and "val_loss" in eager[-1]
    for r in (split[-1], whole[-1]):
        assert abs(r["val_loss"] - eager[-1]["val_loss"]) < 1e-4, (r, eager[-1])
    assert split[-1]["train_loss"] < split[0]["train_loss"]


def _two_nodes(env, node_args, timeout=300):
    """`gptablate train` started on two "nodes" at once (two processes of this machine meeting at one c10d
    rendezvous), each with its own arguments: [(exit status, stdout, stderr)] in the order given."""
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, "-m", "gptablate_cli.main", *args, "--device", "cpu", "--nnodes", "2",
                               "--rdzv-endpoint", f"127.0.0.1:{port}"], env={**os.environ, **env},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in node_args]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
        return [(p.returncode, *output) for p, output in zip(procs, outputs)]
    finally:
        for p in procs:
            p.kill()


def test_two_nodes_train_one_run(prepared_corpus, tmp_path):
    """Each node's `train` makes a run folder before the ranks meet, and the rendezvous, not the order of start,
    decides which node holds rank 0: both nodes name rank 0's run, and its folder is the only one left."""
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}  # a shared runs folder
    args = ["train", "tiny", *TINY, "--set", "train.max_iters=4", "--set", "train.micro_batch=2",
            "--set", "data.eval_interval=4"]
    results = _two_nodes(env, [args, args])
    for code, out, err in results:
        assert code == 0, err
        assert "Traceback" not in err, err
    named = [out.strip().splitlines()[-1] for _, out, _ in results]
    (run,) = [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]
    assert named == [f"run {run.name} finished: {run}"] * 2, named
    assert (run / "checkpoint.pt").is_file()
    with sqlite3.connect(tmp_path / "runs" / "results.sqlite") as db:
        assert db.execute("SELECT run_id, status, world_size FROM runs").fetchall() == [(run.name, "finished", 2)]


def test_nodes_started_with_different_recipes_stop_with_one_line(prepared_corpus, tmp_path):
    """Ranks built from different recipes would wait on each other for ever: every node stops with exit status 2 and
    one line naming the keys that differ, torchrun's traceback unsaid, and leaves no run folder or row behind."""
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    args = ["train", "tiny", *TINY, "--set", "train.max_iters=4", "--set", "train.micro_batch=2"]
    for code, out, err in _two_nodes(env, [args, [*args, "--set", "train.lr=0.001"]]):
        assert code == 2, err
        assert "Traceback" not in err and "ChildFailedError" not in err, err
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, err
        assert "differs from rank 0's" in errors[0] and "train.lr" in errors[0], errors
        assert "same RECIPE and --set" in errors[0]
    assert not [d for d in (tmp_path / "runs").iterdir() if d.is_dir()]
    with sqlite3.connect(tmp_path / "runs" / "results.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
