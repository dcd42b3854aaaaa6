import hashlib

import pytest

from conftest import shared
from gptablate.data import tokenizer as tok
from gptablate.errors import UserError


def test_gpt2_ids_are_real():
    enc = tok.get_tokenizer()
    assert enc.encode_ordinary("Hello world") == [15496, 995]
    assert enc.n_vocab == 50257
    assert enc.eot_token == 50256
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]


def test_document_starts_with_eot():
    assert tok.encode_document("Hello world") == [50256, 15496, 995]


def test_tiny_shakespeare_matches_nanogpt_split():
    # nanoGPT's shakespeare/prepare.py: 90/10 character split -> 301,966 / 36,059 GPT-2 tokens.
    text = shared("tinyshakespeare/input.txt").read_text()
    n = len(text)
    enc = tok.get_tokenizer()
    assert len(enc.encode_ordinary(text[: int(n * 0.9)])) == 301_966
    assert len(enc.encode_ordinary(text[int(n * 0.9):])) == 36_059


def test_missing_env_file_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTABLATE_BPE_FILE", str(tmp_path / "nope.tiktoken"))
    tok.get_tokenizer.cache_clear()
    try:
        with pytest.raises(UserError, match="nope.tiktoken"):
            tok.get_tokenizer()
    finally:
        tok.get_tokenizer.cache_clear()


def test_install_refuses_a_wrong_checksum(monkeypatch, tmp_path):
    monkeypatch.setenv("GPTABLATE_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "bad.tiktoken"
    bad.write_bytes(b"SGVsbG8= 0\n")
    with pytest.raises(UserError, match="sha256"):
        tok.install_ranks_file(bad)
    assert not (tmp_path / "cache" / "gpt2.tiktoken").exists()


def test_install_from_file_fills_the_cache(monkeypatch, tmp_path):
    src = shared("tokenizer/gpt2.tiktoken")
    monkeypatch.setenv("GPTABLATE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GPTABLATE_BPE_FILE", raising=False)
    path, _ = tok.install_ranks_file(src)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tok.RANKS_SHA256
    tok.get_tokenizer.cache_clear()
    try:
        assert tok.get_tokenizer().encode_ordinary(" gptablate") == tok._encoding_from_file(src).encode_ordinary(" gptablate")
    finally:
        tok.get_tokenizer.cache_clear()
