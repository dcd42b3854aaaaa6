"""The evaluation suite on the real task files in ../shared/data, and from a loopback hub."""

from __future__ import annotations

import io
import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import SHARED_DATA, TINY, run_cli, shared
from gptablate.eval.harness import Request, Scorer, encode_pair, rolling_windows
from gptablate.eval.run import _Plan, evaluate_model, load_docs
from gptablate.eval.tasks import TASKS, hellaswag_from_hub, wikitext_detokenize, wikitext_local
from gptablate.model.gpt import GPT, GPTConfig
from gptablate.recipe import load_recipe
from hubserver import FakeHub

CHOICE_TASKS = ["hellaswag", "arc_easy", "piqa", "winogrande"]


@pytest.fixture(scope="module")
def trained_run(prepared_corpus, tmp_path_factory):
    runs = tmp_path_factory.mktemp("evalruns")
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(runs)}
    run_cli("train", "tiny", *TINY, "--set", "train.max_iters=20", "--device", "cpu", env=env, check=True)
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    return env, run_dir


def small_model(block_size=64):
    recipe = load_recipe("tiny", ["model.n_layer=2", "model.n_embd=32", "model.n_head=2",
                                  f"model.block_size={block_size}"])
    torch.manual_seed(0)
    return recipe, GPT(GPTConfig.from_recipe(recipe)).eval()


def test_every_task_on_the_real_files(trained_run):
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    env, run_dir = trained_run
    out = run_cli("eval", run_dir.name, "--data-dir", str(SHARED_DATA), "--limit", "12", "--device", "cpu",
                  "--format", "json", env=env, check=True)
    rows = {(r["task"], r["metric"]): r for r in json.loads(out.stdout)}
    expected = {("val", "loss"), ("wikitext2", "word_perplexity"), ("wikitext2", "byte_perplexity"),
                ("wikitext2", "bits_per_byte"), ("wikitext2", "token_perplexity"), ("lambada", "perplexity"),
                ("lambada", "acc"), ("hellaswag", "acc"), ("hellaswag", "acc_norm"), ("arc_easy", "acc"),
                ("arc_easy", "acc_norm"), ("piqa", "acc"), ("piqa", "acc_norm"), ("winogrande", "acc")}
    assert set(rows) == expected
    for (task, metric), r in rows.items():
        assert math.isfinite(r["value"]), (task, metric)
        if metric.startswith("acc"):
            assert 0 <= r["value"] <= 100 and r["stderr"] is not None and 0 <= r["stderr"] <= 50
        elif "perplexity" in metric:
            assert r["value"] > 1
    bpb = rows[("wikitext2", "bits_per_byte")]["value"]
    assert abs(rows[("wikitext2", "byte_perplexity")]["value"] - 2 ** bpb) < 1e-6 * 2 ** bpb
    assert rows[("wikitext2", "word_perplexity")]["samples"] == 12

    csv = run_cli("compare", "--by", "run", "--format", "csv", env=env, check=True).stdout.splitlines()[0].split(",")
    for col in ("arc_easy_acc_norm", "arc_easy_acc_norm_stderr", "wikitext2_word_perplexity", "lambada_acc",
                "hellaswag_acc_norm", "piqa_acc", "winogrande_acc"):
        assert col in csv
    arms = json.loads(run_cli("compare", "--format", "json", env=env, check=True).stdout)
    assert abs(arms[0]["winogrande_acc"] - rows[("winogrande", "acc")]["value"]) < 1e-9
    md = run_cli("eval", run_dir.name, "--tasks", "winogrande", "--data-dir", str(SHARED_DATA), "--limit", "5",
                 "--device", "cpu", "--format", "markdown", env=env, check=True)
    assert "|  Tasks   |     Metric      |" in md.stdout and "|winogrande|acc" in md.stdout
    # a figure over fewer examples is shown but does not replace the recorded one; one over more does
    assert md.stderr.strip().splitlines()[-1] == (f"{run_dir.name}: winogrande acc over 5 examples not recorded: "
                                                  "the results table keeps its figure over 12")
    kept = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)[0]
    # compare's json carries 10 digits
    assert abs(kept["winogrande_acc"] - rows[("winogrande", "acc")]["value"]) < 1e-8
    assert kept["winogrande_acc_samples"] == 12
    more = run_cli("eval", run_dir.name, "--tasks", "winogrande", "--data-dir", str(SHARED_DATA), "--limit", "20",
                   "--device", "cpu", "--format", "json", env=env, check=True)
    assert "not recorded" not in more.stderr
    (fuller,) = json.loads(more.stdout)
    now = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)[0]
    assert abs(now["winogrande_acc"] - fuller["value"]) < 1e-8 and now["winogrande_acc_samples"] == 20


def _direct_loglikelihood(model, r: Request, block_size: int) -> float:
    ids = (r.context + r.continuation)[-(block_size + 1):]
    logits = model.logits(torch.tensor(ids[:-1])[None])[0]
    logp = F.log_softmax(logits.float(), -1)
    n = len(r.continuation)
    return sum(logp[len(ids) - 1 - n + j, tok].item() for j, tok in enumerate(r.continuation[-n:]))


@pytest.mark.parametrize("task", CHOICE_TASKS + ["lambada", "wikitext2"])
def test_loglikelihoods_equal_a_direct_computation(task):
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    recipe, model = small_model(block_size=64)  # short block: long inputs get truncated on the left
    docs = load_docs(TASKS[task], SHARED_DATA)[:3 if task != "wikitext2" else 1]
    plan = _Plan(TASKS[task], docs, 64)
    requests = plan.requests[:40]
    scored = Scorer(model.logits, 64, 50257, torch.device("cpu"), batch_size=4).score(requests)
    for r, s in zip(requests, scored):
        assert abs(s.loglikelihood - _direct_loglikelihood(model, r, 64)) < 1e-3


def test_encode_pair_moves_trailing_space_and_rolling_windows_score_each_token_once():
    r = encode_pair("The answer is ", "yes")
    assert r.continuation == encode_pair("The answer is", " yes").continuation
    tokens = list(range(1000, 1023))
    windows = rolling_windows(tokens, 8)
    assert [t for w in windows for t in w.continuation] == tokens
    for w in windows[1:]:
        assert len(w.context) + len(w.continuation) == 9  # a full block of input before each prediction


class Oracle(torch.nn.Module):
    """Logits that favour the gold continuation: the token that follows the last 6 in a gold sequence."""

    def __init__(self, gold_sequences):
        super().__init__()
        self.next = {}
        for seq in gold_sequences:
            for i in range(1, len(seq)):
                self.next[tuple(seq[max(0, i - 6):i])] = seq[i]

    def logits(self, idx):
        out = torch.zeros(*idx.shape, 50257)
        for b in range(idx.shape[0]):
            row = idx[b].tolist()
            for t in range(len(row)):
                nxt = self.next.get(tuple(row[max(0, t - 5):t + 1]))
                if nxt is not None:
                    out[b, t, nxt] = 30.0
        return out

    def eval(self):
        return self


@pytest.mark.parametrize("task", CHOICE_TASKS + ["lambada"])
def test_a_model_that_favours_the_gold_continuation_scores_100(task):
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    recipe, _ = small_model(block_size=128)
    docs = load_docs(TASKS[task], SHARED_DATA)[:25]
    plan = _Plan(TASKS[task], docs, 128)
    gold = []
    for i, (a, b) in enumerate(plan.spans):
        g = plan.extra[i][0] if TASKS[task].kind == "choice" else 0
        r = plan.requests[a + g]
        gold.append((r.context + r.continuation)[-129:])
    metrics = evaluate_model(Oracle(gold), recipe, [task], torch.device("cpu"), data_dir=SHARED_DATA, limit=25)
    for m in metrics:
        if m.metric.startswith("acc"):
            assert m.value == 100.0, (task, m)


def test_wikitext_pages_and_detokenizer():
    pages = wikitext_local(SHARED_DATA) if SHARED_DATA.is_dir() else pytest.skip("no shared data")
    assert len(pages) == 62  # as the hub's wikitext_document_level test split
    assert pages[0]["page"].startswith(" = Robert Boulter = ")
    assert wikitext_detokenize("a @-@ b @,@ c ( d ) = = e = =") == "a-b,c (d) == e =="


def test_hellaswag_hub_rows_get_lm_eval_preprocessing():
    row = {"activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
           "endings": ["is using wrap [title] to wrap a pair of skis.", "b", "c", "d"], "label": "3"}
    doc = hellaswag_from_hub(row)
    assert doc["query"] == "Roof shingle removal: A man is sitting on a roof. He"
    assert doc["endings"][0] == "is using wrap. to wrap a pair of skis." and doc["label"] == 3


def _parquet(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def test_hub_parquet_gives_the_numbers_of_the_local_files(trained_run, tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    env, run_dir = trained_run
    hub = FakeHub().start()
    try:
        arc = [json.loads(l) for l in shared("arc/ARC-Easy-Test.jsonl").read_text().splitlines()[:6]]
        hub.add_file("allenai/ai2_arc", "ARC-Easy/test/0000.parquet", _parquet([
            {"id": d["id"], "question": d["question"]["stem"],
             "choices": {"text": [c["text"] for c in d["question"]["choices"]],
                         "label": [c["label"] for c in d["question"]["choices"]]}, "answerKey": d["answerKey"]}
            for d in arc]))
        wino = [json.loads(l) for l in shared("winogrande/dev.jsonl").read_text().splitlines()[:6]]
        hub.add_file("allenai/winogrande", "winogrande_xl/validation/0000.parquet", _parquet(wino))
        lam = [json.loads(l) for l in shared("lambada/lambada_test.jsonl").read_text().splitlines()[:6]]
        hub.add_file("EleutherAI/lambada_openai", "default/test/0000.parquet", _parquet(lam))
        hub_env = {**env, "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_DISABLE_XET": "1"}
        args = ["eval", run_dir.name, "--tasks", "arc_easy,winogrande,lambada", "--limit", "6", "--device", "cpu",
                "--format", "json"]
        from_hub = json.loads(run_cli(*args, env=hub_env, check=True).stdout)
        local = json.loads(run_cli(*args, "--data-dir", str(SHARED_DATA), env=env, check=True).stdout)
        assert [(r["task"], r["metric"], round(r["value"], 6)) for r in from_hub] == \
            [(r["task"], r["metric"], round(r["value"], 6)) for r in local]
        assert any("refs/convert/parquet" in path for _, path, _ in hub.requests)
        offline = run_cli("eval", run_dir.name, "--tasks", "piqa", "--device", "cpu",
                          env={**hub_env, "HF_ENDPOINT": "http://127.0.0.1:9"})
        assert offline.returncode == 2 and "--data-dir" in offline.stderr
        assert len(offline.stderr.strip().splitlines()) == 1, offline.stderr
    finally:
        hub.stop()


def test_sharded_over_two_ranks_gives_the_same_numbers(trained_run):
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    env, run_dir = trained_run
    args = ["eval", run_dir.name, "--tasks", "val,piqa,lambada", "--limit", "10", "--device", "cpu",
            "--data-dir", str(SHARED_DATA), "--format", "json"]
    one = json.loads(run_cli(*args, env=env, check=True).stdout)
    two = json.loads(run_cli(*args, "--gpus", "2", env=env, check=True).stdout)
    assert [(r["task"], r["metric"]) for r in one] == [(r["task"], r["metric"]) for r in two]
    for a, b in zip(one, two):
        assert abs(a["value"] - b["value"]) < 1e-4 * max(1.0, abs(a["value"]))


def test_a_user_error_on_two_ranks_is_one_line(trained_run, tmp_path):
    """Every rank stops on the broken checkpoint; the user reads its line once, with no launcher traceback."""
    env, run_dir = trained_run
    broken = tmp_path / "checkpoint.pt"
    broken.write_bytes((run_dir / "checkpoint.pt").read_bytes()[:1000])
    p = run_cli("eval", str(broken), "--tasks", "val", "--device", "cpu", "--gpus", "2", env=env)
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr and "ChildFailedError" not in p.stderr, p.stderr
    errors = [line for line in p.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {broken}: not a readable gptablate checkpoint (RuntimeError)"], p.stderr


def test_train_runs_the_recipes_eval_tasks_at_the_end(prepared_corpus, tmp_path):
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    run_cli("train", "tiny", *TINY, "--set", "train.max_iters=4", "--set", "eval.tasks=[arc_easy, winogrande]",
            "--set", f"eval.data_dir={SHARED_DATA}", "--set", "eval.limit=8", "--device", "cpu", env=env, check=True)
    rows = json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    assert rows[0]["arc_easy_acc"] is not None and rows[0]["winogrande_acc"] is not None
    assert "eval." not in rows[0]["arm"]  # what is measured after training does not make a new arm


def test_missing_scores_each_finished_run_on_the_tasks_it_lacks(prepared_corpus, tmp_path):
    """eval --missing: every finished run without a figure for some of the tasks, on those it lacks, one process or
    sharded over two ranks; runs without a checkpoint are named; of several runs, one that cannot be loaded is passed
    over and the others are scored."""
    if not SHARED_DATA.is_dir():
        pytest.skip("no shared data")
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    run_cli("train", "tiny", *TINY, "--set", "train.max_iters=4", "--seeds", "3", "--device", "cpu", env=env,
            check=True)
    run_cli("train", "tiny", *TINY, "--set", "train.max_iters=4", "--set", "run.tags=[other]", "--device", "cpu",
            env=env, check=True)
    # in the order they were trained: seeds 1, 2, 3, then the tagged run
    one, two, three, tagged = [r["run_id"] for r in json.loads(run_cli("compare", "--by", "run", "--format", "json",
                                                                       env=env, check=True).stdout)]
    common = ["--limit", "6", "--device", "cpu", "--data-dir", str(SHARED_DATA), "--format", "json"]
    run_cli("eval", one, "--tasks", "piqa", *common, env=env, check=True)
    (tmp_path / "runs" / three / "checkpoint.pt").unlink()  # as if trained elsewhere

    scored = run_cli("eval", "--missing", "--tasks", "piqa,arc_easy", "--tag", "other", *common, env=env, check=True)
    assert {(r["run_id"], r["task"]) for r in json.loads(scored.stdout)} == {(tagged, "piqa"), (tagged, "arc_easy")}
    scored = run_cli("eval", "--missing", "--tasks", "piqa,arc_easy", "--gpus", "2", *common, env=env, check=True)
    assert f"not scored, no checkpoint in their run folders: {three}" in scored.stderr
    assert f"scoring 2 runs: {one} (arc_easy); {two} (piqa, arc_easy)" in scored.stderr
    got = {(r["run_id"], r["task"]) for r in json.loads(scored.stdout)}
    assert got == {(one, "arc_easy"), (two, "piqa"), (two, "arc_easy")}
    again = run_cli("eval", "--missing", "--tasks", "piqa,arc_easy", *common, env=env, check=True)
    assert again.stdout == "" and again.stderr.strip().splitlines()[-1] == (
        "nothing to score: every finished run with a checkpoint has a figure for piqa, arc_easy")
    rows = {r["run_id"]: r for r in json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env,
                                                       check=True).stdout)}
    assert all(rows[r]["piqa_acc"] is not None and rows[r]["arc_easy_acc"] is not None for r in (one, two, tagged))
    assert rows[three]["piqa_acc"] is None

    partly = run_cli("eval", two, three, "--tasks", "val", *common, env=env)
    assert partly.returncode == 2 and [r["run_id"] for r in json.loads(partly.stdout)] == [two]
    assert partly.stderr.strip().splitlines() == [
        f"error: run {three} has no checkpoint.pt (the run did not finish); passed over",
        f"error: 1 of 2 runs not scored, each named above: {three}"]
    for args, message in ((["--missing", one], "--missing finds the runs to score itself: give it without RUNS"),
                          ([one, "--tag", "x"], "--tag picks among the runs --missing finds: give it with --missing"),
                          ([""], "an empty run id: give a run id (a unique prefix will do), a run folder or a "
                                 "checkpoint file"),
                          ([], "give RUNS (run ids, run folders or checkpoint files), or --missing for every finished "
                               "run without a figure for some of the tasks")):
        refused = run_cli("eval", *args, env=env)
        assert refused.returncode == 2 and refused.stderr.strip() == f"error: {message}"


def test_a_figure_over_part_of_a_task_is_marked_and_missing_scores_it_in_full(prepared_corpus, tmp_path):
    """An evaluation with --limit that leaves examples out is recorded as partial: compare says so, and eval --missing
    without --limit scores the run in full (with --limit, a partial figure counts as there)."""
    source = shared("winogrande/dev.jsonl")
    data = tmp_path / "evaldata" / "winogrande"  # a task of 10 examples: a full evaluation in a second
    data.mkdir(parents=True)
    (data / "dev.jsonl").write_text("".join(source.read_text().splitlines(keepends=True)[:10]))
    env = {"GPTABLATE_DATA": str(prepared_corpus), "GPTABLATE_RUNS": str(tmp_path / "runs")}
    run_cli("train", "tiny", *TINY, "--set", "train.max_iters=4", "--device", "cpu", env=env, check=True)
    common = ["--tasks", "winogrande", "--device", "cpu", "--data-dir", str(tmp_path / "evaldata"), "--format", "json"]
    rows = lambda: json.loads(run_cli("compare", "--by", "run", "--format", "json", env=env, check=True).stdout)
    run = rows()[0]["run_id"]

    quick = run_cli("eval", run, "--limit", "4", *common, env=env, check=True)
    assert [(r["samples"], r["total"]) for r in json.loads(quick.stdout)] == [(4, 10)]
    assert rows()[0]["winogrande_acc_partial"] is True and rows()[0]["winogrande_acc_samples"] == 4
    note = "winogrande acc: 1 of the 1 runs' figures is over part of the task (`eval --limit`)"
    assert note in run_cli("compare", env=env, check=True).stdout
    quick = run_cli("eval", "--missing", "--limit", "4", *common, env=env, check=True)
    assert quick.stderr.strip().endswith("has a figure for winogrande")

    full = run_cli("eval", "--missing", *common, env=env, check=True)
    assert f"scoring 1 run: {run} (winogrande)" in full.stderr
    assert [(r["task"], r["samples"]) for r in json.loads(full.stdout)] == [("winogrande", 10)]
    assert rows()[0]["winogrande_acc_partial"] is False and rows()[0]["winogrande_acc_samples"] == 10
    assert "part of the task" not in run_cli("compare", env=env, check=True).stdout
    again = run_cli("eval", "--missing", *common, env=env, check=True)
    assert again.stdout == "" and again.stderr.strip().endswith("has a full figure for winogrande")
    run_cli("eval", run, "--limit", "10", *common, env=env, check=True)  # a limit that leaves nothing out: full
    assert rows()[0]["winogrande_acc_partial"] is False
