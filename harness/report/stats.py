"""The statistics a report states: means with t-based 95% confidence intervals, paired
comparisons by seed (difference, Cohen's d_z, paired t-test, Wilcoxon signed-rank), paired
ratios of times, and the first epoch at which a curve crosses a threshold.

Plain functions of NumPy arrays, computed with scipy.stats; no MLflow, no plotting.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

LEVEL = 0.95  # every interval in a report is a 95% confidence interval


@dataclass(frozen=True)
class Estimate:
    """Mean of n values with its t-based confidence interval (NaN bounds when n < 2)."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float


@dataclass(frozen=True)
class Paired:
    """`b - a` over n pairs: mean difference and CI, effect size, tests."""

    n: int
    mean_a: float
    mean_b: float
    diff: Estimate
    d_z: float  # mean difference / SD of the differences (Cohen's d for paired data)
    t: float
    p_t: float  # two-sided paired t-test
    p_wilcoxon: float  # two-sided Wilcoxon signed-rank (exact for small n); NaN if undefined

    @property
    def constant(self) -> bool:
        """Every pair differs by the same amount: no spread, so no test is defined."""
        return self.n >= 2 and self.diff.sd == 0.0


def _clean(values: Sequence[float]) -> np.ndarray:
    return np.asarray([float(v) for v in values], dtype=np.float64)


def mean_ci(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """Mean and the t interval mean +/- t_{(1+level)/2, n-1} * sd / sqrt(n)."""
    x = _clean(values)
    n = len(x)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(np.mean(x))
    if n == 1:
        return Estimate(1, mean, math.nan, math.nan, math.nan)
    sd = float(np.std(x, ddof=1))
    half = float(stats.t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(n, mean, sd, mean - half, mean + half)


def band(curves: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-column mean and t interval of a (runs x epochs) array; NaN entries are skipped.

    The interval is NaN where fewer than two runs have a value (no band is drawn there).
    """
    x = np.asarray(curves, dtype=np.float64)
    ok = np.isfinite(x)
    n = ok.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(ok, x, 0.0).sum(axis=0) / n
        dev = np.where(ok, x - mean, 0.0)
        sd = np.sqrt((dev**2).sum(axis=0) / (n - 1))
        crit = stats.t.ppf((1 + level) / 2, np.maximum(n - 1, 1))
        half = np.where(n >= 2, crit * sd / np.sqrt(n), np.nan)
    return mean, mean - half, mean + half


def paired(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Paired:
    """Compare b with a, pair by pair (same seed): statistics of d = b - a."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) != len(xb):
        raise ValueError(f"paired samples differ in length: {len(xa)} vs {len(xb)}")
    d = xb - xa
    diff = mean_ci(d, level)
    n = len(d)
    t = p_t = d_z = p_w = math.nan
    if n >= 2 and diff.sd > 0:
        d_z = diff.mean / diff.sd
        res = stats.ttest_rel(xb, xa)
        t, p_t = float(res.statistic), float(res.pvalue)
        p_w = wilcoxon_p(d)
    return Paired(
        n=n,
        mean_a=float(np.mean(xa)) if n else math.nan,
        mean_b=float(np.mean(xb)) if n else math.nan,
        diff=diff,
        d_z=d_z,
        t=t,
        p_t=p_t,
        p_wilcoxon=p_w,
    )


def wilcoxon_p(d: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences; NaN where undefined."""
    if np.count_nonzero(d) == 0:
        return math.nan
    with warnings.catch_warnings():  # "sample size too small for normal approximation"
        warnings.simplefilter("ignore")
        try:
            return float(stats.wilcoxon(d).pvalue)
        except ValueError:
            return math.nan


def ratio_ci(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Estimate:
    """Paired ratio a / b as a geometric mean, CI from the t interval of log(a) - log(b)."""
    la, lb = np.log(_clean(a)), np.log(_clean(b))
    est = mean_ci(la - lb, level)
    return Estimate(est.n, math.exp(est.mean), est.sd, math.exp(est.lo), math.exp(est.hi))


def first_crossing(curve: Sequence[float], threshold: float, below: bool = True) -> int | None:
    """The first epoch (1-based) whose value is <= threshold (>= if not below); None if never."""
    x = _clean(curve)
    hit = x <= threshold if below else x >= threshold
    idx = np.flatnonzero(hit)
    return int(idx[0]) + 1 if len(idx) else None
