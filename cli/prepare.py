"""`gptablate prepare text|tokenizer`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gptablate.console import info
from gptablate.data.prepare_text import DEFAULT_SHARD_TOKENS, prepare_text
from gptablate.data.tokenizer import install_ranks_file
from gptablate.paths import data_root

from .app import prepare_app


@prepare_app.command("text")
def text(
    paths: List[Path] = typer.Argument(..., help="Files and folders (searched recursively) to tokenize."),
    name: str = typer.Option(..., "--name", help="Dataset name: the folder under $GPTABLATE_DATA and data.dataset in recipes."),
    glob: Optional[str] = typer.Option(None, "--glob", help="Only files matching this pattern inside folders, e.g. '*.py'."),
    val_tokens: Optional[int] = typer.Option(None, "--val-tokens", help="Validation shard size [default: min(10,485,760, 10% of the corpus)]."),
    shard_tokens: int = typer.Option(DEFAULT_SHARD_TOKENS, "--shard-tokens", help="Tokens per training shard."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Tokenizer processes [default: every core]."),
) -> None:
    """Tokenize text files with GPT-2's BPE into a validation shard and training shards."""
    r = prepare_text(paths, name, data_root(), glob=glob, val_tokens=val_tokens, shard_tokens=shard_tokens,
                     workers=workers)
    verb = "up to date" if r.up_to_date else f"written in {r.seconds:.1f}s"
    info(f"{r.root}: {verb}: validation {r.val_tokens:,} tokens, training {r.train_tokens:,} tokens "
         f"in {r.n_train_shards} shard(s)")


@prepare_app.command("tokenizer")
def tokenizer(
    from_file: Optional[Path] = typer.Option(None, "--from-file", help="Use this gpt2.tiktoken ranks file instead of fetching it."),
) -> None:
    """Put GPT-2's BPE ranks in the local cache (from the openai-whisper sdist on PyPI), verified by sha256."""
    path, how = install_ranks_file(from_file)
    info(f"GPT-2 tokenizer ranks: {path} ({how})")
