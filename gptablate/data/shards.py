"""The token shard format, shared with llm.c and modded-nanogpt.

A shard is `NAME.bin`: a header of 256 little-endian int32 (magic 20240520, version 1,
token count, then zeros) followed by that many uint16 tokens. FineWeb shards put
<|endoftext|> *before* every document; so do ours.

A dataset folder holds `*_val_*.bin` (first) and `*_train_*.bin` shards and a
`manifest.json` with each shard's token count and sha256.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..paths import atomic_write_bytes, atomic_write_text

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
MANIFEST = "manifest.json"


def write_shard(path: Path, tokens: np.ndarray) -> str:
    """Write atomically; returns the file's sha256."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= 2**16):
        raise ValueError("token ids must fit in uint16")
    header = np.zeros(HEADER_INTS, dtype="<i4")
    header[0], header[1], header[2] = MAGIC, VERSION, tokens.size
    payload = header.tobytes() + tokens.astype("<u2", copy=False).tobytes()
    atomic_write_bytes(Path(path), payload)
    return hashlib.sha256(payload).hexdigest()


def read_header(path: Path) -> int:
    """Validate magic, version and file size; returns the token count."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            raw = f.read(HEADER_BYTES)
    except OSError as e:
        raise UserError(f"{path}: cannot read shard: {e.strerror}") from None
    if len(raw) < HEADER_BYTES:
        raise UserError(f"{path}: not a token shard (file of {size} bytes is shorter than the {HEADER_BYTES}-byte header)")
    header = np.frombuffer(raw, dtype="<i4")
    if header[0] != MAGIC:
        raise UserError(f"{path}: not a token shard (magic {header[0]}, expected {MAGIC}); re-create it with `gptablate prepare`")
    if header[1] != VERSION:
        raise UserError(f"{path}: shard version {header[1]} is not supported (expected {VERSION})")
    n = int(header[2])
    expected = HEADER_BYTES + 2 * n
    if size != expected:
        raise UserError(f"{path}: truncated or padded shard: header says {n} tokens ({expected} bytes), file has {size} bytes; "
                        "delete it and run `gptablate prepare` again")
    return n


def open_shard(path: Path) -> np.memmap:
    n = read_header(path)
    return np.memmap(path, dtype="<u2", mode="r", offset=HEADER_BYTES, shape=(n,))


def sha256_file(path: Path, chunk: int = 1 << 24) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- datasets


@dataclass(frozen=True)
class ShardInfo:
    path: Path
    tokens: int
    sha256: str | None


@dataclass(frozen=True)
class Dataset:
    """A prepared dataset folder: one validation shard and the training shards, in order."""

    root: Path
    val: ShardInfo
    train: tuple[ShardInfo, ...]
    manifest: dict

    @property
    def name(self) -> str:
        return self.root.name

    def verify(self, shard: ShardInfo) -> None:
        """Header and size always; checksum when the manifest has one."""
        n = read_header(shard.path)
        if n != shard.tokens:
            raise UserError(f"{shard.path}: has {n} tokens but {self.root / MANIFEST} records {shard.tokens}")
        if shard.sha256 is not None:
            digest = sha256_file(shard.path)
            if digest != shard.sha256:
                raise UserError(f"{shard.path}: checksum mismatch (sha256 {digest[:12]}…, manifest {shard.sha256[:12]}…); "
                                "the file is corrupt: delete it and run `gptablate prepare` again")


def read_manifest(root: Path) -> dict | None:
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: unreadable manifest ({e}); delete it and run `gptablate prepare` again") from None


def write_manifest(root: Path, manifest: dict) -> None:
    atomic_write_text(Path(root) / MANIFEST, json.dumps(manifest, indent=2) + "\n")


def open_dataset(root: Path) -> Dataset:
    """Find the shards of a prepared dataset; refuse clearly if there are none."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"dataset folder {root} does not exist: prepare it first "
                        f"(`gptablate prepare text PATH --name {root.name}` or `gptablate prepare fineweb`), "
                        "or point GPTABLATE_DATA at the folder that holds it")
    manifest = read_manifest(root) or {}
    sums = {s["file"]: s for s in manifest.get("shards", [])}

    def info(p: Path) -> ShardInfo:
        rec = sums.get(p.name)
        tokens = rec["tokens"] if rec else read_header(p)
        return ShardInfo(path=p, tokens=tokens, sha256=rec.get("sha256") if rec else None)

    vals = sorted(root.glob("*_val_*.bin"))
    trains = sorted(root.glob("*_train_*.bin"))
    if not vals or not trains:
        raise UserError(f"{root}: needs a *_val_*.bin shard and at least one *_train_*.bin shard "
                        f"(found {len(vals)} and {len(trains)}); run `gptablate prepare` for it")
    return Dataset(root=root, val=info(vals[0]), train=tuple(info(p) for p in trains), manifest=manifest)
