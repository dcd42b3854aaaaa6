"""`gptablate bench [RECIPE...] [--steps N] [--device] [--gpus N | --scaling 1,2,4] [--reference] [--all-variants]
[--data] [--json FILE]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from gptablate.console import info
from gptablate.errors import UserError
from gptablate.paths import atomic_write_text

from .app import app, at_least_one


@app.command()
def bench(
    recipes: List[str] = typer.Argument(None, help="Recipes to time [default: gpt2_124m]."),
    steps: int = typer.Option(10, "--steps", help="Timed steps after 3 warm-up steps (compilation)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda [default: cuda when available]."),
    gpus: int = typer.Option(1, "--gpus", help="Ranks (torchrun, DDP). For scaling, keep the per-GPU batch fixed: "
                             "--set train.batch_size=<N × per-GPU batch>, or use --scaling."),
    scaling: Optional[str] = typer.Option(None, "--scaling", help="GPU counts, e.g. 1,2,4: each recipe on each count "
                                          "with its batch (after --set) as the per-GPU batch, and the efficiency "
                                          "against the smallest count."),
    reference: bool = typer.Option(False, "--reference", help="Also time a plain nanoGPT-style step of the first recipe's model."),
    all_variants: bool = typer.Option(False, "--all-variants", help="Time every architecture variant of the first recipe, as ratios to its baseline."),
    variant: List[str] = typer.Option([], "--variant", help="With --all-variants: only these rows of its table "
                                      "(repeatable; the baseline row is always timed)."),
    data: bool = typer.Option(False, "--data", help="Read the recipe's dataset instead of synthetic tokens."),
    set_: List[str] = typer.Option([], "--set", "-s", help="An override for every benchmarked recipe (repeatable)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the rows as a JSON list to this file."),
    tokenize: List[Path] = typer.Option([], "--tokenize", help="Instead: time `prepare text` on these files or folders "
                                        "against tiktoken's own batch encoder."),
    glob: Optional[str] = typer.Option(None, "--glob", help="With --tokenize: only files matching this pattern."),
) -> None:
    """Tokens/s, step time, MFU and peak memory of the engine's real training step."""
    from gptablate.train.bench import VARIANTS, bench_recipe, bench_reference, bench_tokenizer

    if tokenize:
        rows = bench_tokenizer([str(p) for p in tokenize], glob)
        _print(rows)
        if json_out:
            atomic_write_text(json_out, json.dumps(rows, indent=2) + "\n")
        return

    at_least_one(steps=steps, gpus=gpus)
    recipes = recipes or ["gpt2_124m"]
    if scaling is not None:
        counts = _gpu_counts(scaling)
        if gpus != 1:
            raise UserError("--scaling sets the GPU counts: leave out --gpus")
        if all_variants:
            raise UserError("--scaling and --all-variants do not combine: time the variants on one GPU count")
    rows = []
    unknown = [v for v in variant if v not in VARIANTS]
    if unknown:
        raise UserError(f"--variant {unknown[0]!r}: not a row of --all-variants; choose from {', '.join(VARIANTS)}")
    if variant and not all_variants:
        raise UserError("--variant picks rows of --all-variants: add --all-variants")
    if all_variants:
        chosen = [n for n in VARIANTS if n == "baseline" or not variant or n in variant]
        for k, name in enumerate(chosen):
            overrides = VARIANTS[name]
            row = {**bench_recipe(recipes[0], list(set_) + overrides, steps, device, data, gpus=gpus), "variant": name}
            base = rows[0] if rows else row
            row["step_ratio"] = row["step_ms"] / base["step_ms"]
            row["mem_ratio"] = (row["peak_mem_gib"] / base["peak_mem_gib"]) if base["peak_mem_gib"] else None
            rows.append(row)
            # Each row as it is timed, and the JSON so far: a long table stopped part way keeps the rows it has.
            mem = f", peak memory {row['mem_ratio']:.3f}x" if row["mem_ratio"] is not None else ""
            info(f"bench row {k + 1} of {len(chosen)}: {name}: {row['step_ms']:.2f} ms a step, "
                 f"{row['step_ratio']:.3f}x the baseline's{mem}")
            if json_out and k + 1 < len(chosen):
                atomic_write_text(json_out, json.dumps(rows, indent=2) + "\n")
    elif scaling is not None:
        from gptablate.recipe import load_recipe

        for r in recipes:
            per_gpu = load_recipe(r, list(set_)).train.batch_size
            first = None
            for n in counts:  # the last --set of a key wins, in the recipe and in its label
                row = bench_recipe(r, list(set_) + [f"train.batch_size={per_gpu * n}"], steps, device, data, gpus=n)
                first = first or row
                row["per_gpu_batch"] = per_gpu
                # tokens/s a GPU against the smallest count's (1 GPU: the classic N x one GPU)
                row["efficiency"] = (row["tokens_per_s"] / n) / (first["tokens_per_s"] / counts[0])
                rows.append(row)
    else:
        rows = [bench_recipe(r, list(set_), steps, device, data, gpus=gpus) for r in recipes]
    if reference:
        ref = bench_reference(recipes[0], steps, device)
        rows.append(ref)
        for r in rows[:-1]:
            r["vs_reference"] = r["tokens_per_s"] / ref["tokens_per_s"]
    _print(rows)
    if json_out:
        atomic_write_text(json_out, json.dumps(rows, indent=2) + "\n")


def _gpu_counts(text: str) -> list[int]:
    """'1,2,4' -> [1, 2, 4] (sorted, each once); a clear error for anything else."""
    try:
        counts = sorted({int(part) for part in text.split(",")})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        raise UserError(f"--scaling {text!r}: give GPU counts separated by commas, e.g. 1,2,4")
    return counts


def _print(rows: list[dict]) -> None:
    cols = [("variant", "variant", "{}"), ("recipe", "recipe", "{}"), ("gpus", "GPUs", "{}"),
            ("per_gpu_batch", "per-GPU batch", "{}"),
            ("tokens_per_s", "tokens/s", "{:,.0f}"), ("efficiency", "efficiency", "{:.1%}"),
            ("slowest_window_tokens_per_s", "slowest window", "{:,.0f}"),
            ("gc_ms", "gc ms", "{:.0f}"), ("first_window_s", "first window s", "{:.1f}"),
            ("mb_per_s", "MB/s", "{:.2f}"), ("seconds", "s", "{:.2f}"),
            ("vs_tiktoken", "x tiktoken", "{:.2f}"),
            ("step_ms", "step ms", "{:.2f}"), ("mfu", "MFU", "{:.1%}"), ("mfu_peak", "MFU datasheet", "{:.1%}"),
            ("peak_mem_gib", "peak GiB", "{:.2f}"), ("step_ratio", "step x base", "{:.3f}"),
            ("mem_ratio", "mem x base", "{:.3f}"), ("vs_reference", "x reference", "{:.3f}")]
    cols = [c for c in cols if any(r.get(c[0]) is not None for r in rows)]
    table = [[(fmt.format(r[k]) if r.get(k) is not None else "") for k, _, fmt in cols] for r in rows]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, (_, h, _) in enumerate(cols)]
    print("  ".join(h.ljust(w) for (_, h, _), w in zip(cols, widths)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))
