"""A 2-rank gloo DDP run gives the per-step losses of a 1-rank run at the same batch_size."""

import json

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
