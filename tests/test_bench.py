"""`gptablate bench`: the engine's real step and the reference step, timed; JSON rows as specified."""

import json

from conftest import run_cli


def test_bench_prints_a_table_and_writes_json_rows(tmp_path):
    out = tmp_path / "bench.json"
    p = run_cli("bench", "tiny", "--device", "cpu", "--steps", "2", "--reference", "--json", str(out),
                env={"GPTABLATE_RUNS": str(tmp_path / "runs"), "GPTABLATE_DATA": str(tmp_path / "nodata")}, check=True)
    assert "tokens/s" in p.stdout and "reference" in p.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == 2 and rows[0]["recipe"] == "tiny"
    for row in rows:
        assert {"recipe", "tokens_per_s", "step_ms", "mfu", "peak_mem_gib"} <= set(row)
        assert row["tokens_per_s"] > 0 and row["step_ms"] > 0 and 0 < row["mfu"]
    assert abs(rows[0]["vs_reference"] - rows[0]["tokens_per_s"] / rows[1]["tokens_per_s"]) < 1e-9
    assert 0 < rows[0]["slowest_window_tokens_per_s"] <= rows[0]["tokens_per_s"] and rows[0]["gc_ms"] >= 0
    assert rows[0]["first_window_s"] > 0
    assert "slowest window" in p.stdout and "gc ms" in p.stdout
    assert not (tmp_path / "runs").exists()  # synthetic data and a scratch runs folder: nothing recorded
    finished = [l for l in p.stderr.splitlines() if l.startswith("finished:")]  # the run's log
    assert finished and "checkpoint" not in finished[0]  # its runs are thrown away: no checkpoint written


def test_bench_on_two_gloo_ranks(tmp_path):
    out = tmp_path / "bench2.json"
    p = run_cli("bench", "tiny", "--device", "cpu", "--steps", "2", "--gpus", "2", "--set", "train.batch_size=16",
                "--json", str(out), env={"GPTABLATE_RUNS": str(tmp_path / "runs")}, check=True)
    (row,) = json.loads(out.read_text())
    assert row["gpus"] == 2 and row["tokens_per_s"] > 0 and row["recipe"] == "tiny[train.batch_size=16]"
    finished = [l for l in p.stderr.splitlines() if l.startswith("finished:")]  # rank 0's log
    assert finished and "checkpoint" not in finished[0]  # the ranks were told to write none


def test_train_without_checkpoints_writes_none(prepared_corpus, tmp_path, monkeypatch):
    """bench's runs (train(..., checkpoints=False)): metrics, no resumable state, no final checkpoint; and the
    flag reaches torchrun's ranks."""
    from gptablate.recipe import load_recipe
    from gptablate.train.engine import CHECKPOINT, METRICS, train
    from gptablate.train.checkpoint import STATE_DIR
    from gptablate.train.launch import torchrun_command

    monkeypatch.setenv("GPTABLATE_DATA", str(prepared_corpus))
    monkeypatch.setenv("GPTABLATE_RUNS", str(tmp_path / "runs"))
    recipe = load_recipe("tiny", ["train.max_iters=2", "train.log_interval=1", "data.eval_interval=2",
                                  "train.checkpoint_interval=1", "train.micro_batch=4", "model.n_layer=1",
                                  "model.n_embd=32", "model.n_head=2", "model.block_size=32", "data.dataset=corpus",
                                  "data.eval_tokens=4096"])
    run_dir = tmp_path / "runs" / "r"
    summary = train(recipe, run_dir, "r", "cpu", checkpoints=False)
    assert summary["step"] == 2 and len((run_dir / METRICS).read_text().splitlines()) == 2
    assert not (run_dir / CHECKPOINT).exists() and not any((run_dir / STATE_DIR).glob("*"))
    assert "--no-checkpoints" in torchrun_command(run_dir, "r", 2, "cpu", checkpoints=False)
    assert "--no-checkpoints" not in torchrun_command(run_dir, "r", 2, "cpu")


def test_bench_scaling_keeps_the_per_gpu_batch_and_gives_efficiency(tmp_path):
    out = tmp_path / "scaling.json"
    env = {"GPTABLATE_RUNS": str(tmp_path / "runs")}
    p = run_cli("bench", "tiny", "--device", "cpu", "--steps", "2", "--scaling", "2,1", "--set", "train.batch_size=8",
                "--json", str(out), env=env, check=True)
    one, two = json.loads(out.read_text())
    assert (one["gpus"], two["gpus"]) == (1, 2) and one["per_gpu_batch"] == two["per_gpu_batch"] == 8
    assert one["recipe"] == "tiny[train.batch_size=8]" and two["recipe"] == "tiny[train.batch_size=16]"
    assert one["efficiency"] == 1.0
    assert abs(two["efficiency"] - two["tokens_per_s"] / (2 * one["tokens_per_s"])) < 1e-9
    assert "efficiency" in p.stdout and "per-GPU batch" in p.stdout
    for bad, message in ((["--scaling", "1,x"], "give GPU counts separated by commas"),
                         (["--scaling", "0,1"], "give GPU counts separated by commas"),
                         (["--scaling", "1,2", "--gpus", "2"], "leave out --gpus"),
                         (["--scaling", "1,2", "--all-variants"], "do not combine")):
        r = run_cli("bench", "tiny", *bad, env=env)
        assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, (bad, r.stderr)


def test_bench_tokenize_compares_prepare_text_with_tiktoken(tmp_path):
    from conftest import write_corpus

    write_corpus(tmp_path / "text", n_files=4)
    out = tmp_path / "tok.json"
    p = run_cli("bench", "--tokenize", str(tmp_path / "text"), "--json", str(out), check=True)
    assert "x tiktoken" in p.stdout
    tiktoken_row, ours = json.loads(out.read_text())
    assert tiktoken_row["tokens"] == ours["tokens"] > 0
    assert abs(ours["vs_tiktoken"] - tiktoken_row["seconds"] / ours["seconds"]) < 1e-9


def test_bench_variant_rows_are_a_chosen_subset_with_ratios(tmp_path):
    out = tmp_path / "variants.json"
    env = {"GPTABLATE_RUNS": str(tmp_path / "runs")}
    done = run_cli("bench", "tiny", "--device", "cpu", "--steps", "1", "--all-variants", "--variant",
                   "residual=attnres", "--set", "model.n_layer=1", "--json", str(out), env=env, check=True)
    rows = json.loads(out.read_text())
    assert [r["variant"] for r in rows] == ["baseline", "residual=attnres"]
    assert rows[0]["step_ratio"] == 1.0 and rows[1]["step_ratio"] > 0
    # each row is reported as it is timed (a long table stopped part way keeps what it has)
    said = [line for line in done.stderr.splitlines() if line.startswith("bench row ")]
    assert len(said) == 2
    assert said[0].startswith(f"bench row 1 of 2: baseline: {rows[0]['step_ms']:.2f} ms a step, 1.000x the baseline's")
    assert said[1].startswith(f"bench row 2 of 2: residual=attnres: {rows[1]['step_ms']:.2f} ms a step, "
                              f"{rows[1]['step_ratio']:.3f}x the baseline's")
    assert rows[1]["recipe"] == "tiny[model.n_layer=1,arch.residual=attnres]"
    bad = run_cli("bench", "tiny", "--all-variants", "--variant", "residual=hyperz", env=env)
    assert bad.returncode == 2 and "choose from" in bad.stderr and "residual=hyper," in bad.stderr
    alone = run_cli("bench", "tiny", "--variant", "residual=hyper", env=env)
    assert alone.returncode == 2 and "add --all-variants" in alone.stderr


def test_collector_clock_times_collections_and_freezes_the_heap_until_it_closes():
    import gc

    from gptablate.train.heap import CollectorClock

    gc.unfreeze()
    with CollectorClock() as clock:
        cycles = []
        for _ in range(2000):  # garbage only the cyclic collector can free
            a = []
            a.append(a)
            cycles.append(a)
        del cycles, a
        clock.settle()
        assert clock.collections >= 1 and gc.get_freeze_count() > 0  # the survivors are frozen
        assert clock.take() > 0 and clock.take() == 0.0  # take() empties the count
        gc.collect(0)
        assert clock.collections >= 2
        clock.pause()
        assert not gc.isenabled()
        clock.settle()
        assert gc.isenabled()
        clock.pause()  # left paused: closing turns collection back on
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0  # closing unfreezes what the run froze
    assert clock._on_gc not in gc.callbacks
