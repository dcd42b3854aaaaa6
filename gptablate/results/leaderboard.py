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
    return runs.reset_index(drop=True)


def by_run(runs: pd.DataFrame) -> pd.DataFrame:
    return runs.reindex(columns=RUN_COLUMNS)


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
    return arms.reindex(columns=ARM_COLUMNS + ["baseline"]), (arms.loc[arms.arm_hash == base, "arm"].iloc[0] if base else None)
