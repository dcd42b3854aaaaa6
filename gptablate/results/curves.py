"""Loss curves from runs' metrics.jsonl: terminal sparklines and a matplotlib plot."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pandas as pd

from ..errors import UserError

BARS = "▁▂▃▄▅▆▇█"


def load_curve(run_dir) -> pd.DataFrame:
    """Columns tokens, train_loss, val_loss (NaN off evaluation steps); empty if the file is missing."""
    path = Path(str(run_dir)) / "metrics.jsonl"
    if not path.is_file():
        return pd.DataFrame(columns=["tokens", "train_loss", "val_loss"])
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows).reindex(columns=["tokens", "train_loss", "val_loss"])


def sparkline(values, width: int = 12) -> str:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if len(vals) < 2:
        return ""
    if len(vals) > width:  # keep the shape: sample evenly, always including the last point
        vals = [vals[round(i * (len(vals) - 1) / (width - 1))] for i in range(width)]
    lo, hi = min(vals), max(vals)
    span = hi - lo or 1.0
    return "".join(BARS[min(int((v - lo) / span * (len(BARS) - 1) + 0.5), len(BARS) - 1)] for v in vals)


def run_sparklines(runs: pd.DataFrame) -> dict[str, str]:
    """run_id -> sparkline of its validation loss (its training loss when it has no evaluations yet)."""
    out = {}
    for _, r in runs.iterrows():
        c = load_curve(r["run_dir"])
        series = c.val_loss.dropna() if c.val_loss.notna().sum() >= 2 else c.train_loss.dropna()
        out[r["run_id"]] = sparkline(series.tolist())
    return out


def plot(runs: pd.DataFrame, arms: pd.DataFrame, path: Path, smooth: float = 0.9) -> Path:
    """Validation loss (markers) and smoothed training loss (thin) against tokens, per arm;
    the baseline arm as a band over its seeds. One panel per budget group."""
    try:
        import matplotlib
    except ImportError:
        raise UserError("--plot needs matplotlib: pip install matplotlib") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    path = Path(path)
    fmt = path.suffix[1:].lower()
    formats = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in formats:
        what = f"matplotlib writes no .{fmt} files" if fmt else "no suffix to tell the format by"
        raise UserError(f"--plot {path}: {what}; name a file ending in one of "
                        + ", ".join("." + f for f in sorted(formats)))
    if arms.empty:
        raise UserError("nothing to plot: no runs yet")
    groups = list(dict.fromkeys(arms["group"]))
    fig, axes = plt.subplots(1, len(groups), figsize=(7 * len(groups), 4.5), squeeze=False)
    for ax, gi in zip(axes[0], groups):
        part = arms[arms["group"] == gi]
        for k, (_, arm) in enumerate(part.iterrows()):
            members = runs[(runs.arm_hash == arm.arm_hash) & runs.status.isin(["finished", "running", "interrupted"])]
            curves = [load_curve(d) for d in members.run_dir]
            curves = [c for c in curves if not c.empty]
            if not curves:
                continue
            color = f"C{k % 10}"
            frame = pd.concat([c.assign(seed=i) for i, c in enumerate(curves)])
            val = frame.dropna(subset=["val_loss"]).groupby("tokens").val_loss
            train = frame.groupby("tokens").train_loss.mean().ewm(alpha=1 - smooth).mean()
            label = arm.arm + (" (baseline)" if arm.baseline else "")
            ax.plot(train.index, train.values, color=color, alpha=0.35, linewidth=1)
            if val.ngroups:
                mean = val.mean()
                ax.plot(mean.index, mean.values, "o-", color=color, label=label, markersize=3)
                if arm.baseline and len(curves) > 1:
                    ax.fill_between(mean.index, val.min().values, val.max().values, color=color, alpha=0.2,
                                    label=f"baseline: seed range ({len(curves)} seeds)")
        ax.set_title(part["budget"].iloc[0], fontsize=10)
        ax.set_xlabel("tokens")
        ax.set_ylabel("loss (validation: markers; training: smoothed, faint)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:  # written beside its place, then renamed over it: never a half-written file
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=120, format=fmt)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"--plot {path}: cannot write it ({e.strerror or e})") from None
    finally:
        plt.close(fig)
        tmp.unlink(missing_ok=True)
    return path
