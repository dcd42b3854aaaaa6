"""`gptablate prepare text`: files and folders of text -> validation + training shards.

Each file is one document: <|endoftext|> then its tokens. The token stream is the
documents in sorted path order; its first `val_tokens` tokens make the validation shard,
the rest training shards of at most `shard_tokens` tokens each.

Tokenization runs on every core (threads: tiktoken releases the GIL). Large files are cut at newlines that sit between two
non-space ASCII characters: GPT-2's pre-tokenizer never joins text across such a
newline, so the pieces encode to exactly the tokens of the whole file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..console import Bar, info
from ..errors import UserError
from .parallel import ordered_map
from .shards import MANIFEST, open_dataset, read_manifest, sha256_file, write_manifest, write_shard
from .tokenizer import EOT, RANKS_SHA256, get_tokenizer

DEFAULT_VAL_TOKENS = 10_485_760
DEFAULT_SHARD_TOKENS = 100_000_000
CHUNK_BYTES = 1 << 20
# A newline between two printable non-space ASCII bytes: a safe place to cut.
_SAFE_CUT = re.compile(rb"(?<=[\x21-\x7e])\n(?=[\x21-\x7e])")


@dataclass(frozen=True)
class PrepareResult:
    root: Path
    val_tokens: int
    train_tokens: int
    n_train_shards: int
    skipped_files: int
    up_to_date: bool
    seconds: float


def collect_files(paths: list[str | Path], glob: str | None) -> list[Path]:
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            files.append(p.resolve())
        elif p.is_dir():
            pattern = glob or "*"
            found = sorted(f.resolve() for f in p.rglob(pattern) if f.is_file())
            files.extend(found)
        else:
            raise UserError(f"{p}: no such file or folder to tokenize")
    # keep the first occurrence of each file, in the order given
    seen, out = set(), []
    for f in files:
        if f not in seen:
            seen.add(f)
            out.append(f)
    if not out:
        raise UserError(f"no files matched{' --glob ' + glob if glob else ''} under {', '.join(map(str, paths))}")
    return out


def split_points(data: bytes, chunk: int = CHUNK_BYTES) -> list[int]:
    """Cut offsets (start of each piece) at safe newlines roughly every `chunk` bytes."""
    cuts = [0]
    pos = chunk
    while pos < len(data):
        m = _SAFE_CUT.search(data, pos)
        if m is None:
            break
        cut = m.end()
        cuts.append(cut)
        pos = cut + chunk
    return cuts


def _fingerprint(files: list[Path], glob, val_tokens, shard_tokens) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"glob": glob, "val_tokens": val_tokens, "shard_tokens": shard_tokens,
                         "tokenizer": RANKS_SHA256, "format": 1}).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _encode_piece(job: tuple[bool, bytes]) -> bytes:
    first, data = job
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return b"skip"  # callers drop every piece of a file that is not UTF-8
    enc = get_tokenizer()
    if hasattr(enc, "encode_to_numpy"):
        # encode_ordinary's tokens, straight into an array: no Python int per token, and the
        # GIL stays free while tiktoken encodes (the list version held it while building lists).
        ids = enc.encode_to_numpy(text, allowed_special=set(), disallowed_special=())
    else:  # tiktoken < 0.8
        ids = enc.encode_ordinary(text)
    out = np.empty(len(ids) + first, dtype="<u2")
    if first:
        out[0] = EOT
    out[first:] = ids
    return out.tobytes()


def _encode_job(job: tuple[int, bool, bytes]) -> tuple[int, int, bytes]:
    i, first, data = job
    return i, len(data), _encode_piece((first, data))


def _jobs(files: list[Path]):
    """Yield (file index, is first piece, bytes) for every piece of every file."""
    for i, f in enumerate(files):
        data = f.read_bytes()
        cuts = split_points(data) + [len(data)]
        for k in range(len(cuts) - 1):
            yield i, k == 0, data[cuts[k]:cuts[k + 1]]
        if len(data) == 0:
            yield i, True, b""


def prepare_text(paths: list[str | Path], name: str, out_root: Path, glob: str | None = None,
                 val_tokens: int | None = None, shard_tokens: int = DEFAULT_SHARD_TOKENS,
                 workers: int | None = None) -> PrepareResult:
    t0 = time.time()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise UserError(f"--name {name!r}: use letters, digits, '.', '_' and '-' (it becomes a folder name)")
    if shard_tokens <= 0 or (val_tokens is not None and val_tokens <= 0):
        raise UserError("--val-tokens and the shard size must be positive")
    files = collect_files(paths, glob)
    get_tokenizer()  # fail now, with the one-line fix, if the tokenizer is missing
    root = Path(out_root) / name
    fingerprint = _fingerprint(files, glob, val_tokens, shard_tokens)

    old = read_manifest(root)
    if old and old.get("fingerprint") == fingerprint and _shards_intact(root):
        return PrepareResult(root, old["val_tokens"], old["train_tokens"], len(old["shards"]) - 1,
                             old.get("skipped_files", 0), True, time.time() - t0)

    made = not root.exists()  # a folder this call makes goes again if it fails before writing the dataset
    root.mkdir(parents=True, exist_ok=True)
    stream_path = root / f".{name}.stream.tmp"
    total_bytes = sum(f.stat().st_size for f in files)
    skipped: set[int] = set()
    n_tokens = 0
    workers = workers or os.cpu_count() or 1
    try:
        # Pieces come back in order (ordered_map); a file that fails to decode is dropped whole. The bar counts the
        # tokens of every piece come back (those of the file being read included), less the dropped files'.
        pending: list[bytes] = []
        pending_file, pending_tokens = -1, 0
        with open(stream_path, "wb") as stream, \
                Bar(f"tokenizing {len(files)} files", total_bytes, "bytes") as bar:
            for i, nbytes, out in ordered_map(_encode_job, _jobs(files), workers):
                if i != pending_file:
                    n_tokens += _flush(stream, pending)
                    pending, pending_file, pending_tokens = [], i, 0
                if out == b"skip" or i in skipped:
                    skipped.add(i)
                    pending, pending_tokens = [], 0
                else:
                    pending.append(out)
                    pending_tokens += len(out) // 2
                bar.advance(nbytes, note=f"{n_tokens + pending_tokens:,} tokens")
            n_tokens += _flush(stream, pending)
        if skipped:
            info(f"skipped {len(skipped)} file(s) that are not UTF-8 text, e.g. {files[min(skipped)]}")

        if val_tokens is None:
            val_tokens = min(DEFAULT_VAL_TOKENS, n_tokens // 10)
        if n_tokens == 0:
            raise UserError(f"{', '.join(map(str, paths))}: no text to tokenize: {len(skipped)} file(s), none of "
                            "them UTF-8 text")
        if val_tokens < 1 or n_tokens - val_tokens < 1:
            raise UserError(f"corpus too small: {n_tokens:,} tokens from {len(files) - len(skipped)} file(s) cannot give "
                            f"a validation shard of {val_tokens:,} tokens and a training shard; add text or lower --val-tokens")
        result = _write_dataset(root, name, stream_path, n_tokens, val_tokens, shard_tokens, files, skipped,
                                fingerprint, glob)
    finally:
        if stream_path.exists():
            stream_path.unlink()
        if made and not any(root.iterdir()):
            root.rmdir()
    return PrepareResult(root, result["val_tokens"], result["train_tokens"], len(result["shards"]) - 1,
                         len(skipped), False, time.time() - t0)


def _flush(stream, parts: list[bytes]) -> int:
    n = 0
    for p in parts:
        stream.write(p)
        n += len(p) // 2
    return n


def _shards_intact(root: Path) -> bool:
    try:
        ds = open_dataset(root)
        for shard in (ds.val, *ds.train):
            ds.verify(shard)
    except UserError:
        return False
    return True


def _write_dataset(root, name, stream_path, n_tokens, val_tokens, shard_tokens, files, skipped, fingerprint, glob):
    stream = np.memmap(stream_path, dtype="<u2", mode="r", shape=(n_tokens,))
    shards = []
    bounds = [(f"{name}_val_000000.bin", 0, val_tokens)]
    start, k = val_tokens, 1
    while start < n_tokens:
        end = min(start + shard_tokens, n_tokens)
        bounds.append((f"{name}_train_{k:06d}.bin", start, end))
        start, k = end, k + 1
    with Bar("writing shards", len(bounds), "shards") as bar:
        for fname, a, b in bounds:
            digest = write_shard(root / fname, np.asarray(stream[a:b]))
            shards.append({"file": fname, "split": "val" if "_val_" in fname else "train", "tokens": b - a,
                           "sha256": digest})
            bar.advance(1)
    del stream
    keep = {s["file"] for s in shards}
    for stale in list(root.glob("*.bin")):
        if stale.name not in keep:
            stale.unlink()
    manifest = {
        "format": "gptablate-shards", "version": 1, "name": name,
        "tokenizer": {"name": "gpt2", "n_vocab": 50257, "eot": EOT, "ranks_sha256": RANKS_SHA256},
        "document_separator": "<|endoftext|> before every document",
        "val_tokens": val_tokens, "train_tokens": n_tokens - val_tokens, "total_tokens": n_tokens,
        "shard_tokens": shard_tokens, "glob": glob,
        "sources": [str(f) for i, f in enumerate(files) if i not in skipped],
        "skipped_files": len(skipped),
        "shards": shards, "fingerprint": fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    write_manifest(root, manifest)
    return manifest


__all__ = ["prepare_text", "collect_files", "split_points", "PrepareResult", "MANIFEST", "sha256_file"]
