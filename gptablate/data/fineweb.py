"""`gptablate prepare fineweb`: FineWeb for GPT-2, pre-tokenized or from raw text.

Default: the pre-tokenized shards modded-nanogpt uses (Hugging Face datasets
kjj0/fineweb10B-gpt2 and siblings: `{prefix}_val_000000.bin`, `{prefix}_train_000001.bin`…,
100M tokens each, in our shard format), fetched into the hub cache and hard-linked into
$GPTABLATE_DATA/<dataset>/. `--from-raw` streams the HuggingFaceFW parquet files instead and
tokenizes them on every core into the same format: <|endoftext|> before every document,
the first 100M tokens the validation shard. For the same documents both give the same
token stream.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import Bar
from ..errors import UserError
from . import hub
from .parallel import ordered_map
from .shards import read_header, read_manifest, sha256_file, write_manifest, write_shard
from .tokenizer import EOT, RANKS_SHA256, get_tokenizer

SHARD_TOKENS = 100_000_000


@dataclass(frozen=True)
class Source:
    name: str
    repo: str  # pre-tokenized shards
    prefix: str  # shard file prefix
    dataset: str  # folder under $GPTABLATE_DATA (what recipes name)
    raw_repo: str  # parquet with a `text` column
    raw_prefix: str
    description: str


SOURCES = {
    "fineweb": Source("fineweb", "kjj0/fineweb10B-gpt2", "fineweb", "fineweb10B", "HuggingFaceFW/fineweb",
                      "sample/10BT", "FineWeb sample-10BT, GPT-2 BPE: the studies' data"),
    "fineweb-edu": Source("fineweb-edu", "kjj0/finewebedu10B-gpt2", "finewebedu", "finewebedu10B",
                          "HuggingFaceFW/fineweb-edu", "sample/10BT", "FineWeb-Edu sample-10BT, GPT-2 BPE"),
    "fineweb100B": Source("fineweb100B", "kjj0/fineweb100B-gpt2", "fineweb", "fineweb100B", "HuggingFaceFW/fineweb",
                          "sample/100BT", "FineWeb sample-100BT, GPT-2 BPE"),
}


def parse_tokens(text: str) -> int:
    """'2B' -> 2_000_000_000; also K, M, T and plain integers."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMbBtT]?)\s*", str(text))
    if not m:
        raise UserError(f"--tokens {text!r}: give a count like 500M, 2B or 1000000")
    scale = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def _asked_train(shards: int | None, tokens: int | None, per_shard: int, **counts: int | None) -> int | None:
    """The training shards --shards or --tokens ask for (None: all), with every count given (workers, shard size)
    checked: called before the hub is asked, so that arguments that cannot be right fail first."""
    for flag, value in counts.items():
        if value is not None and value < 1:
            raise UserError(f"--{flag.replace('_', '-')} {value}: must be at least 1")
    if shards is not None and tokens is not None:
        raise UserError("give --shards or --tokens, not both")
    if shards is None and tokens is None:
        return None
    n = shards if shards is not None else math.ceil(tokens / per_shard)
    if n < 1:
        raise UserError("--shards / --tokens must ask for at least one training shard")
    return n


@dataclass
class FetchResult:
    root: Path
    fetched: list[str]
    present: list[str]
    train_shards: int
    tokens: int


def _local_ok(root: Path, name: str, record: dict | None, remote: hub.RemoteFile) -> bool:
    path = root / name
    if record is None or not path.is_file():
        return False
    if remote.sha256 and record.get("sha256") != remote.sha256:
        return False  # the remote file changed
    try:
        return read_header(path) == record["tokens"] and path.stat().st_size == remote.size
    except UserError:
        return False


def _existing_dir(p: Path) -> Path:
    while not p.exists():
        p = p.parent
    return p


def _place(cached: Path, dest: Path) -> None:
    """Hard-link the cached blob into the dataset folder (no second copy); symlink across devices."""
    blob = cached.resolve()
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    if tmp.exists() or tmp.is_symlink():
        tmp.unlink()
    try:
        os.link(blob, tmp)
    except OSError:
        os.symlink(blob, tmp)
    os.replace(tmp, dest)


def _verify_download(cached: Path, remote: hub.RemoteFile) -> tuple[int, str]:
    """Header and size always, sha256 against the hub's LFS id; a bad blob is deleted."""
    blob = cached.resolve()
    try:
        tokens = read_header(blob)
        digest = sha256_file(blob)
        if blob.stat().st_size != remote.size:
            raise UserError(f"{remote.path}: {blob.stat().st_size} bytes, the hub lists {remote.size}")
        if remote.sha256 and digest != remote.sha256:
            raise UserError(f"{remote.path}: sha256 {digest[:12]}… does not match the hub's {remote.sha256[:12]}…")
    except UserError:
        for p in (blob, cached):
            if p.exists() or p.is_symlink():
                p.unlink()
        raise
    return tokens, digest


def prepare_pretokenized(source: str, out_root: Path, shards: int | None = None, tokens: int | None = None,
                         workers: int | None = None) -> FetchResult:
    asked = _asked_train(shards, tokens, SHARD_TOKENS, workers=workers)
    workers = workers or 8
    src = SOURCES[source]
    remote = hub.list_files(src.repo)
    val = f"{src.prefix}_val_000000.bin"
    trains = sorted(p for p in remote if re.fullmatch(rf"{re.escape(src.prefix)}_train_\d{{6}}\.bin", p))
    if val not in remote or not trains:
        raise UserError(f"{src.repo} on {hub.endpoint()} has no {val} or no training shards: is it the right repository?")
    n = len(trains) if asked is None else asked
    if n > len(trains):
        raise UserError(f"{src.repo} has {len(trains)} training shards ({len(trains) * SHARD_TOKENS / 1e9:.1f}B tokens); "
                        f"{n} were asked for")
    wanted = [val] + trains[:n]
    root = out_root / src.dataset
    root.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(root) or {}
    records = {s["file"]: s for s in manifest.get("shards", [])}
    present = [f for f in wanted if _local_ok(root, f, records.get(f), remote[f])]
    todo = [f for f in wanted if f not in present]

    need = sum(remote[f].size for f in todo) - hub.bytes_in_progress(src.repo)
    cache = hub.cache_dir()
    free = shutil.disk_usage(_existing_dir(cache)).free
    if need > free:
        raise UserError(f"not enough disk: {len(todo)} shard(s) need {need / 1e9:.1f} GB, {free / 1e9:.1f} GB free "
                        f"under {_existing_dir(cache)} (the hub cache; set HF_HOME to move it)")

    failures: list[str] = []
    if todo:
        total = sum(remote[f].size for f in todo)
        done_bytes = 0
        stop = threading.Event()
        with Bar(f"downloading {len(todo)} shard(s) of {src.repo}", total, "bytes") as bar:
            def poll():  # live bytes: finished files plus the cache's partial files
                shown = 0
                while not stop.wait(0.5):
                    now = min(done_bytes + hub.bytes_in_progress(src.repo), total)
                    bar.advance(now - shown)
                    shown = now
                bar.advance(done_bytes - shown)

            poller = threading.Thread(target=poll, daemon=True)
            poller.start()
            try:
                with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
                    futures = {pool.submit(hub.fetch, src.repo, f): f for f in todo}
                    for fut in as_completed(futures):
                        f = futures[fut]
                        try:
                            cached = fut.result()
                            n_tok, digest = _verify_download(cached, remote[f])
                        except UserError as e:
                            failures.append(str(e))
                            continue
                        _place(cached, root / f)
                        records[f] = {"file": f, "split": "val" if "_val_" in f else "train", "tokens": n_tok,
                                      "sha256": digest}
                        done_bytes += remote[f].size
            finally:
                stop.set()
                poller.join()
    kept = [records[f] for f in sorted(records) if (root / f).exists()]
    write_manifest(root, {
        "format": "gptablate-shards", "version": 1, "name": src.dataset, "source": f"hf://datasets/{src.repo}",
        "tokenizer": {"name": "gpt2", "n_vocab": 50257, "eot": EOT, "ranks_sha256": RANKS_SHA256},
        "document_separator": "<|endoftext|> before every document",
        "val_tokens": records[val]["tokens"] if val in records else 0,
        "train_tokens": sum(s["tokens"] for s in kept if s["split"] == "train"),
        "shards": kept, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    if failures:
        raise UserError(f"{len(failures)} shard(s) failed verification and were deleted ({failures[0]}); "
                        "run the same command again to fetch them anew")
    return FetchResult(root, todo, present, n, sum(records[f]["tokens"] for f in wanted))


# --------------------------------------------------------------------------- from raw text


def _encode_batch(texts: list[str]) -> bytes:
    enc = get_tokenizer()
    out: list[int] = []
    for t in texts:
        out.append(EOT)
        out.extend(enc.encode_ordinary(t))
    return np.asarray(out, dtype="<u2").tobytes()


class ShardStreamWriter:
    """Cuts a token stream into shards: the first `shard_tokens` tokens validation, then training."""

    def __init__(self, root: Path, prefix: str, shard_tokens: int, max_train: int | None):
        self.root, self.prefix, self.shard_tokens, self.max_train = root, prefix, shard_tokens, max_train
        self.buf = np.empty(shard_tokens, dtype="<u2")
        self.fill = 0
        self.index = 0
        self.records: list[dict] = []

    @property
    def full(self) -> bool:
        return self.max_train is not None and self.index > self.max_train

    def add(self, tokens: np.ndarray) -> None:
        pos = 0
        while pos < len(tokens) and not self.full:
            take = min(len(tokens) - pos, self.shard_tokens - self.fill)
            self.buf[self.fill:self.fill + take] = tokens[pos:pos + take]
            self.fill += take
            pos += take
            if self.fill == self.shard_tokens:
                self._flush()

    def _flush(self) -> None:
        split = "val" if self.index == 0 else "train"
        name = f"{self.prefix}_{split}_{self.index:06d}.bin"
        digest = write_shard(self.root / name, self.buf[: self.fill])
        self.records.append({"file": name, "split": split, "tokens": int(self.fill), "sha256": digest})
        self.index += 1
        self.fill = 0

    def finish(self) -> None:
        if self.fill and not self.full:
            self._flush()


def prepare_raw(source: str, out_root: Path, shards: int | None = None, tokens: int | None = None,
                workers: int | None = None, shard_tokens: int | None = None, name: str | None = None) -> FetchResult:
    per_shard = SHARD_TOKENS if shard_tokens is None else shard_tokens
    max_train = _asked_train(shards, tokens, per_shard, workers=workers, shard_tokens=shard_tokens)
    src = SOURCES[source]
    remote = hub.list_files(src.raw_repo, prefix=src.raw_prefix)
    parquets = sorted(p for p in remote if p.endswith(".parquet"))
    if not parquets:
        raise UserError(f"{src.raw_repo} has no parquet files under {src.raw_prefix} on {hub.endpoint()}")
    root = out_root / (name or src.dataset)
    # Written beside the dataset and swapped in at the end: a failure leaves the old one whole.
    stage = out_root / f".{root.name}.staging"
    if stage.exists():
        shutil.rmtree(stage)
    stage.mkdir(parents=True)
    writer = ShardStreamWriter(stage, src.prefix, per_shard, max_train)
    import pyarrow.parquet as pq

    workers = workers or os.cpu_count() or 1
    get_tokenizer()
    with Bar(f"tokenizing {len(parquets)} parquet file(s) of {src.raw_repo}", len(parquets), "files") as bar:
        for p in parquets:
            if writer.full:
                break
            local = hub.fetch(src.raw_repo, p)
            batches = (b.column("text").to_pylist() for b in pq.ParquetFile(local).iter_batches(columns=["text"],
                                                                                                 batch_size=512))
            for chunk in ordered_map(_encode_batch, batches, workers):
                writer.add(np.frombuffer(chunk, dtype="<u2"))
                if writer.full:
                    break
            bar.advance(1, note=f"{writer.index} shard(s)")
        writer.finish()
    if not writer.records or writer.records[-1]["split"] != "train":
        shutil.rmtree(stage)
        raise UserError(f"{src.raw_repo}: too little text for a validation shard of {per_shard:,} tokens and a "
                        "training shard")
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.bin"):
        old.unlink()  # no shard of an older stream may survive beside the new one
    for r in writer.records:
        os.replace(stage / r["file"], root / r["file"])
    shutil.rmtree(stage)
    write_manifest(root, {
        "format": "gptablate-shards", "version": 1, "name": root.name,
        "source": f"hf://datasets/{src.raw_repo}/{src.raw_prefix} (tokenized by gptablate)",
        "tokenizer": {"name": "gpt2", "n_vocab": 50257, "eot": EOT, "ranks_sha256": RANKS_SHA256},
        "document_separator": "<|endoftext|> before every document",
        "val_tokens": writer.records[0]["tokens"],
        "train_tokens": sum(r["tokens"] for r in writer.records[1:]),
        "shards": writer.records, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    })
    return FetchResult(root, [r["file"] for r in writer.records], [], len(writer.records) - 1,
                       sum(r["tokens"] for r in writer.records))


def local_status(out_root: Path) -> dict[str, str]:
    """What is prepared locally, per dataset folder: for `prepare --list`."""
    out = {}
    for src in SOURCES.values():
        m = read_manifest(out_root / src.dataset) if (out_root / src.dataset).is_dir() else None
        if m:
            n_train = sum(1 for s in m.get("shards", []) if s.get("split") == "train")
            out[src.name] = f"{n_train} train shard(s), {m.get('train_tokens', 0) / 1e9:.2f}B tokens"
        else:
            out[src.name] = "not prepared"
    return out
