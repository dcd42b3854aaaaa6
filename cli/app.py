"""The Typer application object the subcommand modules attach to."""

import typer

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
