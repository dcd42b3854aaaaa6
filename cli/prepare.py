"""`gptablate prepare text|tokenizer`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from gptablate.console import info
from gptablate.errors import UserError
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
    workers: Optional[int] = typer.Option(None, "--workers", help="Tokenizer threads [default: every core]."),
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


def _fineweb(source: str, shards, tokens, from_raw: bool, workers, name, shard_tokens) -> None:
    from gptablate.data.fineweb import parse_tokens, prepare_pretokenized, prepare_raw

    n_tokens = parse_tokens(tokens) if tokens else None
    if from_raw:
        r = prepare_raw(source, data_root(), shards=shards, tokens=n_tokens, workers=workers, name=name,
                        shard_tokens=shard_tokens)
        info(f"{r.root}: {r.train_shards} training shard(s) and a validation shard, {r.tokens:,} tokens in all")
        return
    if name or shard_tokens is not None:
        raise UserError("--name and --shard-tokens apply to --from-raw only (pre-tokenized shards come as they are)")
    r = prepare_pretokenized(source, data_root(), shards=shards, tokens=n_tokens, workers=workers)
    verb = "up to date" if not r.fetched else f"fetched {len(r.fetched)} shard(s), {len(r.present)} already present"
    info(f"{r.root}: {verb}; validation + {r.train_shards} training shard(s), {r.tokens:,} tokens")


def _fineweb_command(source: str, help_text: str):
    def command(
        shards: Optional[int] = typer.Option(None, "--shards", help="Training shards to take (100M tokens each) [default: all]."),
        tokens: Optional[str] = typer.Option(None, "--tokens", help="Or as many shards as this many tokens need: 500M, 2B."),
        from_raw: bool = typer.Option(False, "--from-raw", help="Tokenize the raw parquet text here instead of downloading shards."),
        workers: Optional[int] = typer.Option(None, "--workers", help="Parallel downloads (8) or tokenizer threads (every core)."),
        name: Optional[str] = typer.Option(None, "--name", help="--from-raw: the dataset folder [default: the source's]."),
        shard_tokens: Optional[int] = typer.Option(None, "--shard-tokens", help="--from-raw: tokens per shard [default: 100M]."),
    ) -> None:
        _fineweb(source, shards, tokens, from_raw, workers, name, shard_tokens)

    command.__doc__ = help_text
    return command


prepare_app.command("fineweb")(_fineweb_command(
    "fineweb", "FineWeb 10B in GPT-2 BPE shards (kjj0/fineweb10B-gpt2) into $GPTABLATE_DATA/fineweb10B."))
prepare_app.command("fineweb-edu")(_fineweb_command(
    "fineweb-edu", "FineWeb-Edu 10B in GPT-2 BPE shards (kjj0/finewebedu10B-gpt2) into $GPTABLATE_DATA/finewebedu10B."))
prepare_app.command("fineweb100B")(_fineweb_command(
    "fineweb100B", "FineWeb 100B in GPT-2 BPE shards (kjj0/fineweb100B-gpt2) into $GPTABLATE_DATA/fineweb100B."))


@prepare_app.callback(invoke_without_command=True)
def prepare_main(
    ctx: typer.Context,
    list_: bool = typer.Option(False, "--list", help="Show the sources, their sizes on the hub and what is prepared here."),
) -> None:
    """Prepare datasets (text files, FineWeb) and the tokenizer."""
    if not list_:
        if ctx.invoked_subcommand is None:
            print(ctx.get_help())
        return
    from gptablate.data import hub
    from gptablate.data.fineweb import SOURCES, local_status

    local = local_status(data_root())
    try:
        hub.check_reachable()
        online = True
    except UserError:
        online = False
    print(f"{'source':<12} {'dataset folder':<15} {'on the hub':<34} {'here':<40} description")
    for src in SOURCES.values():
        try:
            if not online:
                raise UserError("offline")
            files = hub.list_files(src.repo)
            n = sum(1 for p in files if "_train_" in p)
            size = f"{n} train shards, {sum(f.size for f in files.values()) / 1e9:.1f} GB"
        except UserError:
            size = f"? ({hub.endpoint()} unreachable)"
        print(f"{src.name:<12} {src.dataset:<15} {size:<34} {local[src.name]:<40} {src.description}")
    print(f"\ntext datasets here ({data_root()}):")
    if data_root().is_dir():
        for d in sorted(p for p in data_root().iterdir() if p.is_dir() and not p.name.startswith(".")):
            if d.name not in {s.dataset for s in SOURCES.values()}:
                print(f"  {d.name}")
    print("prepare text PATH --name NAME adds one; recipes name it in data.dataset")
