"""`gptablate ls` and `gptablate cp`: what recipes and architecture names exist; copy one to edit."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import re
import shlex
import shutil
import textwrap
import typing
from pathlib import Path
from typing import List, Optional

import typer
import yaml

from gptablate.errors import UserError
from gptablate.model.registry import BLOCKS, NORMS, REGISTRIES, RESIDUALS, all_settings
from gptablate.plugins import load_plugin
from gptablate.recipe import (ArchConfig, builtin_recipe_dir, builtin_recipes, find_recipe, load_recipe, split_arm,
                              type_name)

from .app import app


def _first_comment(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


@app.command("ls")
def ls(
    name: Optional[str] = typer.Argument(None, help="Show this one whole: a recipe (resolved, as train would run it) "
                                         "or an arch name (its rule and settings)."),
    plugin: List[Path] = typer.Option([], "--plugin", help="Also load this plug-in file and list its names."),
) -> None:
    """List the built-in recipes and every registered norm, block and residual strategy; or show one whole."""
    for p in plugin:
        load_plugin(p.resolve())
    if name is not None:
        _show(name)
        return
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
    print("\nflags (true or false):")
    flags = _flags()
    width = max(map(len, flags))
    for flag, doc in flags.items():
        print(f"  arch.{flag:<{width}}  {doc}")


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


def _show(name: str) -> None:
    """A recipe resolved, and an arch name's rule and settings; a name can be both (hyper: a recipe and a residual)."""
    shown, flags = False, _flags()  # the flags' comments are read from ArchConfig's source: once
    for reg in REGISTRIES:
        if name in reg.names():
            print(_variant(reg.kind, name, reg.get(name)))
            shown = True
    if name in flags:
        default = getattr(ArchConfig(), name)
        print(f"arch.{name}: true or false, default {str(default).lower()}  "
              f"(--set arch.{name}={str(not default).lower()})\n\n  {flags[name]}")
        shown = True
    recipe = split_arm(name)[0]  # an arm's label shows the recipe it trains: tiny[train.lr=0.001]
    if recipe in builtin_recipes() or recipe.endswith((".yaml", ".yml")):
        path = find_recipe(recipe)
        where = f" ({path})" if str(path) != recipe else ""
        resolved = load_recipe(name)
        print(("\n" if shown else "") + f"# recipe {name}{where}, resolved: what "
              f"`gptablate train {shlex.quote(name)}` runs\n"
              + resolved.to_yaml() + _size(resolved))
        shown = True
    if not shown:
        known = builtin_recipes() + [n for reg in REGISTRIES for n in reg.names()] + list(flags)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise UserError(f"ls {name!r}: no recipe, arch name or flag of that name; {hint}`gptablate ls` lists them")


def _size(recipe) -> str:
    """The model's parameter count and the run's compute, as train counts them (the model built without memory)."""
    import torch

    from gptablate.model.gpt import GPT, GPTConfig, check_arch

    check_arch(recipe)  # a combination train refuses is refused here too, with its reason
    try:
        with torch.device("meta"):
            model = GPT(GPTConfig.from_recipe(recipe))
    except Exception as e:  # a plug-in's module that reads a tensor's values as it is built
        return f"# parameters not counted: the model does not build without memory ({type(e).__name__}: {e})"
    n, per_token = model.num_params(), model.flops_per_token()
    t = recipe.train
    tokens = t.max_iters * t.batch_size * recipe.model.block_size
    amount = f"{tokens / 1e9:.2f}B" if tokens >= 1e9 else f"{tokens / 1e6:.1f}M" if tokens >= 1e6 else f"{tokens:,}"
    return (f"# {n:,} parameters ({n / 1e6:.2f}M, nanoGPT's count), {per_token / 1e9:.3f} GFLOP a token (6N + 12LHQT); "
            f"{t.max_iters:,} steps x {t.batch_size * recipe.model.block_size:,} tokens = {amount} tokens, "
            f"{per_token * tokens:.3g} FLOP")


# Where a setting's own comment says nothing: the meaning that every variant having it shares.
SHARED_DOCS = {"lr_mult": "the variant's own scalars and connection weights train at lr × lr_mult, never decayed; "
                          "0 holds them at their initial values"}


def _variant(kind: str, name: str, cls: type) -> str:
    """arch.<kind> NAME: the class's docstring and a line per setting (what it takes, its default, its range)."""
    lines = [f"arch.{kind}: {name}  (--set arch.{kind}={name})", ""]
    lines += ["  " + line if line else "" for line in inspect.cleandoc(cls.__doc__ or "").splitlines()]
    settings = getattr(cls, "Settings", None)
    if settings is None:
        lines += ["", "no settings"]
        return "\n".join(lines)
    hints, bounds, docs = typing.get_type_hints(settings), getattr(settings, "BOUNDS", {}), _comments(settings)
    lines += ["", f"settings (--set arch.{name}.KEY=VALUE, or an arch.{name} section in a recipe):"]
    for field in dataclasses.fields(settings):
        default = getattr(settings(), field.name)
        takes = type_name(hints[field.name]) + (f", {bounds[field.name].describe()}" if field.name in bounds else "")
        lines.append(f"  {field.name}: {yaml.safe_dump(default, default_flow_style=True).strip().removesuffix('...')}"
                     .rstrip() + f"  ({takes})")
        for doc in textwrap.wrap(docs.get(field.name) or SHARED_DOCS.get(field.name, ""), 100):
            lines.append("      " + doc)
    return "\n".join(lines)


def _comments(settings: type) -> dict[str, str]:
    """Each setting's comment in its dataclass's source: the lines of # just above the field, and the one beside it."""
    try:
        source = inspect.getsource(settings)
    except (OSError, TypeError):  # a class without source (made at run time): its settings go undocumented
        return {}
    fields = {f.name for f in dataclasses.fields(settings)}
    docs, above = {}, []
    for line in source.splitlines()[1:]:
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = re.match(r"(\w+)\s*:[^#]*(?:#\s*(.*))?$", stripped)
        if m and m.group(1) in fields:
            docs[m.group(1)] = " ".join(above + ([m.group(2)] if m.group(2) else []))
        above = []
    return docs


def _flags() -> dict[str, str]:
    """The arch flags (booleans beside the three axes) and their comments in ArchConfig."""
    hints = typing.get_type_hints(ArchConfig)
    return {f: doc for f, doc in _comments(ArchConfig).items() if hints.get(f) is bool}
