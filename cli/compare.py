"""`gptablate compare`: render the leaderboard as a table, markdown, csv or json."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from gptablate.errors import UserError

from .app import app

if TYPE_CHECKING:
    import pandas as pd

FORMATS = ("table", "markdown", "csv", "json")
HEADERS = {"rank": "#", "arm": "arm", "n_params": "params", "runs": "runs", "seeds": "seeds",
           "val_loss": "val loss ↓",
           "val_loss_std": "± std", "delta": "Δ vs base", "delta_stderr": "± se", "p_value": "p",
           "p_adjusted": "p (Holm)",
           "verdict": "verdict", "tokens": "tokens", "status": "status", "budget": "budget",
           "run_id": "run", "run_name": "name", "seed": "seed", "world_size": "ranks", "step": "step",
           "tokens_per_s": "tok/s", "mfu": "MFU", "wall_s": "wall",
           "curve": "val loss curve"}
# The studies' headline number per task, shown in the table views (csv and json carry them all).
HEADLINE_METRICS = ["wikitext2_word_perplexity", "lambada_perplexity", "lambada_acc", "hellaswag_acc_norm",
                    "arc_easy_acc", "piqa_acc", "winogrande_acc"]
TABLE_ARM = ["rank", "arm", "n_params", "runs", "seeds", "val_loss", "val_loss_std", "delta", "delta_stderr", "p_value",
             "p_adjusted", "verdict", "tokens", "status"]  # p_adjusted: with --adjust holm only
HOLM_NOTE = ("p (Holm): p adjusted for the number of arms each budget group compares with its baseline, "
             "the verdict's basis")
# A terminal table's labels fold onto more lines, keeping LABEL_MIN characters a line (or their longest entry); where
# the terminal is too narrow for the rest at their natural widths, columns are left out in DROP_FIRST's order.
LABELS = ("arm", "run_name")
LABEL_MIN = 36
DROP_FIRST = ["curve", *reversed(HEADLINE_METRICS), "tokens_per_s", "mfu", "step", "tokens", "n_params", "val_loss_std",
              "delta_stderr", "world_size", "seeds", "runs", "status", "run_name"]
TEXT = ("arm", "run_id", "run_name", "status", "seeds", "verdict", "curve")  # left-aligned; the rest are numbers
TABLE_RUN = ["run_id", "run_name", "arm", "seed", "world_size", "val_loss", "status", "step", "tokens_per_s", "mfu"]


@app.command()
def compare(
    fmt: str = typer.Option("table", "--format", "-f", help="table, markdown, csv or json."),
    by: str = typer.Option("arm", "--by", help="arm (the leaderboard) or run (every run, nothing hidden)."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Arm that Δ is measured against [default: the GPT-2 architecture arm without overrides]."),
    alpha: float = typer.Option(0.05, "--alpha", help="A Δ whose paired t-test p is at least this is 'within noise'."),
    adjust: str = typer.Option("none", "--adjust", help="none, or holm: p adjusted for the number of arms compared "
                               "with the baseline (Holm), and the verdict taken from it."),
    metric: Optional[str] = typer.Option(None, "--metric", help="Rank by this and take Δ in it: val_loss, or an "
                                         "evaluation metric as task_metric, e.g. hellaswag_acc_norm [default: "
                                         "val_loss]; with --by run, sort the runs by it."),
    deltas: bool = typer.Option(False, "--deltas", help="Every metric at once: a column per metric with each arm's "
                                "paired Δ against the baseline, marked by its verdict (the baseline's row: its own "
                                "figures); csv and json carry every metric's mean, Δ, se, p and verdict."),
    tag: Optional[str] = typer.Option(None, "--tag", help="Only runs carrying this tag (run.tags)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Also draw the loss curves of the compared arms to this image (.png, .pdf, .svg...)."),
) -> None:
    """The leaderboard: arms sorted by validation loss with Δ against the baseline."""
    if fmt not in FORMATS:
        raise UserError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    if by not in ("arm", "run"):
        raise UserError(f"--by {by!r}: use arm or run")
    if not 0 < alpha < 1:
        raise UserError(f"--alpha {alpha:g}: a significance level between 0 and 1, e.g. 0.05")
    # pandas: loaded by this command only
    from gptablate.results.leaderboard import (ADJUSTMENTS, by_arm, by_run, check_rankable, every_metric,
                                               lower_is_better, metric_columns, runs_frame)
    from gptablate.results.store import ResultStore

    if adjust not in ADJUSTMENTS:
        raise UserError(f"--adjust {adjust!r}: use one of {', '.join(ADJUSTMENTS)}")

    runs = runs_frame(ResultStore(), tag)
    none = f"no runs carry the tag {tag!r}" if tag else "no runs yet: `gptablate train RECIPE` records one"
    if plot is not None and runs.empty:
        raise UserError(f"--plot {plot}: nothing to plot: {none}")
    ranked = metric or "val_loss"
    if not runs.empty:
        check_rankable(runs, ranked)
    if deltas and by != "arm":
        raise UserError("--deltas compares arms with their baseline: give it without --by run")
    deltas = deltas and not runs.empty  # with no runs, the leaderboard's own "no runs" answer
    if by == "run":
        frame, base_label, view = by_run(runs), None, list(TABLE_RUN)
        if metric:
            frame = frame.sort_values(ranked, ascending=lower_is_better(ranked), na_position="last", kind="stable")
    elif deltas:  # its arms frame also serves --plot
        frame, base_label, metrics = every_metric(runs, baseline, alpha, adjust, ranked)
    else:
        frame, base_label = by_arm(runs, baseline, alpha, adjust, ranked)
        view = [c for c in TABLE_ARM if c != "p_adjusted" or c in frame.columns]
    if plot is not None:
        from gptablate.results.curves import plot as draw

        arms_frame = frame if by == "arm" else by_arm(runs, baseline, alpha, adjust, ranked)[0]
        print(f"plot: {draw(runs, arms_frame, plot)}", file=sys.stderr)
    if deltas:
        if fmt in ("csv", "json"):
            _machine(frame, fmt)
        else:
            _deltas(frame, base_label, metrics, runs, alpha, adjust, ranked, fmt, none)
        return
    if ranked != "val_loss":  # the ranked metric beside the runs it is over, the val loss after it
        at = view.index("val_loss")
        view[at:at] = [ranked, ranked + "_std"] if by == "arm" else [ranked]
    view = view + [c for c in HEADLINE_METRICS if c in frame.columns and c not in view]
    notes = _sample_notes(runs, [c for c in view if c in metric_columns(runs)])
    if by == "arm" and any(_over_some_runs(c, row) for c in view for _, row in frame.iterrows()):
        notes.append("*: a mean over only those of the arm's finished runs that were evaluated on the task "
                     "(`gptablate eval --missing` scores the others; csv and json give each count as {metric}_runs)")
    if fmt in ("table", "markdown") and not runs.empty:
        from gptablate.results.curves import run_sparklines

        lines = run_sparklines(runs)
        if by == "run":
            frame = frame.assign(curve=frame.run_id.map(lines))
        else:  # an arm's curve: its first finished run's
            first = runs[runs.status == "finished"].groupby("arm_hash").run_id.first()
            frame = frame.assign(curve=frame.arm_hash.map(first).map(lines))
        view = view + ["curve"]
    if fmt in ("csv", "json"):
        _machine(frame, fmt)
        return
    if "n_params" in frame:
        frame = frame.assign(n_params=_param_counts(frame.n_params))
    if fmt == "markdown" and frame.empty:  # as the table says it: a header with no rows says nothing
        print(none)
    elif fmt == "markdown":
        if by == "arm" and "group" in frame and frame["group"].nunique() > 1:
            for _, part in frame.groupby("group", sort=False):
                print(f"**{part['budget'].iloc[0]}**\n\n{_markdown(part, view, ranked)}\n")
        else:
            print(_markdown(frame, view, ranked))
        if base_label:
            print(f"\nΔ{_in(ranked)} is against {_baseline(frame, base_label, '`')}.")
        if "p_adjusted" in view:
            print(f"{HOLM_NOTE}.")
        for note in notes:
            print(f"\n{note}.")
    else:
        _rich_table(frame, view, base_label, by, none, notes, ranked)


def _baseline(frame: pd.DataFrame, base_label: str, quote: str = "") -> str:
    """What Δ is against: the baseline arm by name, or, where the arms fall into several budget groups (each with its
    own baseline), each group's."""
    if "group" in frame and frame["group"].nunique() > 1:
        mark = "its verdict reads baseline" if "verdict" in frame else "its row gives its own figures"
        return f"each budget group's baseline arm ({mark})"
    return f"the baseline arm {quote}{base_label}{quote}"


def _machine(frame: pd.DataFrame, fmt: str) -> None:
    """csv or json: every column but the table's own bookkeeping (which arm is the baseline, its budget group)."""
    out = frame.drop(columns=["baseline", "group"], errors="ignore")
    print(out.to_csv(index=False) if fmt == "csv" else out.to_json(orient="records", indent=2),
          end="" if fmt == "csv" else "\n")


def _sample_notes(runs: pd.DataFrame, columns: list[str]) -> list[str]:
    """A note for each metric among columns with figures over part of the task (`eval --limit`), or else whose runs
    were scored over different numbers of examples."""
    from gptablate.results.leaderboard import mixed_samples, partial_figures

    partial = partial_figures(runs, columns)
    notes = [f"{_name(c)}: {k} of the {n} runs' figures {'is' if k == 1 else 'are'} over part of the task "
             "(`eval --limit`): `gptablate eval --missing` scores them in full" for c, (k, n) in partial.items()]
    return notes + [f"{_name(c)}: runs scored over different numbers of examples ({lo:,} to {hi:,}; `eval --limit`), "
                    "so their figures differ by more than the model"
                    for c, (lo, hi) in mixed_samples(runs, columns).items() if c not in partial]


def _deltas(frame: pd.DataFrame, base_label: str | None, metrics: list[str], runs: pd.DataFrame, alpha: float,
            adjust: str, ranked: str, fmt: str, none: str) -> None:
    """compare --deltas as a table or markdown: every arm against its baseline in every metric, a column each."""
    shown = [m for m in ["val_loss", *HEADLINE_METRICS] if m in metrics]
    if ranked not in shown:
        shown.insert(1, ranked)
    display = frame[["rank", "arm", "runs", "budget", "baseline", "group"]].copy()
    for m in shown:
        display[m] = [_delta_cell(m, row) for _, row in frame.iterrows()]
    holm = ", p adjusted for the arms compared, metric by metric (Holm)" if adjust == "holm" else ""
    notes = _sample_notes(runs, shown)
    notes.append(f"Δ against the baseline, whose own row gives its figures: ✓ better, ✗ worse at p < {alpha:g} "
                 f"(paired t-test over the seeds both share{holm}); unmarked: within noise; ?: no noise estimate "
                 "(one shared seed, or none)")
    cols = ["rank", "arm", "runs", *shown]
    if fmt == "markdown":
        for _, part in display.groupby("group", sort=False):
            head = f"**{part['budget'].iloc[0]}**\n\n" if display["group"].nunique() > 1 else ""
            print(f"{head}{_markdown(part, cols, ranked)}\n")
        print(f"Δ is against {_baseline(display, base_label, '`')}.")
        for note in notes:
            print(f"\n{note}.")
    else:
        _rich_table(display, cols, base_label, "arm", none, notes, ranked)


VERDICT_MARKS = {"better": " ✓", "worse": " ✗", "within noise": ""}


def _delta_cell(metric: str, row) -> str:
    """The baseline's figure on its own row; elsewhere Δ with its verdict's mark (? where there is no test)."""
    if row["baseline"]:
        return _cell(metric, row[metric])
    delta = row[f"{metric}_delta"]
    if delta != delta:
        return ""
    return f"{delta:+.{4 if metric == 'val_loss' else 2}f}" + VERDICT_MARKS.get(row[f"{metric}_verdict"], " ?")


def _header(col: str, lines: int = 1) -> str:
    """A column's header; an evaluation metric's on two lines when lines=2 (the task above its metric), which keeps a
    terminal table's columns as narrow as their numbers."""
    from gptablate.results.leaderboard import lower_is_better, split_metric

    if col in HEADERS:
        return HEADERS[col] if lines == 1 or col != "curve" else "val loss\ncurve"
    if col.endswith("_std"):  # the ranked metric's spread over the arm's runs
        return "± std"
    task, metric = split_metric(col)
    if not task:
        return col
    arrow = "↓" if lower_is_better(col) else "↑"
    if lines == 1:
        return f"{task} {metric.replace('_', ' ')} {arrow}"
    return f"{task}\n{metric.replace('perplexity', 'ppl').replace('_', ' ')} {arrow}"


def _in(ranked: str) -> str:
    """' in <metric>' after Δ where the arms are ranked by an evaluation metric; nothing for the val loss."""
    return "" if ranked == "val_loss" else f" in {_name(ranked)}"


def _over_some_runs(col: str, row) -> bool:
    """Whether an arm's figure in col is a mean over fewer of its finished runs than it has."""
    counted = row.get(col + "_runs")
    return counted is not None and counted == counted and 0 < counted < row["finished"]


def _name(col: str) -> str:
    """A column's header in a sentence: one line, no arrow."""
    return _header(col).removesuffix(" ↓").removesuffix(" ↑")


def _cell(col: str, v, ranked: str = "val_loss") -> str:
    """A cell's text; Δ and its se take the ranked metric's digits (4 for a loss, 2 for an evaluation metric)."""
    import pandas as pd

    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
        return ""
    if isinstance(v, str):  # text already: a label, a status, a marked Δ
        return v
    from gptablate.results.leaderboard import split_metric

    digits = 4 if ranked == "val_loss" else 2
    if col in ("val_loss", "val_loss_std"):
        return f"{v:.4f}"
    if col == "delta_stderr":
        return f"{v:.{digits}f}"
    if col == "delta":
        return f"{v:+.{digits}f}"
    if col.endswith("_std") or split_metric(col)[0]:  # an evaluation metric
        return f"{v:.2f}"
    if col in ("p_value", "p_adjusted"):
        return f"{v:.3f}"
    if col == "mfu":
        return f"{100 * v:.1f}%"
    if col == "tokens_per_s":
        return f"{v / 1e3:.1f}K"
    if col == "tokens":
        return f"{v / 1e6:.1f}M" if v >= 1e6 else f"{int(v):,}"
    if col in ("seed", "world_size", "step", "rank", "runs"):
        return str(int(v))
    return str(v)


def _param_counts(counts: pd.Series) -> pd.Series:
    """Parameter counts as text, in millions (billions from 1e9) to as many decimals as it takes for different counts
    to read differently: a variant's own parameters are few (hyper's at 124M: 0.15M; at the tiny recipe's width, 2K)."""
    known = counts.dropna().astype(int)
    for digits in range(2, 7):
        text = known.map(lambda v: f"{v / 1e9:.{digits + 1}f}B" if v >= 1e9 else f"{v / 1e6:.{digits}f}M")
        if text.nunique() == known.nunique():
            break
    else:
        text = known.map(lambda v: f"{v:,}")
    return text.reindex(counts.index)


def _shown(col: str, row, ranked: str) -> str:
    """A cell as the table and markdown show it: marked * where it is a mean over some of the arm's runs."""
    return _cell(col, row[col], ranked) + ("*" if _over_some_runs(col, row) else "")


def _markdown(frame: pd.DataFrame, cols: list[str], ranked: str) -> str:
    head = "| " + " | ".join(_header(c) for c in cols) + " |"
    sep = "|" + "|".join("---" if c in TEXT else "---:" for c in cols) + "|"
    body = ["| " + " | ".join(_shown(c, row, ranked) for c in cols) + " |" for _, row in frame.iterrows()]
    return "\n".join([head, sep, *body])


def _rich_table(frame: pd.DataFrame, cols: list[str], base_label: str | None, by: str, none: str,
                notes: list[str] = (), ranked: str = "val_loss") -> None:
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    title = "gptablate leaderboard" if by == "arm" else "gptablate runs"
    caption = f"Δ{_in(ranked)} against {_baseline(frame, base_label)}" if base_label else None
    if by == "arm" and "verdict" in frame:
        holm = f"; {HOLM_NOTE}" if "p_adjusted" in cols else ""
        caption = (caption or "") + f" (paired over shared seeds; p: paired t-test{holm})"
    if frame.empty:
        Console().print(none)
        return
    budgets = [f"budget: {b}" for b in frame["budget"]] if by == "arm" and "budget" in frame else []
    natural = {}  # a column's width on one line: its header's longest line or its longest cell
    for c in cols:
        cells = ([cell_len(_shown(c, row, ranked)) for _, row in frame.iterrows()]
                 + ([cell_len(b) for b in budgets] if c == "arm" else []))
        natural[c] = max([*map(cell_len, _header(c, lines=2).splitlines()), *cells])
    # Off a terminal (a pipe, a log) rich would squeeze the table into 80 columns: there every column is shown whole.
    console = (Console() if sys.stdout.isatty()
               else Console(width=max(80, sum(natural.values()) + 3 * len(cols) + 1)))
    cols, left_out = _fit(cols, natural, console.width, keep=(ranked, ranked + "_std"))
    table = Table(title=title, caption=Text(caption) if caption else None)
    for c in cols:
        text = c in TEXT
        label = c in LABELS
        # Only the labels wrap (fold, never cut short); numbers, verdicts and curves keep one line.
        table.add_column(_header(c, lines=2), justify="left" if text else "right",
                         overflow="fold" if label else "ellipsis", no_wrap=not label)
    group = None
    for _, row in frame.iterrows():
        if by == "arm" and frame["group"].nunique() > 1 and row["group"] != group:
            if group is not None:
                table.add_section()
            group = row["group"]
            table.add_row(*(Text(f"budget: {row['budget']}", style="italic") if c == "arm" else Text("") for c in cols))
        style = "bold" if by == "arm" and row.get("baseline") else None
        # Text, not str: arm labels hold brackets (tiny[train.lr=0.001]) that rich would read as markup.
        table.add_row(*(Text(_shown(c, row, ranked)) for c in cols), style=style)
    console.print(table)
    for note in notes:
        console.print(Text(note, style="yellow"))
    if left_out:
        names = ", ".join(_name(c) for c in left_out)
        console.print(Text(f"left out for the terminal's width: {names} (--format markdown or csv has every column)",
                           style="dim"))


def _fit(cols: list[str], natural: dict[str, int], width: int, keep=()) -> tuple[list[str], list[str]]:
    """The columns a terminal of this width shows, and those left out (DROP_FIRST's order, never those in keep), such
    that every column keeps its natural width but the labels, which keep LABEL_MIN characters (or their longest entry)
    and fold."""
    kept, left_out = list(cols), []
    need = lambda: sum(min(natural[c], LABEL_MIN) if c in LABELS else natural[c] for c in kept) + 3 * len(kept) + 1
    for c in [c for c in DROP_FIRST if c in cols and c not in keep]:
        if need() <= width:
            break
        kept.remove(c)
        left_out.append(c)
    return kept, left_out
