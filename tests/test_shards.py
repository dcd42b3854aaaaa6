import numpy as np
import pytest

from gptablate.data import shards
from gptablate.errors import UserError


def test_round_trip(tmp_path):
    tokens = np.array([50256, 15496, 995, 0, 65535], dtype=np.uint16)
    shards.write_shard(tmp_path / "x_val_000000.bin", tokens)
    assert shards.read_header(tmp_path / "x_val_000000.bin") == 5
    np.testing.assert_array_equal(shards.open_shard(tmp_path / "x_val_000000.bin"), tokens)
    raw = (tmp_path / "x_val_000000.bin").read_bytes()
    header = np.frombuffer(raw[:1024], dtype="<i4")
    assert (header[0], header[1], header[2]) == (20240520, 1, 5)  # llm.c / modded-nanogpt header
    assert len(raw) == 1024 + 2 * 5


def test_bad_magic_is_named(tmp_path):
    p = tmp_path / "a.bin"
    shards.write_shard(p, np.arange(10))
    raw = bytearray(p.read_bytes())
    raw[0] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"a\.bin.*magic"):
        shards.read_header(p)


def test_truncated_shard_is_named(tmp_path):
    p = tmp_path / "b.bin"
    shards.write_shard(p, np.arange(10))
    p.write_bytes(p.read_bytes()[:-2])
    with pytest.raises(UserError, match=r"b\.bin.*truncated"):
        shards.read_header(p)


def test_checksum_mismatch_is_named(tmp_path):
    root = tmp_path / "ds"
    root.mkdir()
    records = []
    for name, toks in (("ds_val_000000.bin", np.arange(100)), ("ds_train_000001.bin", np.arange(200))):
        digest = shards.write_shard(root / name, toks)
        records.append({"file": name, "tokens": len(toks), "sha256": digest})
    shards.write_manifest(root, {"shards": records})
    ds = shards.open_dataset(root)
    ds.verify(ds.train[0])  # intact
    p = root / "ds_train_000001.bin"
    raw = bytearray(p.read_bytes())
    raw[-1] ^= 1  # same size, same header, one flipped bit
    p.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"ds_train_000001\.bin: checksum mismatch"):
        ds.verify(ds.train[0])


def test_missing_dataset_says_what_to_do(tmp_path):
    with pytest.raises(UserError, match="prepare"):
        shards.open_dataset(tmp_path / "fineweb10B")
