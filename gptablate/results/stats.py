"""Seed-noise statistics for the leaderboard: the paired t-test, without SciPy.

The two-sided p-value of Student's t with ν degrees of freedom is the regularized
incomplete beta function I_x(ν/2, 1/2) at x = ν / (ν + t²); I_x is evaluated with its
continued fraction (modified Lentz), switching to the symmetric form where that converges
faster.
"""

from __future__ import annotations

import math


def _betacf(a: float, b: float, x: float, iters: int = 300, eps: float = 1e-15) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iters + 1):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1.0) * (a + m2)),
                    -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1.0))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_two_sided_p(t: float, df: int) -> float:
    if df < 1 or not math.isfinite(t):
        return float("nan") if not math.isinf(t) else 0.0
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def paired(differences: list[float]) -> tuple[float, float, float]:
    """Mean difference, its standard error and the paired t-test's two-sided p (NaN below 2 pairs)."""
    n = len(differences)
    mean = sum(differences) / n
    if n < 2:
        return mean, float("nan"), float("nan")
    sd = math.sqrt(sum((d - mean) ** 2 for d in differences) / (n - 1))
    se = sd / math.sqrt(n)
    if se == 0:
        return mean, 0.0, (0.0 if mean != 0 else 1.0)
    return mean, se, t_two_sided_p(mean / se, n - 1)


def holm(pvalues: list[float]) -> list[float]:
    """Holm's step-down adjustment of the p-values of m tests, in their order (NaN, a test not made, stays NaN and
    does not count in m): the i-th smallest becomes max over j <= i of min(1, (m - j + 1) p_(j)). It bounds the chance
    of any false 'better' or 'worse' among the m at the level, where unadjusted p bounds it for each one alone."""
    live = sorted((p, k) for k, p in enumerate(pvalues) if p == p)
    out = [float("nan")] * len(pvalues)
    running = 0.0
    for j, (p, k) in enumerate(live):
        running = max(running, min(1.0, (len(live) - j) * p))
        out[k] = running
    return out
