"""`compare`'s terminal table: it fits the terminal it is shown in, says what it left out, and off a terminal (a pipe,
a log) shows every column with every label on one line."""

from __future__ import annotations

import csv
import io
import os
import pty
import subprocess
import sys

from rich.text import Text

from conftest import record_run, results_table, run_cli

LONG = ["train.lr=0.004", "train.weight_decay=0.05", "arch.norm=rmsnorm"]


def write_runs(tmp_path) -> dict:
    """Two arms of two seeds in a real results table, the baseline's first run with the headline metrics."""
    store = results_table(tmp_path / "runs")
    for overrides, loss in (([], 5.0), (LONG, 4.9)):
        for seed in (1, 2):
            record_run(store, f"{'long' if overrides else 'base'}-{seed}", overrides, seed, val_loss=loss + seed / 100)
    for task, metric, value in (("wikitext2", "word_perplexity", 512.5), ("lambada", "perplexity", 900.25),
                                ("lambada", "acc", 12.5), ("hellaswag", "acc_norm", 27.0), ("arc_easy", "acc", 40.0),
                                ("piqa", "acc", 60.0), ("winogrande", "acc", 51.0)):
        store.add_eval("base-1", task, metric, value)
    return {"GPTABLATE_RUNS": str(tmp_path / "runs")}


def on_a_terminal(args: list[str], env: dict, columns: int) -> str:
    """What the CLI shows on a terminal COLUMNS wide (a pseudo-terminal), its colours taken off."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "gptablate_cli.main", *args], stdout=follower,
                            stderr=subprocess.PIPE, env={**os.environ, **env, "COLUMNS": str(columns), "TERM": "xterm"})
    os.close(follower)
    out = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        out += chunk
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    return Text.from_ansi(out.decode().replace("\r\n", "\n")).plain


def test_terminal_table_fits_its_width_and_names_what_it_left_out(tmp_path):
    env = write_runs(tmp_path)
    long_arm = "tiny[" + ",".join(LONG) + "]"
    piped = run_cli("compare", env=env, check=True).stdout
    rows = [line for line in piped.splitlines() if "tiny" in line and "│" in line]
    assert len(rows) == 2 and long_arm in rows[0] and "left out" not in piped  # whole labels, one line each
    assert "winogrande" in piped and "512.50" in piped and "900.25" in piped

    for columns in (100, 140):
        shown = on_a_terminal(["compare"], env, columns)
        lines = shown.rstrip("\n").splitlines()
        assert max(map(len, lines)) <= columns, shown
        # the label folds, keeping its first 36 characters on one line
        assert any(long_arm[:36] in line for line in lines), shown
        assert "verdict" in shown and "better" in shown and "4.9150" in shown
        left_out = " ".join(lines[lines.index(next(x for x in lines if x.startswith("left out"))):])
        assert "winogrande acc" in left_out and "--format markdown or csv has every column" in left_out
        assert "winogrande" not in shown.split("left out")[0]  # left out of the table, not cut short in it
    wide = on_a_terminal(["compare"], env, 320)
    assert "left out" not in wide and "winogrande" in wide and any(long_arm in line for line in wide.splitlines())

    runs = on_a_terminal(["compare", "--by", "run"], env, 100)
    assert max(map(len, runs.splitlines())) <= 100 and "base-1" in runs and "left out" in runs


def test_metrics_over_different_numbers_of_examples_are_flagged(tmp_path):
    """A run scored with `eval --limit` beside runs scored in full: the leaderboard says so under the table and in
    markdown, and the runs' csv carries each metric's sample count; a fuller figure is never replaced by a smaller."""
    env = write_runs(tmp_path)
    store = results_table(tmp_path / "runs")
    for rid in ("base-1", "base-2", "long-1", "long-2"):
        assert store.add_eval(rid, "piqa", "acc", 60.0, 1.0, samples=1838) is None
    assert store.add_eval("long-2", "piqa", "acc", 75.0, 9.0, samples=40) == 1838  # kept: the fuller figure
    assert run_cli("compare", "--format", "markdown", env=env, check=True).stdout.count("different numbers") == 0
    with store._write() as conn:  # a table written before the rule, or by hand: a smaller figure stands beside
        conn.execute("UPDATE evals SET value = 75, samples = 40 WHERE run_id = 'long-2' AND task = 'piqa'")
    note = "piqa acc: runs scored over different numbers of examples (40 to 1,838; `eval --limit`)"
    assert note in run_cli("compare", "--format", "markdown", env=env, check=True).stdout
    assert note in run_cli("compare", env=env, check=True).stdout
    runs = csv.DictReader(io.StringIO(run_cli("compare", "--by", "run", "--format", "csv", env=env,
                                              check=True).stdout))
    counts = {row["run_id"]: row["piqa_acc_samples"] for row in runs}
    assert counts == {"base-1": "1838", "base-2": "1838", "long-1": "1838", "long-2": "40"}


def test_arms_ranked_by_an_evaluation_metric_and_means_over_some_runs_marked(tmp_path):
    """--metric ranks the arms by an evaluation metric and takes the paired Δ in it, a higher accuracy and a lower
    perplexity being better; an arm's figure taken over only some of its finished runs is marked and explained;
    --deltas gives every metric's Δ and verdict at once."""
    import json
    import statistics

    from gptablate.results.stats import paired

    store = results_table(tmp_path / "runs")
    # the lr arm is worse by val loss and better by HellaSwag and WikiText-2; arc_easy scored one base run only
    loss = {"base": [5.00, 5.10, 4.95], "lr": [5.05, 5.16, 5.00]}
    acc = {"base": [27.0, 28.5, 26.0], "lr": [29.0, 30.0, 28.4]}
    ppl = {"base": [500.0, 520.0, 490.0], "lr": [480.0, 490.0, 475.0]}
    for arm, overrides in (("base", []), ("lr", ["train.lr=0.004"])):
        for i, seed in enumerate((1, 2, 3)):
            record_run(store, f"{arm}-{seed}", overrides, seed, val_loss=loss[arm][i],
                       evals=[("hellaswag", "acc_norm", acc[arm][i], 1.0, 10042),
                              ("wikitext2", "word_perplexity", ppl[arm][i], None, 62)])
    store.add_eval("base-1", "arc_easy", "acc", 40.0, 2.0, samples=2376)
    env = {"GPTABLATE_RUNS": str(tmp_path / "runs")}
    arms = lambda *a: {r["arm"]: r for r in json.loads(run_cli("compare", "--format", "json", *a, env=env,
                                                                check=True).stdout)}

    by_loss = arms()
    assert by_loss["tiny"]["rank"] == 1 and by_loss["tiny[train.lr=0.004]"]["verdict"] == "worse"
    assert by_loss["tiny"]["arc_easy_acc"] == 40.0 and by_loss["tiny"]["arc_easy_acc_runs"] == 1
    assert by_loss["tiny"]["finished"] == 3 and by_loss["tiny"]["hellaswag_acc_norm_runs"] == 3

    by_acc = arms("--metric", "hellaswag_acc_norm")
    lr = by_acc["tiny[train.lr=0.004]"]
    mean, se, p = paired([a - b for a, b in zip(acc["lr"], acc["base"])])
    assert lr["rank"] == 1 and by_acc["tiny"]["rank"] == 2 and lr["verdict"] == "better" and p < 0.05
    assert abs(lr["delta"] - mean) < 1e-9 and abs(lr["delta_stderr"] - se) < 1e-9 and abs(lr["p_value"] - p) < 1e-8
    assert abs(lr["hellaswag_acc_norm_std"] - statistics.stdev(acc["lr"])) < 1e-9 and lr["runs"] == 3
    by_ppl = arms("--metric", "wikitext2_word_perplexity")["tiny[train.lr=0.004]"]
    assert by_ppl["rank"] == 1 and by_ppl["verdict"] == "better" and by_ppl["delta"] < 0
    by_arc = arms("--metric", "arc_easy_acc")  # the lr arm has no figure: listed, not ranked
    assert by_arc["tiny"]["rank"] == 1 and by_arc["tiny"]["runs"] == 1
    assert by_arc["tiny[train.lr=0.004]"]["rank"] is None

    md = run_cli("compare", "--format", "markdown", "--metric", "hellaswag_acc_norm", env=env, check=True).stdout
    rows = [line for line in md.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert "tiny[train.lr=0.004]" in rows[0] and "| 29.13 | 0.81 |" in rows[0]  # the ranked metric and its spread
    assert "| 40.00* |" in rows[1] and "27.17*" not in rows[1]  # arc_easy over one of three runs, marked
    assert "Δ in hellaswag acc norm is against the baseline arm `tiny`" in md
    assert "*: a mean over only those of the arm's finished runs that were evaluated on the task" in md
    assert "*: a mean" not in run_cli("compare", "--format", "markdown", "--tag", "x", env=env, check=True).stdout

    shown = on_a_terminal(["compare", "--metric", "hellaswag_acc_norm"], env, 100)
    assert "29.13" in shown and "left out" in shown  # narrow: other columns go, the ranked metric stays
    runs = json.loads(run_cli("compare", "--by", "run", "--metric", "hellaswag_acc_norm", "--format", "json",
                              env=env, check=True).stdout)
    assert [r["hellaswag_acc_norm"] for r in runs] == sorted(acc["base"] + acc["lr"], reverse=True)

    # --deltas: every metric at once, the baseline's row with its own figures, Δ marked by its verdict
    md = run_cli("compare", "--deltas", "--format", "markdown", env=env, check=True).stdout
    base_row, lr_row = [line for line in md.splitlines() if line.startswith("| 1 ") or line.startswith("| 2 ")]
    assert base_row.startswith("| 1 | tiny | 3 | 5.0167 | 503.33 | 27.17 | 40.00 |")
    assert lr_row.startswith("| 2 | tiny[train.lr=0.004] | 3 | +0.0533 ✗ | -21.67 ✓ | +1.97 ✓ |  |")
    assert "✓ better, ✗ worse at p < 0.05 (paired t-test over the seeds both share)" in md
    wide = {r["arm"]: r for r in json.loads(run_cli("compare", "--deltas", "--format", "json", env=env,
                                                    check=True).stdout)}["tiny[train.lr=0.004]"]
    for m, verdict in (("val_loss", "worse"), ("hellaswag_acc_norm", "better"),
                       ("wikitext2_word_perplexity", "better")):
        single = arms("--metric", m)["tiny[train.lr=0.004]"]  # the same figures as ranking by that metric alone
        assert wide[f"{m}_verdict"] == single["verdict"] == verdict and wide[f"{m}_delta"] == single["delta"]
        assert wide[f"{m}_p_value"] == single["p_value"]
    assert wide["arc_easy_acc"] is None and wide["arc_easy_acc_verdict"] == ""  # no figure, no Δ
    refused = run_cli("compare", "--deltas", "--by", "run", env=env)
    assert refused.returncode == 2 and refused.stderr.strip() == (
        "error: --deltas compares arms with their baseline: give it without --by run")

    for bad in ("hellaswag", "tokens", "piqa_acc"):
        refused = run_cli("compare", "--metric", bad, env=env)
        assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
            f"error: --metric {bad!r}: no run has it; use one of val_loss, arc_easy_acc, hellaswag_acc_norm, "
            "wikitext2_word_perplexity"]


def test_a_seed_trained_twice_counts_once_in_its_arms_mean_and_spread(tmp_path):
    """An arm's mean and std are over seeds, each seed the mean of its runs, as its paired Δ is: a rerun of one seed
    (a GPU does not repeat a run bit for bit) used to weigh that seed twice, so the arms' means differed by other than
    Δ."""
    import json
    import statistics

    store = results_table(tmp_path / "runs")
    for rid, overrides, seed, loss, acc in (("base-1", [], 1, 5.00, 27.0), ("base-2", [], 2, 5.10, 29.0),
                                            ("base-1-again", [], 1, 5.02, 28.0),
                                            ("lr-1", ["train.lr=0.004"], 1, 5.05, 30.0),
                                            ("lr-2", ["train.lr=0.004"], 2, 5.16, 31.0)):
        record_run(store, rid, overrides, seed, val_loss=loss, evals=[("hellaswag", "acc_norm", acc, 1.0, 10042)])
    arms = {r["arm"]: r for r in json.loads(run_cli("compare", "--format", "json", env={"GPTABLATE_RUNS": str(
        tmp_path / "runs")}, check=True).stdout)}
    base, lr = arms["tiny"], arms["tiny[train.lr=0.004]"]
    assert base["runs"] == 3 and base["seeds"] == "1,2"
    assert abs(base["val_loss"] - 5.055) < 1e-9  # the json's figures: 10 significant digits
    assert abs(base["val_loss_std"] - statistics.stdev([5.01, 5.10])) < 1e-9
    assert abs(base["hellaswag_acc_norm"] - 28.25) < 1e-9  # seed 1: (27 + 28) / 2, seed 2: 29
    assert abs(lr["delta"] - 0.05) < 1e-9 and abs(lr["val_loss"] - base["val_loss"] - lr["delta"]) < 1e-9

    # a second budget group: Δ is against each group's own baseline, and the notes say so rather than list them
    env = {"GPTABLATE_RUNS": str(tmp_path / "runs")}
    one = run_cli("compare", "--format", "markdown", env=env, check=True).stdout
    assert "Δ is against the baseline arm `tiny`." in one
    record_run(store, "longer-1", ["train.max_iters=400"], 1, val_loss=4.5, tokens=409600)
    md = run_cli("compare", "--format", "markdown", env=env, check=True).stdout
    assert "Δ is against each budget group's baseline arm (its verdict reads baseline)." in md
    md = run_cli("compare", "--deltas", "--format", "markdown", env=env, check=True).stdout
    assert "Δ is against each budget group's baseline arm (its row gives its own figures)." in md
    assert run_cli("compare", "--format", "markdown", "--tag", "x", env=env,
                   check=True).stdout == "no runs carry the tag 'x'\n"


def test_parameter_counts_read_apart_where_they_differ(tmp_path):
    """An arm's parameter count, as train records it, to the decimals that tell the arms apart (a variant at the tiny
    recipe's width adds a few thousand to 3.3M); a run recorded before the count was kept shows none."""
    import json

    env = {"GPTABLATE_RUNS": str(tmp_path / "runs")}
    store = results_table(tmp_path / "runs")
    record_run(store, "base", [], 1, val_loss=5.0, n_params=3319552)
    record_run(store, "hyper", ["arch.residual=hyper"], 1, val_loss=5.1, n_params=3321704)
    record_run(store, "old", ["train.lr=0.004"], 1, val_loss=5.2)  # recorded before schema 5
    rows = {r["arm"]: r for r in json.loads(run_cli("compare", "--format", "json", env=env, check=True).stdout)}
    assert rows["tiny"]["n_params"] == 3319552 and rows["tiny[train.lr=0.004]"]["n_params"] is None
    lines = run_cli("compare", "--format", "markdown", env=env, check=True).stdout.splitlines()
    cells = {line.split(" | ")[1]: line.split(" | ")[2] for line in lines[2:5]}
    assert cells == {"tiny": "3.320M", "tiny[arch.residual=hyper]": "3.322M", "tiny[train.lr=0.004]": ""}, lines
    record_run(store, "wide", ["arch.residual=hyper", "model.n_embd=768", "model.n_head=12"], 1, val_loss=4.0,
               n_params=123837552)  # another budget group; the decimals are the table's
    lines = run_cli("compare", "--format", "markdown", env=env, check=True).stdout
    assert "| 123.838M |" in lines and "| 3.320M |" in lines
