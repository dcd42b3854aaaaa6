"""`prepare fineweb` through the real huggingface_hub client against a loopback hub."""

from __future__ import annotations

import hashlib
import io
import json
import random

import numpy as np
import pytest

from conftest import WORDS, run_cli
from hubserver import FakeHub

REPO = "kjj0/fineweb10B-gpt2"
RAW = "HuggingFaceFW/fineweb"
SHARD = 3000  # tokens per test shard (the real ones hold 100M)


def llmc_shard(tokens: list[int]) -> bytes:
    """The llm.c shard format, written here independently of gptablate's writer."""
    header = np.zeros(256, dtype="<i4")
    header[:3] = (20240520, 1, len(tokens))
    return header.tobytes() + np.asarray(tokens, dtype="<u2").tobytes()


def documents(n=300, seed=0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 120))).capitalize() + "." for _ in range(n)]


def reference_stream(docs) -> list[int]:
    from gptablate.data.tokenizer import get_tokenizer

    enc = get_tokenizer()
    out = []
    for d in docs:
        out += [50256] + enc.encode_ordinary(d)
    return out


@pytest.fixture
def hub(tmp_path):
    server = FakeHub().start()
    docs = documents()
    stream = reference_stream(docs)
    shards = [stream[i:i + SHARD] for i in range(0, len(stream), SHARD)]
    server.add_file(REPO, "fineweb_val_000000.bin", llmc_shard(shards[0]))
    for k, toks in enumerate(shards[1:], 1):
        server.add_file(REPO, f"fineweb_train_{k:06d}.bin", llmc_shard(toks))
    import pyarrow as pa
    import pyarrow.parquet as pq

    for part, chunk in enumerate((docs[:170], docs[170:])):  # two parquet files, documents in order
        buf = io.BytesIO()
        pq.write_table(pa.table({"text": chunk, "id": [str(i) for i in range(len(chunk))]}), buf)
        server.add_file(RAW, f"sample/10BT/{part:03d}_00000.parquet", buf.getvalue())
    server.add_file(RAW, "sample/100BT/000_00000.parquet", b"not used")
    server.n_train = len(shards) - 1
    server.env = {"HF_ENDPOINT": server.url, "HF_HOME": str(tmp_path / "hf"), "GPTABLATE_DATA": str(tmp_path / "data"),
                  "HF_HUB_DISABLE_XET": "1", "HF_HUB_ETAG_TIMEOUT": "5"}
    server.data = tmp_path / "data" / "fineweb10B"
    yield server
    server.stop()


def resolves(hub, method="GET"):
    return [r for r in hub.requests if r[0] == method and "/resolve/" in r[1]]


def test_fresh_download_then_nothing_to_do(hub):
    assert hub.n_train >= 4
    p = run_cli("prepare", "fineweb", "--shards", "2", env=hub.env, check=True)
    assert "fetched 3 shard(s)" in p.stderr
    names = sorted(f.name for f in hub.data.glob("*.bin"))
    assert names == ["fineweb_train_000001.bin", "fineweb_train_000002.bin", "fineweb_val_000000.bin"]
    for name in names:
        assert (hub.data / name).read_bytes() == hub.repos[f"datasets/{REPO}"][name]
    manifest = json.loads((hub.data / "manifest.json").read_text())
    assert {s["file"]: s["tokens"] for s in manifest["shards"]}["fineweb_val_000000.bin"] == SHARD
    # the recipes' loader accepts it
    from gptablate.data.shards import open_dataset

    ds = open_dataset(hub.data)
    assert len(ds.train) == 2 and all(ds.verify(s) is None for s in (ds.val, *ds.train))

    before = len(resolves(hub))
    again = run_cli("prepare", "fineweb", "--shards", "2", env=hub.env, check=True)
    assert "up to date" in again.stderr and len(resolves(hub)) == before  # no download the second time
    more = run_cli("prepare", "fineweb", "--tokens", "250M", env=hub.env, check=True)  # 3 shards of 100M
    assert "fetched 1 shard(s), 3 already present" in more.stderr


def test_resume_after_the_connection_drops_mid_file(hub):
    target = "fineweb_train_000001.bin"
    # Larger than the client's 10 MB read chunk, so the cut comes after data reached the disk.
    tokens = np.random.default_rng(0).integers(0, 50257, 12_000_000)
    hub.repos[f"datasets/{REPO}"][target] = llmc_shard(tokens.tolist())
    hub.drop_once.add(target)
    p = run_cli("prepare", "fineweb", "--shards", "1", env=hub.env)
    if p.returncode != 0:  # the client gave up: the next run resumes from the partial file
        assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
        run_cli("prepare", "fineweb", "--shards", "1", env=hub.env, check=True)
    ranged = [r for r in resolves(hub) if r[1].endswith(target) and r[2]]
    assert ranged and int(ranged[0][2].split("=")[1].split("-")[0]) > 0  # asked only for the rest
    assert (hub.data / target).read_bytes() == hub.repos[f"datasets/{REPO}"][target]


def test_corrupted_shard_is_deleted_named_and_refetched(hub):
    target = "fineweb_train_000002.bin"
    good = hub.repos[f"datasets/{REPO}"][target]
    bad = bytearray(good)
    bad[2000] ^= 0xFF  # same size and header, one corrupted token
    hub.repos[f"datasets/{REPO}"][target] = bytes(bad)
    hub.advertise[target] = hashlib.sha256(good).hexdigest()  # the listing still gives the good checksum
    p = run_cli("prepare", "fineweb", "--shards", "2", env=hub.env)
    assert p.returncode == 2 and target in p.stderr and "run the same command again" in p.stderr, p.stderr
    assert not (hub.data / target).exists()
    hub.repos[f"datasets/{REPO}"][target] = good  # the hub is fixed; the next run fetches it anew
    del hub.advertise[target]
    run_cli("prepare", "fineweb", "--shards", "2", env=hub.env, check=True)
    assert (hub.data / target).read_bytes() == good


def test_failures_say_what_happened(hub):
    p = run_cli("prepare", "fineweb", "--shards", "50", env=hub.env)
    assert p.returncode == 2 and f"has {hub.n_train} training shards" in p.stderr and "50 were asked for" in p.stderr
    p = run_cli("prepare", "fineweb", env={**hub.env, "HF_ENDPOINT": "http://127.0.0.1:9"})
    assert p.returncode == 2 and "cannot reach http://127.0.0.1:9" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    # arguments that cannot be right are refused before the network is asked (here it cannot be reached)
    for args, says in ((["--shards", "0"], "--shards / --tokens must ask for at least one training shard"),
                       (["--shards", "1", "--tokens", "1B"], "give --shards or --tokens, not both"),
                       (["--workers", "-2"], "--workers -2: must be at least 1"),
                       (["--from-raw", "--shard-tokens", "0"], "--shard-tokens 0: must be at least 1")):
        p = run_cli("prepare", "fineweb", *args, env={**hub.env, "HF_ENDPOINT": "http://127.0.0.1:9"})
        assert p.returncode == 2 and p.stderr.strip().splitlines() == [f"error: {says}"], (args, p.stderr)


def test_missing_repository_and_missing_file(hub):
    p = run_cli("prepare", "fineweb-edu", env=hub.env)  # kjj0/finewebedu10B-gpt2 is not on this hub
    assert p.returncode == 2 and "kjj0/finewebedu10B-gpt2: no such dataset" in p.stderr
    del hub.repos[f"datasets/{REPO}"]["fineweb_val_000000.bin"]
    p = run_cli("prepare", "fineweb", "--shards", "1", env=hub.env)
    assert p.returncode == 2 and "fineweb_val_000000.bin" in p.stderr


def test_raw_path_gives_the_pretokenized_stream(hub, tmp_path):
    run_cli("prepare", "fineweb", env=hub.env, check=True)
    raw = run_cli("prepare", "fineweb", "--from-raw", "--name", "fineweb_raw", "--shard-tokens", str(SHARD),
                  "--workers", "2", env=hub.env)
    assert raw.returncode == 0, raw.stderr
    raw_dir = tmp_path / "data" / "fineweb_raw"
    pre = sorted(p.name for p in hub.data.glob("*.bin"))
    assert sorted(p.name for p in raw_dir.glob("*.bin")) == pre
    for name in pre:
        assert (raw_dir / name).read_bytes() == (hub.data / name).read_bytes(), name
    run_cli("prepare", "fineweb", "--from-raw", "--name", "two", "--shard-tokens", str(SHARD),
                      "--shards", "2", env=hub.env, check=True)
    assert sorted(p.name for p in (tmp_path / "data" / "two").glob("*.bin")) == pre[:2] + [pre[-1]]
    # shards larger than the whole text: no training shard to write
    big = run_cli("prepare", "fineweb", "--from-raw", "--name", "big", "--shard-tokens", "1000000", env=hub.env)
    assert big.returncode == 2 and big.stderr.strip().splitlines()[-1] == (
        f"error: {RAW}: too little text for a validation shard of 1,000,000 tokens and a training shard")
    assert not (tmp_path / "data" / "big").exists()


def test_list_shows_sources_and_local_state(hub):
    run_cli("prepare", "fineweb", "--shards", "1", env=hub.env, check=True)
    out = run_cli("prepare", "--list", env=hub.env, check=True).stdout
    line = next(l for l in out.splitlines() if l.startswith("fineweb "))
    assert f"{hub.n_train} train shards" in line and "1 train shard(s)" in line
    assert "unreachable" not in line
