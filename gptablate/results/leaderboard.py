"""The leaderboard: pandas over the results table, by arm or by run."""

from __future__ import annotations

import json

import pandas as pd

from ..errors import UserError
from .store import ResultStore

RUN_COLUMNS = ["run_id", "run_name", "arm", "seed", "world_size", "val_loss", "status", "step", "tokens",
               "tokens_per_s", "mfu", "wall_s", "dataset", "arm_hash", "git_commit"]
ARM_COLUMNS = ["rank", "arm", "runs", "seeds", "val_loss", "val_loss_std", "delta", "tokens", "status", "arm_hash"]


def runs_frame(store: ResultStore, tag: str | None = None) -> pd.DataFrame:
    runs = pd.DataFrame(store.runs())
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
    if tag:
        runs = runs[runs["tags"].map(lambda s: tag in json.loads(s or "[]"))]
    evals = pd.DataFrame(store.evals())
    if not evals.empty:
        # A recorded `eval` fills in the validation loss of a run that trained without one.
        val = evals[(evals.task == "val") & (evals.metric == "loss")].set_index("run_id")["value"]
        runs["val_loss"] = runs["val_loss"].fillna(runs["run_id"].map(val))
        tasks = evals[evals.task != "val"].assign(column=lambda e: e.task + "_" + e.metric)
        if not tasks.empty:
            values = tasks.pivot_table(index="run_id", columns="column", values="value", aggfunc="last")
            errors = tasks.pivot_table(index="run_id", columns="column", values="stderr", aggfunc="last")
            errors = errors.rename(columns=lambda c: c + "_stderr")
            for col in sorted(values.columns):
                runs[col] = runs["run_id"].map(values[col])
                if col + "_stderr" in errors.columns:
                    runs[col + "_stderr"] = runs["run_id"].map(errors[col + "_stderr"])
    return runs.reset_index(drop=True)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The evaluation columns present ({task}_{metric}, with _stderr beside each)."""
    from ..eval.tasks import TASKS

    prefixes = tuple(f"{t}_" for t in TASKS)
    return [c for c in frame.columns if c.startswith(prefixes)]


def by_run(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.reindex(columns=RUN_COLUMNS + metric_columns(runs))


def _pooled_stderr(done: pd.DataFrame, column: str) -> float:
    """Stderr of the mean over an arm's runs, from each run's own stderr (independent runs)."""
    vals = done[column].dropna()
    if vals.empty:
        return float("nan")
    return float((vals.pow(2).sum() ** 0.5) / len(vals))


def _pick_baseline(arms: pd.DataFrame, baseline: str | None) -> str | None:
    if arms.empty:
        return None
    if baseline:
        hit = arms[(arms.arm == baseline) | arms.arm_hash.str.startswith(baseline)]
        if hit.empty:
            raise UserError(f"--baseline {baseline!r}: no such arm; arms: {', '.join(arms.arm)}")
        return hit.iloc[0].arm_hash
    # Default: the GPT-2 architecture (layernorm, pre, vanilla) trained without overrides;
    # failing that, any arm without overrides; the earliest such arm.
    plain = ~arms.arm.str.contains(r"\[", regex=True)
    gpt2 = (arms.norm == "layernorm") & (arms.block == "pre") & (arms.residual == "vanilla")
    for pool in (arms[plain & gpt2], arms[plain], arms):
        if not pool.empty:
            return pool.sort_values("first_seen").iloc[0].arm_hash


def by_arm(runs: pd.DataFrame, baseline: str | None = None) -> tuple[pd.DataFrame, str | None]:
    """One row per arm: mean/std of val loss over finished runs, Δ vs the baseline arm."""
    if runs.empty:
        return pd.DataFrame(columns=ARM_COLUMNS), None
    rows = []
    for arm_hash, g in runs.groupby("arm_hash", sort=False):
        done = g[(g.status == "finished") & g.val_loss.notna()]
        counts = g.status.value_counts()
        rows.append({
            "arm": g.arm.iloc[0], "arm_hash": arm_hash,
            "runs": len(done), "seeds": ",".join(str(s) for s in sorted(done.seed.dropna().astype(int).unique())),
            "val_loss": done.val_loss.mean() if len(done) else float("nan"),
            "val_loss_std": done.val_loss.std(ddof=1) if len(done) > 1 else float("nan"),
            "tokens": int(g.tokens.max()) if g.tokens.notna().any() else 0,
            "status": ", ".join(f"{n} {s}" for s, n in counts.items()),
            **{c: done[c].mean() for c in metric_columns(g) if not c.endswith("_stderr")},
            **{c: _pooled_stderr(done, c) for c in metric_columns(g) if c.endswith("_stderr")},
            "first_seen": g.created_at.min(),
            "norm": g.norm.iloc[0], "block": g.block.iloc[0], "residual": g.residual.iloc[0],
        })
    arms = pd.DataFrame(rows)
    # Two recipes edited between runs can share a label; the hash tells them apart.
    dup = arms.arm.duplicated(keep=False)
    arms.loc[dup, "arm"] = arms.loc[dup, "arm"] + "@" + arms.loc[dup, "arm_hash"].str[:6]
    base = _pick_baseline(arms, baseline)
    base_loss = arms.loc[arms.arm_hash == base, "val_loss"].iloc[0] if base else float("nan")
    arms["delta"] = arms.val_loss - base_loss
    arms["baseline"] = arms.arm_hash == base
    arms = arms.sort_values(["val_loss", "first_seen"], na_position="last").reset_index(drop=True)
    arms["rank"] = range(1, len(arms) + 1)
    arms.loc[arms.val_loss.isna(), "rank"] = pd.NA
    return arms.reindex(columns=ARM_COLUMNS + metric_columns(arms) + ["baseline"]), (arms.loc[arms.arm_hash == base, "arm"].iloc[0] if base else None)
