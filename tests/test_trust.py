"""Results you can trust: exact resume after SIGKILL, the divergence guard, seeds and noise,
curves, sweeps, and bad input that never damages the results table or checkpoints."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time

import torch

from conftest import TINY, record_run, results_table, run_cli
from gptablate.results.stats import holm, paired, t_two_sided_p


def env_for(prepared_corpus, tmp_path, **extra):
    return {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs"), **extra}


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def run_dirs(tmp_path):
    return sorted(d for d in (tmp_path / "runs").iterdir() if d.is_dir())


def start_and_kill(args, env, after_checkpoints: int, tmp_path):
    """Start a training process and SIGKILL it once it has written this many checkpoints."""
    before = set(run_dirs(tmp_path)) if (tmp_path / "runs").is_dir() else set()
    proc = subprocess.Popen([sys.executable, "-m", "gptablate_cli", *args], env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        new = [d for d in run_dirs(tmp_path) if d not in before] if (tmp_path / "runs").is_dir() else []
        if new and len(list((new[0] / "checkpoints").glob("step_*.pt"))) >= after_checkpoints:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return new[0], proc.returncode
        if proc.poll() is not None:
            raise AssertionError(f"the run ended (exit {proc.returncode}) before it could be killed")
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint appeared")


RESUMABLE = ["train", "tiny", *TINY, "--set", "model.n_embd=64", "--set", "model.block_size=64",
             "--set", "train.max_iters=40", "--set", "train.log_interval=1", "--set", "train.checkpoint_interval=5",
             "--set", "data.eval_interval=10", "--device", "cpu"]


def test_sigkill_then_resume_reproduces_every_step_exactly(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    run_cli(*RESUMABLE, "--set", "run.name=whole", env=env, check=True)
    (whole,) = run_dirs(tmp_path)
    killed, rc = start_and_kill([*RESUMABLE, "--set", "run.name=killed"], env, after_checkpoints=2, tmp_path=tmp_path)
    assert rc == -signal.SIGKILL
    status = {r["run_id"]: r["status"] for r in json.loads(run_cli("compare", "--by", "run", "--format", "json",
                                                                    env=env, check=True).stdout)}
    assert status[killed.name] == "interrupted"  # its process is gone: not left "running"
    run_cli("train", "--resume", killed.name, "--device", "cpu", env=env, check=True)
    a, b = metrics(whole), metrics(killed)
    assert [r["step"] for r in b] == list(range(1, 41))
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]  # exact on the CPU
    assert [r.get("val_loss") for r in a] == [r.get("val_loss") for r in b]
    assert len(list((killed / "checkpoints").glob("step_*.pt"))) == 2  # keep_checkpoints
    state = torch.load(sorted((killed / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert state["step"] == 40 and len(state["rng"]) == 1 and "optimizer" in state
    rows = {r["run_id"]: r for r in json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env,
                                                        check=True).stdout)}
    assert rows[killed.name]["status"] == "finished" and rows[killed.name]["val_loss"] == rows[whole.name]["val_loss"]
    again = run_cli("train", "--resume", killed.name, "--device", "cpu", env=env)
    assert again.returncode == 2 and "already finished" in again.stderr


def test_resume_from_a_checkpoint_of_a_non_fused_optimizer(prepared_corpus, tmp_path):
    """Checkpoints written before the CPU optimizer was fused carry non-fused groups; a resumed
    optimizer takes them, so the guard must then decide on the host instead of via found_inf."""
    env = env_for(prepared_corpus, tmp_path)
    killed, _ = start_and_kill([*RESUMABLE, "--set", "train.max_iters=20"], env, after_checkpoints=1, tmp_path=tmp_path)
    for path in (killed / "checkpoints").glob("step_*.pt"):
        state = torch.load(path, weights_only=False)
        for group in state["optimizer"]["param_groups"]:
            group["fused"] = None
        torch.save(state, path)
    run_cli("train", "--resume", killed.name, "--device", "cpu", env=env, check=True)
    assert [r["step"] for r in metrics(killed)][-1] == 20


def test_resume_on_another_rank_count(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    killed, _ = start_and_kill([*RESUMABLE, "--set", "train.max_iters=20"], env, after_checkpoints=1, tmp_path=tmp_path)
    run_cli("train", "--resume", killed.name, "--gpus", "2", "--device", "cpu", env=env, check=True)
    assert [r["step"] for r in metrics(killed)] == list(range(1, 21))
    done = run_cli("train", "--resume", killed.name, "--gpus", "2", "--device", "cpu", env=env)
    assert done.returncode == 2 and "already finished" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    # with dropout, the random streams belong to the rank count: refused, saying what works
    drop, _ = start_and_kill([*RESUMABLE, "--set", "model.dropout=0.1"], env, after_checkpoints=1, tmp_path=tmp_path)
    p = run_cli("train", "--resume", drop.name, "--gpus", "2", "--device", "cpu", env=env)
    assert p.returncode == 2 and "resume with --gpus 1" in p.stderr


def test_divergence_guard_stops_and_marks_the_run(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    args = ["train", "tiny", *TINY, "--set", "train.max_iters=10", "--set", "train.warmup_iters=3",
            "--set", "train.max_loss=5", "--set", "train.checkpoint_interval=1", "--device", "cpu"]
    p = run_cli(*args, env=env)
    assert p.returncode == 3, p.stderr
    assert "diverged" in p.stderr and "step 4" in p.stderr and "last good checkpoint step_0000003.pt" in p.stderr
    (run_dir,) = run_dirs(tmp_path)
    assert sorted(x.name for x in (run_dir / "checkpoints").iterdir()) == ["step_0000002.pt", "step_0000003.pt"]
    rows = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    assert rows[0]["status"] == "diverged" and rows[0]["step"] == 3
    arms = json.loads(run_cli("compare", "--format", "json", env=env, check=True).stdout)
    assert arms[0]["rank"] is None and "1 diverged" in arms[0]["status"]  # listed, never ranked


def test_divergence_guard_can_skip_steps_and_catches_non_finite(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    p = run_cli("train", "tiny", *TINY, "--set", "train.max_iters=10", "--set", "train.warmup_iters=3",
                "--set", "train.max_loss=5", "--set", "train.on_divergence=skip", "--set", "train.max_skips=2",
                "--device", "cpu", env=env)
    assert p.returncode == 3
    log = (run_dirs(tmp_path)[0] / "log.txt").read_text()
    assert log.count("divergence guard: skipped step") == 2
    nan = run_cli("train", "tiny", *TINY, "--set", "train.max_iters=10", "--set", "train.lr=1e4",
                  "--set", "train.min_lr=0", "--set", "train.warmup_iters=1", "--set", "train.grad_clip=0",
                  "--device", "cpu", env=env)
    assert nan.returncode == 3 and ("inf" in nan.stderr or "nan" in nan.stderr), nan.stderr


def test_skipped_steps_never_land_even_when_settled_a_step_late(prepared_corpus, tmp_path):
    """Between log steps the guard's verdict is read a step late; the fused AdamW has already
    skipped the update on the device. Every step after warmup is bad here, so the weights
    at the end are exactly those after the 3 warmup steps."""
    env = env_for(prepared_corpus, tmp_path)
    common = ["train", "tiny", *TINY, "--set", "train.warmup_iters=3", "--set", "train.log_interval=100",
              "--set", f"data.eval_interval={10**6}", "--device", "cpu"]
    run_cli(*common, "--set", "train.max_iters=3", env=env, check=True)
    p = run_cli(*common, "--set", "train.max_iters=7", "--set", "train.max_loss=0.01",
                "--set", "train.on_divergence=skip", "--set", "train.max_skips=10", env=env)
    assert p.returncode == 0, p.stderr
    short, long = sorted(run_dirs(tmp_path), key=lambda d: "skipped" in (d / "log.txt").read_text())
    log = (long / "log.txt").read_text()
    assert [f"skipped step {s} " in log for s in (4, 5, 6, 7)] == [True] * 4, log
    a = torch.load(short / "checkpoint.pt", weights_only=False)["model"]
    b = torch.load(long / "checkpoint.pt", weights_only=False)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_rows_written_a_step_late_are_those_written_at_once(prepared_corpus, tmp_path):
    """A plain logging step's row is written once the next step's work is queued (its loss and gradient norm copied
    to the host with the step's verdict); validation steps write theirs at once. Logging every step with validation
    at the end only, against validating every step (every row at once): the same steps, losses, gradient norms,
    learning rates and skip marks. Every step after warmup is bad here and skipped: the marks of the late rows come
    from verdicts read a step late."""
    env = env_for(prepared_corpus, tmp_path)
    common = ["train", "tiny", *TINY, "--set", "train.max_iters=7", "--set", "train.log_interval=1",
              "--set", "train.warmup_iters=3", "--set", "train.max_loss=0.01", "--set", "train.on_divergence=skip",
              "--set", "train.max_skips=10", "--device", "cpu"]
    run_cli(*common, "--set", "data.eval_interval=1000", "--set", "run.name=late", env=env, check=True)
    run_cli(*common, "--set", "data.eval_interval=1", "--set", "run.name=once", env=env, check=True)
    rows = {}
    for d in run_dirs(tmp_path):
        rows["late" if "name: late" in (d / "recipe.yaml").read_text() else "once"] = metrics(d)
    late, once = rows["late"], rows["once"]
    assert [r["step"] for r in late] == [r["step"] for r in once] == list(range(1, 8))
    assert [r.get("skipped", False) for r in late] == [False] * 3 + [True] * 4
    for a, b in zip(late, once):
        for key in ("train_loss", "grad_norm", "lr", "tokens"):
            assert a[key] == b[key], (key, a, b)
        assert a.get("skipped", False) == b.get("skipped", False), (a, b)
        assert a["tokens_per_s"] > 0
    assert "val_loss" in late[-1] and all("val_loss" not in r for r in late[:-1])


def test_an_interrupted_run_keeps_the_row_of_its_last_logged_step(prepared_corpus, tmp_path):
    """SIGTERM while a plain logging step's row waits for the next step: the row is still written, so metrics.jsonl
    holds a row for every step done (the store's step), none twice; the CLI says so in one line (exit 130), no
    traceback."""
    env = env_for(prepared_corpus, tmp_path)
    with (tmp_path / "stderr.txt").open("w") as stderr:  # the child writes to its own copy of the file
        proc = subprocess.Popen([sys.executable, "-m", "gptablate_cli", "train", "tiny", *TINY, "--set",
                                 "train.max_iters=100000", "--set", "train.log_interval=1", "--set",
                                 f"data.eval_interval={10**6}", "--device", "cpu"], env={**os.environ, **env},
                                stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        dirs = run_dirs(tmp_path) if (tmp_path / "runs").is_dir() else []
        log = dirs[0] / "metrics.jsonl" if dirs else None
        if log is not None and log.is_file() and log.read_text().count("\n") >= 4:  # whole lines, none half written
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 130
    err = (tmp_path / "stderr.txt").read_text()
    assert err.strip().splitlines()[-1] == "interrupted", err
    assert "Traceback" not in err, err
    (run,) = run_dirs(tmp_path)
    steps = [r["step"] for r in metrics(run)]
    with sqlite3.connect(tmp_path / "runs" / "results.sqlite") as db:
        status, done = db.execute("SELECT status, step FROM runs WHERE run_id = ?", (run.name,)).fetchone()
    assert status == "interrupted"
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= done >= 4, (steps, done)


def test_t_distribution_matches_tables():
    for t, df, p in [(12.706, 1, 0.05), (2.776, 4, 0.05), (2.228, 10, 0.05), (3.169, 10, 0.01), (1.0, 5, 0.3632)]:
        assert abs(t_two_sided_p(t, df) - p) < 5e-4
    mean, se, p = paired([0.1, 0.12, 0.08])
    assert abs(mean - 0.1) < 1e-12 and abs(se - 0.02 / 3 ** 0.5) < 1e-12 and p < 0.05


def test_holm_adjusts_for_the_arms_a_group_compares(tmp_path):
    """Three arms against the baseline over three seeds, written to a real results table: with --adjust holm the
    p-values are Holm's (worked by hand below) and an arm whose raw p passes 0.05 only alone reads 'within noise'."""
    adj = holm([0.04, float("nan"), 0.01, 0.5])  # m = 3: 0.01 x 3, 0.04 x 2, 0.5 x 1; NaN is no test
    assert adj[0] == 0.08 and adj[1] != adj[1] and abs(adj[2] - 0.03) < 1e-15 and adj[3] == 0.5
    assert holm([0.5, 0.6]) == [1.0, 1.0] and holm([0.9, 0.3]) == [0.9, 0.6]  # at most 1, never below a smaller p's
    store = results_table(tmp_path / "runs")
    base_loss = {1: 5.00, 2: 5.10, 3: 4.95}
    arms = {"train.lr=0.004": [-0.10, -0.11, -0.09], "train.lr=0.002": [-0.06, -0.03, -0.04],
            "train.lr=0.001": [-0.02, 0.01, -0.01], None: [0.0, 0.0, 0.0]}
    for override, diffs in arms.items():
        for seed, d in zip((1, 2, 3), diffs):
            record_run(store, f"{override or 'base'}-{seed}", [override] if override else [], seed,
                       val_loss=base_loss[seed] + d)
    env = {"GPTABLATE_RUNS": str(tmp_path / "runs")}
    rows = lambda *a: {r["arm"]: r for r in json.loads(run_cli("compare", "--format", "json", *a, env=env,
                                                                check=True).stdout)}
    plain, adjusted = rows(), rows("--adjust", "holm")
    raw = {f"tiny[{override}]": paired(diffs)[2] for override, diffs in arms.items() if override}
    low, mid, high = sorted(raw.values())  # 0.0033, 0.039, 0.53: Holm multiplies by 3, 2 and 1, keeping the order
    by_hand = {arm: {low: 3 * low, mid: max(3 * low, 2 * mid), high: max(3 * low, 2 * mid, high)}[p]
               for arm, p in raw.items()}
    for arm, p in raw.items():
        # json carries 10 digits
        assert abs(plain[arm]["p_value"] - p) < 1e-8 and "p_adjusted" not in plain[arm]
        assert abs(adjusted[arm]["p_value"] - p) < 1e-8 and abs(adjusted[arm]["p_adjusted"] - by_hand[arm]) < 1e-8
    assert plain["tiny[train.lr=0.002]"]["verdict"] == "better" and raw["tiny[train.lr=0.002]"] < 0.05
    assert adjusted["tiny[train.lr=0.002]"]["verdict"] == "within noise" and by_hand["tiny[train.lr=0.002]"] >= 0.05
    assert adjusted["tiny[train.lr=0.004]"]["verdict"] == "better"
    assert adjusted["tiny"]["verdict"] == "baseline" and adjusted["tiny"]["p_adjusted"] is None
    table = run_cli("compare", "--adjust", "holm", "--format", "markdown", env=env, check=True).stdout
    assert "| p (Holm) |" in table and "p (Holm): p adjusted for the number of arms" in table
    refused = run_cli("compare", "--adjust", "bonferroni", env=env)
    assert refused.returncode == 2 and refused.stderr.strip() == "error: --adjust 'bonferroni': use one of none, holm"


def test_seeds_give_paired_noise_estimates_and_budgets_stay_apart(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    base = ["train", "tiny", *TINY, "--set", "train.max_iters=12", "--set", "data.eval_interval=6", "--device", "cpu"]
    run_cli(*base, "--seeds", "3", env=env, check=True)
    run_cli(*base, "--seeds", "3", "--set", "train.lr=1e-2", env=env, check=True)
    short = run_cli("train", "tiny", *TINY, "--set", "train.max_iters=6", "--device", "cpu", env=env, check=True)
    # six steps in tiny's first logging window of 10: no steady rate to give (it had printed "nanK tokens/s")
    assert "no steady tokens/s: its 6 steps fell in the first logging window (train.log_interval=10)" in (
        short.stdout + short.stderr) and "nanK" not in short.stdout + short.stderr
    runs = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    assert len(runs) == 7 and sorted(r["seed"] for r in runs) == [1, 1, 1, 2, 2, 3, 3]
    arms = {a["arm"]: a for a in json.loads(run_cli("compare", "--format", "json", env=env, check=True).stdout)}
    lr_arm = next(a for name, a in arms.items() if "train.lr=0.01" in name)
    base_arm = next(a for name, a in arms.items() if a["verdict"] == "baseline" and "max_iters=12" in name)
    assert lr_arm["runs"] == 3 and lr_arm["seeds"] == "1,2,3" and lr_arm["paired_seeds"] == 3
    by_seed = lambda arm: {r["seed"]: r["val_loss"] for r in runs if r["arm"] == arm}
    diffs = [by_seed(lr_arm["arm"])[s] - by_seed(base_arm["arm"])[s] for s in (1, 2, 3)]
    mean = sum(diffs) / 3
    se = (sum((d - mean) ** 2 for d in diffs) / 2) ** 0.5 / 3 ** 0.5
    assert abs(lr_arm["delta"] - mean) < 1e-9 and abs(lr_arm["delta_stderr"] - se) < 1e-9
    assert 0 <= lr_arm["p_value"] <= 1 and lr_arm["verdict"] in ("better", "worse", "within noise")
    assert (lr_arm["verdict"] == "within noise") == (lr_arm["p_value"] >= 0.05)
    assert base_arm["val_loss_std"] > 0
    short = next(a for name, a in arms.items() if "max_iters=6" in name)
    assert short["budget"] != base_arm["budget"] and short["rank"] == 1  # its own group, its own ranking
    strict = json.loads(run_cli("compare", "--format", "json", "--alpha", "1e-12", env=env, check=True).stdout)
    assert next(a for a in strict if a["arm"] == lr_arm["arm"])["verdict"] == "within noise"
    for bad in ("2", "0", "-0.1", "nan"):
        refused = run_cli("compare", "--alpha", bad, env=env)
        assert refused.returncode == 2 and refused.stderr.strip().splitlines() == [
            f"error: --alpha {float(bad):g}: a significance level between 0 and 1, e.g. 0.05"]

    png = tmp_path / "curves.png"
    table = run_cli("compare", "--plot", str(png), env=env, check=True).stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert any(ch in table for ch in "▁▂▃▄▅▆▇█") and "budget:" in table
    assert run_cli("compare", "--plot", str(tmp_path / "curves.svg"), env=env, check=True).returncode == 0
    assert (tmp_path / "curves.svg").read_text().lstrip().startswith("<?xml")
    for name, why in (("curves.txt", "matplotlib writes no .txt files"), ("curves", "no suffix to tell the format by")):
        refused = run_cli("compare", "--plot", str(tmp_path / name), env=env)
        assert refused.returncode == 2 and refused.stderr.startswith(f"error: --plot {tmp_path / name}: {why}; ")
        assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / name).exists()
    assert sorted(p.name for p in tmp_path.iterdir() if "curves" in p.name) == ["curves.png", "curves.svg"]
    tagged = run_cli("compare", "--tag", "no-such-tag", env=env, check=True)
    assert tagged.stdout.strip() == "no runs carry the tag 'no-such-tag'"
    refused = run_cli("compare", "--tag", "no-such-tag", "--plot", str(png), env=env)
    assert refused.returncode == 2 and "nothing to plot: no runs carry the tag 'no-such-tag'" in refused.stderr


def test_sweep_skips_finished_resumes_interrupted_and_writes_slurm(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    sets = ["--set", "model.n_layer=2", "--set", "model.n_embd=32", "--set", "model.n_head=2", "--set",
            "model.block_size=32", "--set", "data.dataset=corpus", "--set", "data.eval_tokens=4096",
            "--set", "train.max_iters=40", "--set", "train.checkpoint_interval=4", "--set", "train.log_interval=1"]
    killed, _ = start_and_kill(["train", "tiny", *sets, "--set", "train.seed=2", "--device", "cpu"], env, 1, tmp_path)
    plan = run_cli("sweep", "tiny", "tiny_rmsnorm", "--seeds", "2", *sets, "--dry-run", env=env, check=True).stdout
    assert plan.count("train ") == 3 and "resume" in plan and "3 to run, 0 to skip" not in plan
    slurm = tmp_path / "sweep.sh"
    run_cli("sweep", "tiny", "tiny_rmsnorm", "--seeds", "2", *sets, "--gpus-per-run", "2", "--slurm", str(slurm),
            env=env, check=True)
    script = slurm.read_text()
    assert "#SBATCH --array=0-3" in script and "#SBATCH --gpus-per-node=2" in script
    assert f"'gptablate train --resume {killed.name} --gpus 2'" in script and script.count("'gptablate train") == 4
    out = run_cli("sweep", "tiny", "tiny_rmsnorm", "--seeds", "2", *sets, "--device", "cpu", env=env, check=True).stdout
    assert "sweep: 4 finished, 0 did not" in out
    runs = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    assert len(runs) == 4 and all(r["status"] == "finished" for r in runs)  # the killed run was resumed, not redone
    again = run_cli("sweep", "tiny", "tiny_rmsnorm", "--seeds", "2", *sets, "--dry-run", env=env, check=True).stdout
    assert sum(line.startswith("skip") for line in again.splitlines()) == 4 and "0 to run" in again


def test_a_sweep_whose_runs_print_a_lot_finishes_and_names_each_run(prepared_corpus, tmp_path):
    """A run's output used to go to a pipe the sweep read only once the run ended: past the pipe's 64 KB the run
    stopped, waiting for a reader, and the sweep waited for it (a 124M run's log lines are about 40 KB)."""
    env = env_for(prepared_corpus, tmp_path)
    (tmp_path / "loud.py").write_text("import sys\nfor _ in range(3000):\n"
                                      "    print('a plug-in that talks ' * 5, file=sys.stderr)\n")  # 315 KB
    (tmp_path / "loud.yaml").write_text("base: tiny\nplugins: [loud.py]\n")
    out = run_cli("sweep", str(tmp_path / "loud.yaml"), "tiny", "--seeds", "2", *TINY, "--set", "train.max_iters=2",
                  "--device", "cpu", env=env, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    runs = {(r["arm"], r["seed"]): r for r in json.loads(run_cli("compare", "--by", "run", "--format", "json",
                                                                 env=env, check=True).stdout)}
    assert len(runs) == 4 and all(r["status"] == "finished" for r in runs.values())
    done = [line for line in out.stdout.splitlines() if line.startswith("done")]
    assert len(done) == 4
    for line in done:  # "done   ARM seed N: RUN_ID, val loss X, T s"
        arm, rest = line[len("done   "):].rsplit(" seed ", 1)
        seed, rest = rest.split(": ", 1)
        r = runs[(arm, int(seed))]
        assert rest.startswith(f"{r['run_id']}, val loss {r['val_loss']:.4f}, ") and rest.endswith(" s"), line

    again = run_cli("train", "tiny", *TINY, "--set", "train.max_iters=2", "--seeds", "1", "--device", "cpu", env=env,
                    check=True)  # a seed trained again is told it repeats one
    first = next(r for (arm, seed), r in runs.items() if seed == 1 and arm.startswith("tiny["))
    assert f"seed 1 of {first['arm']} already finished as {first['run_id']}: this run repeats it" in again.stderr


def test_locked_results_database_is_a_clear_error_and_loses_nothing(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path, GPTABLATE_DB_TIMEOUT="1")
    run_cli("train", "tiny", *TINY, "--set", "train.max_iters=2", "--device", "cpu", env=env, check=True)
    db = tmp_path / "runs" / "results.sqlite"
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        p = run_cli("train", "tiny", *TINY, "--set", "train.max_iters=2", "--set", "train.seed=2", "--device", "cpu",
                    env=env)  # another seed: train says nothing of seed 1, finished before
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert p.returncode == 2 and "locked" in p.stderr and str(db) in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 1


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))  # 2 MB: smaller than a checkpoint


def test_full_disk_while_checkpointing_keeps_earlier_checkpoints(prepared_corpus, tmp_path):
    env = env_for(prepared_corpus, tmp_path)
    killed, _ = start_and_kill([*RESUMABLE], env, after_checkpoints=1, tmp_path=tmp_path)
    first = sorted((killed / "checkpoints").glob("step_*.pt"))[0]
    before = first.read_bytes()
    steps_before = sorted(x.name for x in (killed / "checkpoints").glob("step_*.pt"))
    p = subprocess.run([sys.executable, "-m", "gptablate_cli", "train", "--resume", killed.name, "--device", "cpu"],
                       env={**os.environ, **env}, capture_output=True, text=True, preexec_fn=_limit_file_size)
    assert p.returncode == 2, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot write checkpoint" in errors[0] and "intact" in errors[0]
    assert "Traceback" not in p.stderr
    assert first.read_bytes() == before
    assert torch.load(first, weights_only=True)["step"] == 5
    assert not [x for x in (killed / "checkpoints").iterdir() if x.name.startswith(".")]  # no half-written file
    assert sorted(x.name for x in (killed / "checkpoints").glob("step_*.pt")) == steps_before
    conn = sqlite3.connect(tmp_path / "runs" / "results.sqlite")
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    status, note = conn.execute("SELECT status, note FROM runs").fetchone()
    assert status == "failed" and "cannot write checkpoint" in note
    run_cli("train", "--resume", killed.name, "--device", "cpu", env=env, check=True)  # space again: it goes on
