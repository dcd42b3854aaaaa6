"""GPT-2's BPE through tiktoken, with an offline path.

tiktoken downloads its rank files on first use. Machines without that network build the
same `tiktoken.Encoding` from a local `.tiktoken` ranks file, looked up in order:

  1. $GPTABLATE_BPE_FILE;
  2. the cache that `gptablate prepare tokenizer` fills ($GPTABLATE_CACHE, default
     ~/.cache/gptablate/gpt2.tiktoken), taken from the openai-whisper sdist on PyPI;
  3. tiktoken's own `get_encoding("gpt2")` (its cache, or the network).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import UserError
from ..paths import atomic_write_bytes

EOT = 50256  # <|endoftext|>
N_VOCAB = 50257
RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# GPT-2's pre-tokenizer regex (tiktoken's r50k pattern, possessive form).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
WHISPER_SDIST = "openai-whisper==20250625"
WHISPER_MEMBER = "whisper/assets/gpt2.tiktoken"


def cache_dir() -> Path:
    env = os.environ.get("GPTABLATE_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gptablate"


def cached_ranks_path() -> Path:
    return cache_dir() / "gpt2.tiktoken"


def _encoding_from_file(path: Path):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    try:
        ranks = load_tiktoken_bpe(str(path))
    except Exception as e:  # a bad file is the user's to fix; say which
        raise UserError(f"{path}: not a readable .tiktoken ranks file ({e.__class__.__name__}: {e})") from None
    if len(ranks) != EOT:
        raise UserError(f"{path}: expected {EOT} BPE ranks for GPT-2, found {len(ranks)}")
    return tiktoken.Encoding(name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": EOT})


@functools.lru_cache(maxsize=1)
def get_tokenizer():
    """The GPT-2 encoding: 50257 tokens, <|endoftext|> = 50256."""
    env = os.environ.get("GPTABLATE_BPE_FILE")
    if env:
        if not Path(env).is_file():
            raise UserError(f"GPTABLATE_BPE_FILE={env}: no such file (it should be a GPT-2 .tiktoken ranks file)")
        return _encoding_from_file(Path(env))
    cached = cached_ranks_path()
    if cached.is_file():
        return _encoding_from_file(cached)
    try:
        import tiktoken

        return tiktoken.get_encoding("gpt2")
    except Exception:
        raise UserError("the GPT-2 tokenizer is not available offline: run `gptablate prepare tokenizer` "
                        "(fetches it from PyPI), or set GPTABLATE_BPE_FILE to a gpt2.tiktoken ranks file") from None


def encode_document(text: str) -> list[int]:
    """<|endoftext|> then the document: the llm.c / modded-nanogpt shard convention."""
    return [EOT] + get_tokenizer().encode_ordinary(text)


def install_ranks_file(source: Path | None = None) -> tuple[Path, str]:
    """Fill the cache from a given ranks file or from the openai-whisper sdist on PyPI.

    Returns (path, how). Verifies the sha256 before anything is written.
    """
    dest = cached_ranks_path()
    if source is not None:
        payload = Path(source).read_bytes()
        how = f"copied from {source}"
    else:
        if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == RANKS_SHA256:
            return dest, "already present"
        payload = _ranks_from_whisper_sdist()
        how = f"taken from the {WHISPER_SDIST} sdist"
    digest = hashlib.sha256(payload).hexdigest()
    if digest != RANKS_SHA256:
        raise UserError(f"GPT-2 ranks file has sha256 {digest[:12]}…, expected {RANKS_SHA256[:12]}…: refusing it")
    atomic_write_bytes(dest, payload)
    get_tokenizer.cache_clear()
    return dest, how


def _ranks_from_whisper_sdist() -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
               WHISPER_SDIST, "-d", tmp]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise UserError(f"could not download {WHISPER_SDIST} from the package index ({last}); "
                            "set GPTABLATE_BPE_FILE to a gpt2.tiktoken file instead")
        sdists = list(Path(tmp).glob("*.tar.gz"))
        if not sdists:
            raise UserError(f"pip downloaded no sdist for {WHISPER_SDIST}; set GPTABLATE_BPE_FILE instead")
        with tarfile.open(sdists[0], "r:gz") as tar:
            for member in tar.getmembers():
                if member.name.endswith(WHISPER_MEMBER):
                    f = tar.extractfile(member)
                    if f is not None:
                        return io.BytesIO(f.read()).getvalue()
    raise UserError(f"{WHISPER_SDIST} has no {WHISPER_MEMBER}; set GPTABLATE_BPE_FILE to a gpt2.tiktoken file")
