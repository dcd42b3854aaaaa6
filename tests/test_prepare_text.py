import sysconfig
from pathlib import Path

import numpy as np
import pytest

from conftest import shared, write_corpus
from gptablate.data.prepare_text import prepare_text, split_points
from gptablate.data.shards import open_dataset, open_shard, read_manifest
from gptablate.data.tokenizer import EOT, get_tokenizer
from gptablate.errors import UserError


@pytest.mark.parametrize("source", ["shakespeare", "stdlib"])
def test_cutting_at_safe_newlines_changes_no_token(source):
    if source == "shakespeare":
        data = shared("tinyshakespeare/input.txt").read_bytes()
    else:
        stdlib = Path(sysconfig.get_paths()["stdlib"])
        data = b"".join(p.read_bytes() for p in sorted(stdlib.glob("[a-f]*.py")))
    enc = get_tokenizer()
    cuts = split_points(data, chunk=4096) + [len(data)]
    assert len(cuts) > 20
    pieces = [enc.encode_ordinary(data[a:b].decode()) for a, b in zip(cuts, cuts[1:])]
    assert [t for p in pieces for t in p] == enc.encode_ordinary(data.decode())


def test_special_token_text_is_ordinary_text_as_encode_ordinary_has_it(tmp_path):
    """A document that spells out <|endoftext|> gets the ordinary tokens of those characters
    (encode_ordinary's rule), never the EOT id: only document boundaries are EOT."""
    folder = tmp_path / "text"
    folder.mkdir()
    text = "before <|endoftext|> after, and ünïcödé 🙂 " * 50
    (folder / "a.txt").write_text(text)
    r = prepare_text([folder], "sp", tmp_path / "data", workers=2, val_tokens=5)
    ds = open_dataset(r.root)
    got = np.concatenate([open_shard(ds.val.path)] + [open_shard(s.path) for s in ds.train]).tolist()
    assert got == [EOT] + get_tokenizer().encode_ordinary(text)
    assert got.count(EOT) == 1


def test_prepare_writes_documents_in_order_with_eot_first(tmp_path, capsys):
    files = write_corpus(tmp_path / "text", n_files=5, sentences=40)
    (tmp_path / "text" / "skip.md").write_text("not matched by the glob")
    r = prepare_text([tmp_path / "text"], "mini", tmp_path / "data", glob="*.txt", workers=1)
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("tokenizing")]
    enc = get_tokenizer()
    expected = []
    for f in sorted(files):
        expected += [EOT] + enc.encode_ordinary(f.read_text())
    ds = open_dataset(r.root)
    got = np.concatenate([open_shard(ds.val.path)] + [open_shard(s.path) for s in ds.train])
    assert got.tolist() == expected
    assert r.val_tokens == len(expected) // 10  # default: 10% when under 10,485,760
    manifest = read_manifest(r.root)
    assert manifest["total_tokens"] == len(expected)
    # the progress line at the end counts every token, the last file's too (it once counted only flushed files)
    assert progress[-1].startswith("tokenizing 5 files: 100.0%") and progress[-1].endswith(f" {len(expected):,} tokens")
    assert [s["file"] for s in manifest["shards"]] == ["mini_val_000000.bin", "mini_train_000001.bin"]
    for shard in (ds.val, *ds.train):
        ds.verify(shard)


def test_shard_size_and_parallel_workers_give_the_same_stream(tmp_path):
    write_corpus(tmp_path / "text", n_files=6, sentences=200)
    one = prepare_text([tmp_path / "text"], "a", tmp_path / "data", val_tokens=1000, shard_tokens=5000, workers=1)
    two = prepare_text([tmp_path / "text"], "b", tmp_path / "data", val_tokens=1000, shard_tokens=5000, workers=2)
    ds_a, ds_b = open_dataset(one.root), open_dataset(two.root)
    assert len(ds_a.train) > 2 and all(s.tokens <= 5000 for s in ds_a.train)
    stream = lambda ds: np.concatenate([open_shard(s.path) for s in (ds.val, *ds.train)])
    np.testing.assert_array_equal(stream(ds_a), stream(ds_b))
    assert ds_a.val.tokens == 1000


def test_second_run_does_no_work(tmp_path):
    write_corpus(tmp_path / "text", n_files=3)
    first = prepare_text([tmp_path / "text"], "c", tmp_path / "data", workers=1)
    mtimes = {p.name: p.stat().st_mtime_ns for p in first.root.iterdir()}
    second = prepare_text([tmp_path / "text"], "c", tmp_path / "data", workers=1)
    assert second.up_to_date and not first.up_to_date
    assert {p.name: p.stat().st_mtime_ns for p in first.root.iterdir()} == mtimes
    # a changed input is noticed
    (tmp_path / "text" / "doc_000.txt").write_text("new text " * 100)
    assert not prepare_text([tmp_path / "text"], "c", tmp_path / "data", workers=1).up_to_date


def test_corrupt_shard_is_rebuilt_on_the_next_run(tmp_path):
    write_corpus(tmp_path / "text", n_files=3)
    r = prepare_text([tmp_path / "text"], "d", tmp_path / "data", workers=1)
    shard = r.root / "d_train_000001.bin"
    raw = bytearray(shard.read_bytes())
    raw[-1] ^= 1
    shard.write_bytes(bytes(raw))
    again = prepare_text([tmp_path / "text"], "d", tmp_path / "data", workers=1)
    assert not again.up_to_date
    ds = open_dataset(r.root)
    ds.verify(ds.train[0])


def test_too_small_corpus_is_refused_with_its_size(tmp_path):
    (tmp_path / "t.txt").write_text("hi")
    with pytest.raises(UserError, match=r"corpus too small: 2 tokens"):
        prepare_text([tmp_path / "t.txt"], "e", tmp_path / "data", workers=1)
    assert not (tmp_path / "data" / "e").exists()  # no empty dataset folder left behind


def test_a_folder_of_no_text_is_refused_as_such(tmp_path):
    """Every file skipped as not UTF-8: the error says so, where it had said 'corpus too small ... cannot give a
    validation shard of 0 tokens ... lower --val-tokens'."""
    (tmp_path / "bin").mkdir()
    for i in range(2):
        (tmp_path / "bin" / f"b{i}.dat").write_bytes(b"\xff\xfe\x00garbage" * 50)
    with pytest.raises(UserError, match=f"^{tmp_path / 'bin'}: no text to tokenize: 2 file\\(s\\), none of them UTF-8 "
                                        "text$"):
        prepare_text([tmp_path / "bin"], "b", tmp_path / "data", workers=1)
    assert not (tmp_path / "data" / "b").exists()


def test_non_utf8_file_is_skipped_not_fatal(tmp_path):
    write_corpus(tmp_path / "text", n_files=2)
    (tmp_path / "text" / "binary.txt").write_bytes(b"\xff\xfe\x00garbage" * 50)
    r = prepare_text([tmp_path / "text"], "f", tmp_path / "data", workers=1)
    assert r.skipped_files == 1
    assert all("binary" not in s for s in read_manifest(r.root)["sources"])


def test_missing_path_and_bad_name(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        prepare_text([tmp_path / "nowhere"], "g", tmp_path / "data")
    (tmp_path / "x.txt").write_text("text")
    with pytest.raises(UserError, match="--name"):
        prepare_text([tmp_path / "x.txt"], "../evil", tmp_path / "data")
