"""`gptablate ls` and `gptablate cp`: what recipes and architecture names exist; copy one to edit."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import List

import typer
import yaml

from gptablate.errors import UserError
from gptablate.model.registry import BLOCKS, NORMS, RESIDUALS, all_settings
from gptablate.plugins import load_plugin
from gptablate.recipe import builtin_recipe_dir, builtin_recipes, find_recipe

from .app import app


def _first_comment(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


@app.command("ls")
def ls(
    plugin: List[Path] = typer.Option([], "--plugin", help="Also load this plug-in file and list its names."),
) -> None:
    """List the built-in recipes and every registered norm, block and residual strategy."""
    for p in plugin:
        load_plugin(p.resolve())
    settings = all_settings()
    print("recipes (gptablate train NAME, gptablate cp NAME DEST):")
    for name in builtin_recipes():
        print(f"  {name:<24} {_first_comment(builtin_recipe_dir() / (name + '.yaml'))}")
    for reg in (NORMS, BLOCKS, RESIDUALS):
        print(f"\narch.{reg.kind}:")
        for name in reg.names():
            extra = ""
            if name in settings:
                defaults = {f: getattr(settings[name](), f) for f in settings[name].__dataclass_fields__}
                extra = f"  [arch.{name}: {yaml.safe_dump(defaults, default_flow_style=True).strip()}]"
            print(f"  {name:<16} {reg.describe(name)}{extra}")
    print("\nflags: arch.qk_norm (RMS-normalised q, k per head), arch.value_residual (ResFormer, arXiv 2410.17897)")


@app.command("cp")
def cp(
    name: str = typer.Argument(..., help="A built-in recipe name (see gptablate ls)."),
    dest: Path = typer.Argument(..., help="A file or folder to copy it to."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing file."),
) -> None:
    """Copy a built-in recipe to edit. Its `base:` still resolves among the built-in recipes."""
    src = find_recipe(name)
    target = dest / src.name if dest.is_dir() else dest
    if target.exists() and not force:
        raise UserError(f"{target} exists: choose another name or pass --force")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    print(f"copied {src.name} to {target}")
