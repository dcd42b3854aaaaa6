"""Running the evaluation suite on a model and recording the numbers.

`evaluate_model` is shared by `gptablate eval` (a checkpoint) and the end of `train`
(recipe `eval.tasks`). With several ranks each scores an interleaved share of the
requests; rank 0 gathers them, computes the metrics and writes the results table.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist

from ..data import hub
from ..data.loader import val_windows
from ..data.shards import open_dataset
from ..data.tokenizer import get_tokenizer
from ..errors import UserError
from ..paths import data_root
from ..train.engine import DistInfo, validation_loss
from .harness import Request, Scorer, encode_pair, rolling_windows
from .tasks import ALL_TASKS, LOWER_IS_BETTER, TASKS, Task, lambada_pair, mean_stderr, wikitext_detokenize

PARQUET_REVISION = "refs/convert/parquet"


@dataclass
class Metric:
    task: str
    metric: str
    value: float
    stderr: float | None
    samples: int
    seconds: float
    total: int | None = None  # the task's examples (samples is fewer where --limit cut them)

    @property
    def complete(self) -> bool:
        return self.total is None or self.samples >= self.total


def parse_tasks(spec: str | list[str] | None) -> list[str]:
    names = list(ALL_TASKS) if not spec else ([t.strip() for t in spec.split(",")] if isinstance(spec, str) else list(spec))
    unknown = [t for t in names if t not in ALL_TASKS]
    if unknown:
        raise UserError(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(ALL_TASKS)}")
    return names


def load_docs(task: Task, data_dir: Path | None) -> list[dict]:
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise UserError(f"--data-dir {data_dir}: no such folder")
        docs = task.local(Path(data_dir))
    else:
        try:
            files = hub.list_files(task.repo, prefix=f"{task.config}/{task.split}", revision=PARQUET_REVISION)
        except UserError as e:
            raise UserError(f"{task.name}: cannot get {task.repo} ({e}); offline, pass --data-dir with the original "
                            f"files ({task.local_hint})") from None
        parquets = sorted(p for p in files if p.endswith(".parquet"))
        if not parquets:
            raise UserError(f"{task.name}: {task.repo} has no {task.config}/{task.split}/*.parquet at {PARQUET_REVISION}")
        import pandas as pd

        docs = []
        for p in parquets:
            frame = pd.read_parquet(hub.fetch(task.repo, p, revision=PARQUET_REVISION))
            docs.extend(task.from_hub(row) for row in frame.to_dict("records"))
    return docs


class _Plan:
    """A task's requests and how their results become metrics."""

    def __init__(self, task: Task, docs: list[dict], block_size: int):
        self.task, self.docs = task, docs
        self.requests: list[Request] = []
        self.spans: list[tuple[int, int]] = []  # requests of each doc
        self.extra: list = []
        enc = get_tokenizer()
        for doc in docs:
            start = len(self.requests)
            if task.kind == "choice":
                pairs, gold, texts = task.requests(doc)
                self.requests += [encode_pair(c, x) for c, x in pairs]
                self.extra.append((gold, texts))
            elif task.kind == "lambada":
                self.requests.append(encode_pair(*lambada_pair(doc)))
            else:  # rolling log-likelihood of a whole detokenized page
                tokens = enc.encode_ordinary(wikitext_detokenize(doc["page"]))
                self.requests += rolling_windows(tokens, block_size)
                self.extra.append((len(re.split(r"\s+", doc["page"])), len(doc["page"].encode("utf-8")), len(tokens)))
            self.spans.append((start, len(self.requests)))

    def metrics(self, results) -> dict[str, tuple[float, float | None]]:
        kind = self.task.kind
        if kind == "choice":
            acc, acc_norm = [], []
            for (a, b), (gold, texts) in zip(self.spans, self.extra):
                lls = [r.loglikelihood for r in results[a:b]]
                acc.append(float(max(range(len(lls)), key=lls.__getitem__) == gold))
                normed = [ll / max(len(t), 1) for ll, t in zip(lls, texts)]  # per character of the choice itself
                acc_norm.append(float(max(range(len(normed)), key=normed.__getitem__) == gold))
            out = {"acc": (100 * sum(acc) / len(acc), 100 * mean_stderr(acc))}
            if "acc_norm" in self.task.metrics:
                out["acc_norm"] = (100 * sum(acc_norm) / len(acc_norm), 100 * mean_stderr(acc_norm))
            return out
        if kind == "lambada":
            lls = [r.loglikelihood for r in results]
            greedy = [float(r.is_greedy) for r in results]
            ppl = math.exp(-sum(lls) / len(lls))
            return {"perplexity": (ppl, ppl * mean_stderr(lls)),  # delta method
                    "acc": (100 * sum(greedy) / len(greedy), 100 * mean_stderr(greedy))}
        ll = sum(r.loglikelihood for r in results)
        words, nbytes, ntokens = (sum(x[i] for x in self.extra) for i in range(3))
        return {"word_perplexity": (math.exp(-ll / words), None), "byte_perplexity": (math.exp(-ll / nbytes), None),
                "bits_per_byte": (-ll / nbytes / math.log(2), None), "token_perplexity": (math.exp(-ll / ntokens), None)}


def evaluate_model(model, recipe, tasks: list[str], device: torch.device, dinfo: DistInfo = DistInfo(),
                   batch_size: int | None = None, data_dir: Path | None = None, limit: int | None = None,
                   autocast=None) -> list[Metric]:
    """Every rank calls this; rank 0 gets the metrics (the others an empty list)."""
    import contextlib

    autocast = autocast or (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                            else contextlib.nullcontext())
    bs = batch_size or (32 if device.type == "cuda" else 8)
    if device.type == "cpu":
        from ..train.cpu import keep_heap_memory

        keep_heap_memory()
    model.eval()
    out: list[Metric] = []
    for name in tasks:
        t0 = time.time()
        if name == "val":
            windows = val_windows(open_dataset(data_root() / recipe.data.dataset), recipe.model.block_size,
                                  recipe.data.eval_tokens)
            total = len(windows)
            windows = windows[:limit] if limit else windows
            loss = validation_loss(model, windows, bs, device, autocast, dinfo)
            if dinfo.is_main:
                out.append(Metric("val", "loss", loss, None, len(windows), time.time() - t0, total))
            continue
        task = TASKS[name]
        docs = load_docs(task, data_dir)
        plan = _Plan(task, docs[:limit] if limit else docs, recipe.model.block_size)
        scorer = Scorer(model.logits, recipe.model.block_size, recipe.model.vocab_size, device, bs, autocast)
        mine = list(range(dinfo.rank, len(plan.requests), dinfo.world_size))
        scored = scorer.score([plan.requests[i] for i in mine])
        if dinfo.enabled:
            gathered = [None] * dinfo.world_size
            dist.all_gather_object(gathered, (mine, scored))
        else:
            gathered = [(mine, scored)]
        if dinfo.is_main:
            results = [None] * len(plan.requests)
            for idx, res in gathered:
                for i, r in zip(idx, res):
                    results[i] = r
            for metric, (value, stderr) in plan.metrics(results).items():
                out.append(Metric(name, metric, value, stderr, len(plan.docs), time.time() - t0, len(docs)))
    return out


def record(store, run_id: str, metrics: list[Metric]) -> list[str]:
    """Record the metrics in the results table; returns a line for each one not recorded because the table holds a
    figure over more samples (an evaluation with --limit never replaces a fuller one)."""
    kept = []
    for m in metrics:
        fuller = store.add_eval(run_id, m.task, m.metric, m.value, m.stderr, samples=m.samples, complete=m.complete)
        if fuller is not None:
            kept.append(f"{run_id}: {m.task} {m.metric} over {m.samples:,} examples not recorded: the results table "
                        f"keeps its figure over {fuller:,}")
    return kept


def report(metrics: list[Metric], run_id: str, fmt: str) -> str:
    if fmt == "markdown":  # lm-evaluation-harness's table
        lines = ["|  Tasks   |     Metric      |   |  Value  |   | Stderr |", "|----------|-----------------|---|--------:|---|-------:|"]
        for m in metrics:
            arrow = "↓" if m.metric in LOWER_IS_BETTER else "↑"
            err = f"{m.stderr:.4f}" if m.stderr is not None and math.isfinite(m.stderr) else "N/A"
            lines.append(f"|{m.task:<10}|{m.metric:<17}|{arrow}  |{m.value:9.4f}|± |{err:>8}|")
        return f"run {run_id}\n\n" + "\n".join(lines)
    rows = [f"{run_id}  {m.task:<10} {m.metric:<16} {m.value:10.4f}"
            + (f" ± {m.stderr:.4f}" if m.stderr is not None and math.isfinite(m.stderr) else "")
            + f"   (n={m.samples}{'' if m.complete else f' of {m.total}'}, {m.seconds:.1f}s)" for m in metrics]
    return "\n".join(rows)


def render(results: list[tuple[str, list[Metric]]], fmt: str) -> str:
    """All runs' metrics as json, markdown or plain table lines."""
    if fmt == "json":
        import json

        return json.dumps([{"run_id": rid, "task": m.task, "metric": m.metric, "value": m.value, "stderr": m.stderr,
                            "samples": m.samples, "total": m.total, "seconds": m.seconds}
                           for rid, ms in results for m in ms], indent=2)
    return "\n\n".join(report(ms, rid, fmt) for rid, ms in results)
