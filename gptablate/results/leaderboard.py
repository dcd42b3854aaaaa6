"""The leaderboard: pandas over the results table, by arm or by run."""

from __future__ import annotations

import pandas as pd

from ..errors import UserError
from .store import ResultStore

RUN_COLUMNS = ["run_id", "run_name", "arm", "n_params", "seed", "world_size", "val_loss", "status", "step", "tokens",
               "tokens_per_s", "mfu", "wall_s", "dataset", "arm_hash", "git_commit"]
ARM_COLUMNS = ["rank", "arm", "budget", "n_params", "runs", "seeds", "val_loss", "val_loss_std", "delta",
               "delta_stderr", "p_value", "paired_seeds", "verdict", "tokens", "status", "arm_hash"]


def runs_frame(store: ResultStore, tag: str | None = None) -> pd.DataFrame:
    runs = pd.DataFrame(store.runs(tag))
    if runs.empty:
        return pd.DataFrame(columns=RUN_COLUMNS)
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
            samples = tasks.pivot_table(index="run_id", columns="column", values="samples", aggfunc="last")
            # 1 where the figure is over part of its task, 0 over all of it, NaN not known (recorded before schema 4)
            partial = tasks.assign(partial=tasks.complete.map({0: 1.0, 1: 0.0})).pivot_table(
                index="run_id", columns="column", values="partial", aggfunc="max", dropna=False)
            for col in sorted(values.columns):
                runs[col] = runs["run_id"].map(values[col])
                if col + "_stderr" in errors.columns:
                    runs[col + "_stderr"] = runs["run_id"].map(errors[col + "_stderr"])
                if col in samples.columns:
                    runs[col + "_samples"] = runs["run_id"].map(samples[col]).astype("Int64")
                if col in partial.columns:
                    runs[col + "_partial"] = runs["run_id"].map(partial[col]).astype("boolean")
    return runs.reset_index(drop=True)


def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The evaluation columns present ({task}_{metric}, with _stderr beside each); not their sample counts, nor an
    arm's counts of runs and spread (_samples, _partial, _runs, _std)."""
    from ..eval.tasks import TASKS

    prefixes = tuple(f"{t}_" for t in TASKS)
    return [c for c in frame.columns
            if c.startswith(prefixes) and not c.endswith(("_samples", "_partial", "_runs", "_std"))]


def split_metric(col: str) -> tuple[str, str]:
    """A metric column's task and metric: arc_easy_acc_norm is (arc_easy, acc_norm), val_loss (val, loss)."""
    from ..eval.tasks import ALL_TASKS

    task = max((t for t in ALL_TASKS if col.startswith(t + "_")), key=len, default="")
    return task, col[len(task) + 1:] if task else col


def lower_is_better(col: str) -> bool:
    from ..eval.tasks import LOWER_IS_BETTER

    return split_metric(col)[1] in LOWER_IS_BETTER


def rankable(runs: pd.DataFrame) -> list[str]:
    """The metrics compare can rank arms by: val_loss and the evaluation metrics some run has."""
    return ["val_loss"] + [c for c in metric_columns(runs) if not c.endswith("_stderr") and runs[c].notna().any()]


def check_rankable(runs: pd.DataFrame, metric: str) -> None:
    if metric not in rankable(runs):
        raise UserError(f"--metric {metric!r}: no run has it; use one of {', '.join(rankable(runs))}")


def by_run(runs: pd.DataFrame) -> pd.DataFrame:
    """Every run, with each metric's sample count beside it ({task}_{metric}_samples) and whether it is over part of
    the task ({task}_{metric}_partial: `eval --limit`; empty where not known)."""
    metrics = metric_columns(runs)
    return runs.reindex(columns=RUN_COLUMNS + metrics + [c + suffix for suffix in ("_samples", "_partial")
                                                         for c in metrics if c + suffix in runs])


def partial_figures(runs: pd.DataFrame, columns: list[str]) -> dict[str, tuple[int, int]]:
    """The metrics among columns some finished run has a figure of over part of its task (`eval --limit`): how many
    such runs, of how many with a figure."""
    done = runs[runs.status == "finished"]
    out = {}
    for c in columns:
        if c + "_partial" in done:
            flags = done.loc[done[c].notna(), c + "_partial"]
            if flags.fillna(False).any():
                out[c] = (int(flags.fillna(False).sum()), len(flags))
    return out


def mixed_samples(runs: pd.DataFrame, columns: list[str]) -> dict[str, tuple[int, int]]:
    """The metrics among columns whose finished runs were scored over different numbers of examples (an evaluation
    with --limit beside a full one), with the fewest and the most."""
    done = runs[runs.status == "finished"]
    out = {}
    for c in columns:
        if c + "_samples" in done:
            n = done.loc[done[c].notna(), c + "_samples"].dropna()
            if n.nunique() > 1:
                out[c] = (int(n.min()), int(n.max()))
    return out


def _pooled_stderr(done: pd.DataFrame, column: str) -> float:
    """Stderr of the mean over an arm's runs, from each run's own stderr (independent runs)."""
    vals = done[column].dropna()
    if vals.empty:
        return float("nan")
    return float((vals.pow(2).sum() ** 0.5) / len(vals))


def _named(arms: pd.DataFrame, baseline: str | None) -> pd.Series:
    """Arms that --baseline names: by label, or by a prefix of the arm hash."""
    if not baseline:
        return pd.Series(False, index=arms.index)
    return (arms.arm == baseline) | arms.arm_hash.str.startswith(baseline)


def _pick_baseline(arms: pd.DataFrame, baseline: str | None) -> str | None:
    if arms.empty:
        return None
    named = arms[_named(arms, baseline)]
    if not named.empty:
        return named.iloc[0].arm_hash
    # Default: the GPT-2 architecture (layernorm, pre, vanilla) trained without overrides;
    # failing that, any arm without overrides; the earliest such arm.
    plain = ~arms.arm.str.contains(r"\[", regex=True)
    gpt2 = (arms.norm == "layernorm") & (arms.block == "pre") & (arms.residual == "vanilla")
    for pool in (arms[plain & gpt2], arms[plain], arms):
        if not pool.empty:
            return pool.sort_values("first_seen").iloc[0].arm_hash


BUDGET_KEYS = ["n_layer", "n_head", "n_embd", "block_size", "max_iters", "batch_size", "dataset"]


def budget_label(row) -> str:
    tokens = row["max_iters"] * row["batch_size"] * row["block_size"]
    size = f"{tokens / 1e9:.2f}B" if tokens >= 1e9 else f"{tokens / 1e6:.1f}M" if tokens >= 1e6 else f"{tokens / 1e3:.0f}K"
    return f"{int(row['n_layer'])}L/{int(row['n_head'])}H/{int(row['n_embd'])}D, {size} tokens of {row['dataset']}"


ADJUSTMENTS = ("none", "holm")


def _verdict(p: float, delta: float, alpha: float, lower: bool = True) -> str:
    """A Δ's verdict from its p (raw or adjusted) at level alpha; lower: whether a lower figure is better."""
    return "within noise" if p >= alpha else ("better" if (delta < 0) == lower else "worse")


def _std(values: pd.Series) -> float:
    return values.std(ddof=1) if len(values) > 1 else float("nan")


def _per_seed(runs: pd.DataFrame, column: str) -> pd.Series:
    """The column per seed among the runs that have it: a seed trained more than once counts once, as the mean of its
    runs, so that an arm's mean and spread are over seeds, as its paired Δ is."""
    return runs[runs[column].notna()].groupby("seed", dropna=False)[column].mean()


def by_arm(runs: pd.DataFrame, baseline: str | None = None, alpha: float = 0.05,
           adjust: str = "none", metric: str = "val_loss") -> tuple[pd.DataFrame, str | None]:
    """One row per arm: mean ± std of the metric (val loss unless named) over finished seeds (a seed trained twice
    counts once, as the mean of its runs); Δ vs the baseline arm as a paired difference over the seeds both share,
    with its stderr and paired t-test p-value.

    Arms that differ in budget (model shape, tokens, dataset) form separate groups, each
    ranked and compared within itself, never against each other. adjust="holm" adds p_adjusted,
    Holm's adjustment over the arms a group compares with its baseline, and takes the verdict from it.
    runs and seeds count the finished runs that have the metric; every other metric is a mean over the finished runs
    that have it, their number in {metric}_runs and the arm's finished runs in finished.
    """
    from .stats import holm, paired

    if runs.empty:
        return pd.DataFrame(columns=ARM_COLUMNS), None
    check_rankable(runs, metric)
    lower = lower_is_better(metric)
    runs = runs.copy()
    runs["budget"] = runs.apply(budget_label, axis=1)
    rows = []
    for arm_hash, g in runs.groupby("arm_hash", sort=False):
        finished = g[g.status == "finished"]
        done = finished[finished[metric].notna()]
        has = {c: finished[finished[c].notna()] for c in metric_columns(g) if not c.endswith("_stderr")}
        seeds = {c: _per_seed(finished, c) for c in ["val_loss", *has]}  # each metric per seed, once
        counts = g.status.value_counts()
        rows.append({
            "arm": g.arm.iloc[0], "arm_hash": arm_hash, "budget": g.budget.iloc[0],
            "n_params": g.n_params.max() if "n_params" in g else float("nan"),  # NaN: recorded before it was kept
            "runs": len(done), "seeds": ",".join(str(s) for s in sorted(done.seed.dropna().astype(int).unique())),
            "val_loss": seeds["val_loss"].mean(), "val_loss_std": _std(seeds["val_loss"]),
            "tokens": int(g.tokens.max()) if g.tokens.notna().any() else 0,
            "status": ", ".join(f"{n} {s}" for s, n in counts.items()),
            **{c: seeds[c].mean() for c in has},
            **{c + "_stderr": _pooled_stderr(h, c + "_stderr") for c, h in has.items() if c + "_stderr" in h},
            **{c + "_runs": len(h) for c, h in has.items()},
            **({metric + "_std": _std(seeds[metric])} if metric != "val_loss" else {}),
            "finished": len(finished), "first_seen": g.created_at.min(),
            "norm": g.norm.iloc[0], "block": g.block.iloc[0], "residual": g.residual.iloc[0],
            "_by_seed": seeds[metric].to_dict(),
        })
    arms = pd.DataFrame(rows)
    # Two recipes edited between runs can share a label; the hash tells them apart.
    dup = arms.arm.duplicated(keep=False)
    arms.loc[dup, "arm"] = arms.loc[dup, "arm"] + "@" + arms.loc[dup, "arm_hash"].str[:6]
    if baseline and not _named(arms, baseline).any():
        raise UserError(f"--baseline {baseline!r}: no such arm; arms: {', '.join(arms.arm)}")
    groups, base_labels = [], []
    group_order = arms.groupby("budget", sort=False).first_seen.min().sort_values().index
    for gi, budget in enumerate(group_order):
        g = arms[arms.budget == budget].copy()
        base = _pick_baseline(g, baseline)  # the named arm if it is in this budget group, else the default
        b = g[g.arm_hash == base].iloc[0]
        base_labels.append(b.arm)
        deltas = []
        for _, row in g.iterrows():
            shared = sorted(set(row._by_seed) & set(b._by_seed))
            if row.arm_hash == base:
                deltas.append((0.0 if pd.notna(b[metric]) else float("nan"), float("nan"), float("nan"), len(shared),
                               "baseline"))
            elif shared:
                mean, se, pv = paired([row._by_seed[s] - b._by_seed[s] for s in shared])
                verdict = "n<2: no noise estimate" if len(shared) < 2 else _verdict(pv, mean, alpha, lower)
                deltas.append((mean, se, pv, len(shared), verdict))
            else:
                delta = row[metric] - b[metric]
                deltas.append((delta, float("nan"), float("nan"), 0, "no shared seeds" if pd.notna(delta) else ""))
        g["delta"], g["delta_stderr"], g["p_value"], g["paired_seeds"], g["verdict"] = zip(*deltas)
        if adjust == "holm":
            g["p_adjusted"] = holm([float(p) for p in g.p_value])
            decided = g.p_adjusted.notna()
            g.loc[decided, "verdict"] = [_verdict(p, d, alpha, lower)
                                         for p, d in zip(g.p_adjusted[decided], g.delta[decided])]
        g["baseline"] = g.arm_hash == base
        g["group"] = gi
        g = g.sort_values([metric, "first_seen"], ascending=[lower, True], na_position="last")
        g["rank"] = range(1, len(g) + 1)
        g.loc[g[metric].isna(), "rank"] = pd.NA  # diverged, failed, running or unscored arms are listed, not ranked
        groups.append(g)
    arms = pd.concat(groups).reset_index(drop=True)
    arms["rank"] = arms["rank"].astype("Int64")  # json and csv give 1, not 1.0
    metrics = metric_columns(arms)
    columns = (ARM_COLUMNS + ([metric + "_std"] if metric != "val_loss" else []) + metrics
               + [c + "_runs" for c in metrics if c + "_runs" in arms] + ["finished", "baseline", "group"])
    if adjust == "holm":
        columns.insert(columns.index("p_value") + 1, "p_adjusted")
    return arms.reindex(columns=columns), (base_labels[0] if len(base_labels) == 1 else "; ".join(base_labels))


def every_metric(runs: pd.DataFrame, baseline: str | None = None, alpha: float = 0.05, adjust: str = "none",
           order: str = "val_loss") -> tuple[pd.DataFrame, str | None, list[str]]:
    """Every arm against its group's baseline in every metric at once: one row per arm, in by_arm's order by `order`,
    and for each metric m that some run has (val_loss first) the arm's mean m, the paired Δ m_delta with its
    m_delta_stderr, m_p_value (and m_p_adjusted with adjust="holm", over the arms of a group, one metric at a time)
    and m_verdict, as by_arm(metric=m) gives them. Returns the frame, the baseline label(s) and the metrics."""
    first, base_label = by_arm(runs, baseline, alpha, adjust, order)
    if first.empty:
        return first, base_label, []
    out = first[["rank", "arm", "budget", "runs", "seeds", "arm_hash", "baseline", "group"]].copy()
    metrics = rankable(runs)
    for m in metrics:
        arms = first if m == order else by_arm(runs, baseline, alpha, adjust, m)[0]
        arms = arms.set_index("arm_hash")
        p_values = ["p_value", "p_adjusted"] if adjust == "holm" else ["p_value"]
        for col in ["", "delta", "delta_stderr", *p_values, "verdict"]:
            out[f"{m}_{col}" if col else m] = out.arm_hash.map(arms[col or m])
    return out.reset_index(drop=True), base_label, metrics
