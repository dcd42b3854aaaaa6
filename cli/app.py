"""The Typer application object the subcommand modules attach to."""

import typer

from gptablate.errors import UserError

app = typer.Typer(
    name="gptablate",
    help="Train GPT-2 variants under one budget and rank them: prepare, train, eval, compare.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
prepare_app = typer.Typer(help="Prepare datasets (text files, FineWeb) and the tokenizer.")
app.add_typer(prepare_app, name="prepare")


def at_least_one(**options) -> None:
    """Refuse, in one line, the first given count below 1: `at_least_one(batch_size=0)` says '--batch-size must be at
    least 1'. None (the option left out) passes."""
    for name, value in options.items():
        if value is not None and value < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1")
