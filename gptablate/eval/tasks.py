"""The evaluation tasks, as data: where the documents come from, the requests, the metrics.

Each follows lm-evaluation-harness's definition so numbers compare with published ones.
Documents come from the hub (each dataset's `refs/convert/parquet` revision, files
`{config}/{split}/*.parquet`) or from a local folder laid out like the team's shared data
(the datasets' original public formats).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..errors import UserError


@dataclass(frozen=True)
class Task:
    name: str
    repo: str
    config: str
    split: str
    local: Callable[[Path], list[dict]]  # documents from a --data-dir
    local_hint: str
    kind: str  # "choice", "lambada" or "rolling"
    metrics: tuple[str, ...]
    # choice tasks: doc -> (list of (context, continuation) per choice, gold index, choice texts)
    requests: Callable[[dict], tuple[list[tuple[str, str]], int, list[str]]] | None = None
    from_hub: Callable[[dict], dict] = field(default=lambda d: d)  # hub row -> the doc shape `requests` takes


# --------------------------------------------------------------------------- wikitext


_DETOKENIZE = [  # (pattern, replacement, is_regex): lm-eval's wikitext_detokenizer rules, in order
    ("s '", "s'", False), (r"/' [0-9]/", r"/'[0-9]/", True),
    (" @-@ ", "-", False), (" @,@ ", ",", False), (" @.@ ", ".", False),
    (" : ", ": ", False), (" ; ", "; ", False), (" . ", ". ", False), (" ! ", "! ", False),
    (" ? ", "? ", False), (" , ", ", ", False),
    (r"\(\s*([^\)]*?)\s*\)", r"(\1)", True), (r"\[\s*([^\]]*?)\s*\]", r"[\1]", True),
    (r"{\s*([^}]*?)\s*}", r"{\1}", True), (r"\"\s*([^\"]*?)\s*\"", r'"\1"', True),
    (r"'\s*([^']*?)\s*'", r"'\1'", True),
    ("= = = =", "====", False), ("= = =", "===", False), ("= =", "==", False),
    (" \u00b0 ", "\u00b0", False), (" \n", "\n", False), ("\n ", "\n", False),
    (" N ", " 1 ", False), (" 's", "'s", False),
]


def wikitext_detokenize(text: str) -> str:
    for pattern, repl, is_regex in _DETOKENIZE:
        text = re.sub(pattern, repl, text) if is_regex else text.replace(pattern, repl)
    return text


def wikitext_local(root: Path) -> list[dict]:
    """wiki.test.raw split into pages at its title lines (' = Title = '): the 62 test documents."""
    text = _read(root / "wikitext-2-raw" / "wiki.test.raw")
    pages, current = [], []
    for line in text.split("\n"):
        if re.match(r"^ = [^=].* = $", line) and current:
            pages.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        pages.append("\n".join(current))
    return [{"page": p} for p in pages if p.strip()]


# --------------------------------------------------------------------------- lambada


def lambada_local(root: Path) -> list[dict]:
    return _jsonl(root / "lambada" / "lambada_test.jsonl")


def lambada_pair(doc: dict) -> tuple[str, str]:
    context, word = doc["text"].rsplit(" ", 1)
    return context, " " + word


# --------------------------------------------------------------------------- hellaswag


def hellaswag_preprocess(text: str) -> str:
    text = text.strip().replace(" [title]", ". ")
    text = re.sub(r"\[.*?\]", "", text)
    return text.replace("  ", " ")


def hellaswag_from_hub(row: dict) -> dict:
    ctx = row["ctx_a"] + " " + row["ctx_b"].capitalize()
    return {"query": hellaswag_preprocess(row["activity_label"] + ": " + ctx),
            "endings": [hellaswag_preprocess(e) for e in row["endings"]], "label": int(row["label"])}


def hellaswag_local(root: Path) -> list[dict]:
    """The derived text rendering: 6 lines per task, the query already preprocessed (read verbatim)."""
    lines = _read(root / "hellaswag" / "hellaswag_val_full.txt").split("\n")
    return [{"query": lines[i], "label": int(lines[i + 1]), "endings": lines[i + 2:i + 6]}
            for i in range(0, len(lines) - 5, 6)]


def hellaswag_requests(doc):
    return [(doc["query"], " " + e) for e in doc["endings"]], doc["label"], doc["endings"]


# --------------------------------------------------------------------------- arc, piqa, winogrande


def arc_from_hub(row: dict) -> dict:
    return {"question": row["question"], "texts": list(row["choices"]["text"]),
            "labels": list(row["choices"]["label"]), "answer": row["answerKey"]}


def arc_local(root: Path) -> list[dict]:
    return [{"question": d["question"]["stem"], "texts": [c["text"] for c in d["question"]["choices"]],
             "labels": [c["label"] for c in d["question"]["choices"]], "answer": d["answerKey"]}
            for d in _jsonl(root / "arc" / "ARC-Easy-Test.jsonl")]


def arc_requests(doc):
    context = f"Question: {doc['question']}\nAnswer:"
    return [(context, " " + t) for t in doc["texts"]], doc["labels"].index(doc["answer"]), doc["texts"]


def piqa_local(root: Path) -> list[dict]:
    docs = _jsonl(root / "piqa" / "valid.jsonl")
    labels = _read(root / "piqa" / "valid-labels.lst").split()
    if len(labels) != len(docs):
        raise UserError(f"{root / 'piqa'}: {len(docs)} questions but {len(labels)} labels")
    return [{**d, "label": int(y)} for d, y in zip(docs, labels)]


def piqa_requests(doc):
    context = f"Question: {doc['goal']}\nAnswer:"
    sols = [doc["sol1"], doc["sol2"]]
    return [(context, " " + s) for s in sols], int(doc["label"]), sols


def winogrande_local(root: Path) -> list[dict]:
    return _jsonl(root / "winogrande" / "dev.jsonl")


def winogrande_requests(doc):
    """Partial scoring (Trinh & Le): each option fills the blank; score the rest of the sentence."""
    idx = doc["sentence"].index("_")
    rest = " " + doc["sentence"][idx + 1:].strip()
    options = [doc["option1"], doc["option2"]]
    return [(doc["sentence"][:idx] + o, rest) for o in options], int(doc["answer"]) - 1, options


# --------------------------------------------------------------------------- registry


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise UserError(f"{path}: missing; the --data-dir must hold the original files (see `gptablate eval --help`)") from None


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in _read(path).splitlines() if line.strip()]


TASKS: dict[str, Task] = {t.name: t for t in [
    Task("wikitext2", "EleutherAI/wikitext_document_level", "wikitext-2-raw-v1", "test", wikitext_local,
         "wikitext-2-raw/wiki.test.raw", "rolling",
         ("word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity")),
    Task("lambada", "EleutherAI/lambada_openai", "default", "test", lambada_local, "lambada/lambada_test.jsonl",
         "lambada", ("perplexity", "acc")),
    Task("hellaswag", "Rowan/hellaswag", "default", "validation", hellaswag_local,
         "hellaswag/hellaswag_val_full.txt", "choice", ("acc", "acc_norm"), hellaswag_requests, hellaswag_from_hub),
    Task("arc_easy", "allenai/ai2_arc", "ARC-Easy", "test", arc_local, "arc/ARC-Easy-Test.jsonl", "choice",
         ("acc", "acc_norm"), arc_requests, arc_from_hub),
    Task("piqa", "baber/piqa", "default", "validation", piqa_local, "piqa/valid.jsonl + valid-labels.lst", "choice",
         ("acc", "acc_norm"), piqa_requests),
    Task("winogrande", "allenai/winogrande", "winogrande_xl", "validation", winogrande_local,
         "winogrande/dev.jsonl", "choice", ("acc",), winogrande_requests),
]}
ALL_TASKS = ("val",) + tuple(TASKS)
LOWER_IS_BETTER = {"loss", "perplexity", "word_perplexity", "byte_perplexity", "bits_per_byte", "token_perplexity"}


def mean_stderr(values: list[float]) -> float:
    """Standard error of a mean: sample standard deviation / √n (lm-eval's mean_stderr)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mu = sum(values) / n
    return math.sqrt(sum((v - mu) ** 2 for v in values) / (n - 1)) / math.sqrt(n)
