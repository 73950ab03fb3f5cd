"""Statistics of paired comparisons: the paired t-test, its minimum detectable effect, Holm's correction.

Everything works on a generic mapping ``{unit: paired difference}``: a unit is a seed today and may be a
``(fold, seed)`` pair (any sortable key), so spatial folds x seeds plug in unchanged.

- :func:`paired_stats`: mean, standard deviation (ddof 1) and Student-t 95 % interval of the differences, the
  two-sided paired t-test p-value (a one-sample t-test of the differences against 0, as
  ``scipy.stats.ttest_rel``) and the minimum detectable effect at 80 % power;
- :func:`mde`: ``MDE = (t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)``, the usual closed-form
  approximation for a two-sided paired t-test (it ignores the opposite tail and uses the central t for
  the power quantile; the exact noncentral-t value is slightly larger for very small n);
- :func:`holm`: Holm's step-down adjusted p-values of a family of tests;
- :func:`verdict`: "helps" / "hurts" when p < alpha (sign of the mean difference), else "no clear effect";
  "not enough seeds" with fewer than 2 pairs.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping

import numpy as np
from scipy import stats

__all__ = ["ALPHA", "NOT_ENOUGH", "POWER", "holm", "mde", "paired_stats", "verdict"]

ALPHA = 0.05  # two-sided test level; the intervals are (1 - ALPHA) = 95 %
POWER = 0.8  # power of the minimum detectable effect
NOT_ENOUGH = "not enough seeds"


def mde(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """Minimum detectable effect of a two-sided paired t-test at level ``alpha`` and ``power`` with ``n`` pairs
    whose differences have standard deviation ``sd``: ``(t_{1-alpha/2, n-1} + t_{power, n-1}) * sd / sqrt(n)``;
    NaN below 2 pairs."""
    if n < 2 or not math.isfinite(sd):
        return math.nan
    return float((stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n))


def paired_stats(diffs: Mapping[Hashable, float], alpha: float = ALPHA, power: float = POWER) -> dict:
    """Statistics of paired differences ``{unit: score(arm) - score(reference)}``.

    Returns ``n``, ``diff_mean``, ``diff_std`` (ddof 1), ``diff_ci95`` (Student-t, level ``1 - alpha``), ``t``,
    ``p`` (two-sided paired t-test), ``mde80`` (:func:`mde`) and ``units`` (sorted). Below 2 pairs every spread
    statistic is NaN. Differences that are all equal give p = 0 (mean not 0) or 1 (mean 0).
    """
    units = sorted(diffs)
    d = np.array([diffs[u] for u in units], dtype=np.float64)
    n = len(d)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n > 1 else math.nan
    if n > 1:
        half = float(stats.t.ppf(1 - alpha / 2, n - 1) * sd / math.sqrt(n))
        if not (math.isfinite(mean) and math.isfinite(sd)):
            t, p = math.nan, math.nan
        elif sd == 0:
            t, p = (math.copysign(math.inf, mean), 0.0) if mean != 0 else (0.0, 1.0)
        else:
            t = mean / (sd / math.sqrt(n))
            p = float(2 * stats.t.sf(abs(t), n - 1))
    else:
        half = t = p = math.nan
    return {"n": n, "diff_mean": mean, "diff_std": sd, "diff_ci95": (mean - half, mean + half), "t": float(t),
            "p": p, "mde80": mde(sd, n, alpha, power), "units": units}  # fmt: skip


def holm(pvalues: Mapping[Hashable, float]) -> dict[Hashable, float]:
    """Holm's step-down adjusted p-values: with the ``m`` finite p-values sorted, ``p_(1) <= ... <= p_(m)``,
    ``adj_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``. NaN p-values (fewer than 2 pairs) are not part of
    the family and stay NaN."""
    finite = sorted(((p, k) for k, p in pvalues.items() if p is not None and math.isfinite(p)), key=lambda pk: pk[0])
    m = len(finite)
    out = {k: math.nan for k in pvalues}
    running = 0.0
    for i, (p, k) in enumerate(finite):
        running = max(running, min(1.0, (m - i) * p))
        out[k] = running
    return out


def verdict(p: float, mean: float, n: int, alpha: float = ALPHA) -> str:
    """"helps" / "hurts" when ``p < alpha`` (by the sign of ``mean``), else "no clear effect";
    "not enough seeds" below 2 pairs."""
    if n < 2:
        return NOT_ENOUGH
    if p is None or not math.isfinite(p) or p >= alpha or mean == 0:
        return "no clear effect"
    return "helps" if mean > 0 else "hurts"
