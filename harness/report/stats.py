"""The statistics a report states: means with t-based 95% confidence intervals, paired
comparisons by seed (difference, Cohen's d_z, paired t-test, Wilcoxon signed-rank), paired
ratios of times, and the first epoch at which a curve crosses a threshold.

The tests that a verdict rests on (harness.report.verdicts), for n paired seeds, all on the
differences d = a - b:
- `t_test_p`: two-sided paired t-test (one-sample t on d).
- `sign_flip_p`: the paired permutation test: every sign pattern of d, statistic mean(d),
  two-sided; exact (all 2^n patterns) up to n = EXACT_MAX_N. Its smallest attainable p is
  2 / 2^n (`smallest_sign_flip_p`), so at n = 3 it is 0.25 and it cannot reach 0.05 below
  n = 6 (`can_reach`; after Holm over m comparisons, not below m * 2 / 2^n).
- `bootstrap_ci`: a seeded BCa bootstrap interval of mean(d) (percentile where BCa is undefined).
- `prob_improvement`: P(A beats B), rliable's definition (ties count 1/2), paired by seed.
- `holm`: Holm's step-down adjustment over a family (statsmodels).
- `tost`: paired two one-sided t-tests of equivalence within +/- delta, with the (1 - 2 alpha)
  interval.
- `seeds_needed`: seeds for 80% power of the two-sided paired t-test at the observed d_z.

Constant differences (zero spread: identical arms, or a fixed offset) are decided exactly
rather than left NaN: the t-test p is 0 for a nonzero constant and 1 for zero, the bootstrap
interval is the constant itself, and TOST passes iff |constant| < delta.

Plain functions of NumPy arrays, computed with scipy.stats and statsmodels; no MLflow, no
plotting, no pandas.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests

LEVEL = 0.95  # every interval in a report is a 95% confidence interval
ALPHA = 0.05
POWER = 0.8
SEEDS_CAP = 1000  # seeds_needed returns SEEDS_CAP + 1 for "more than SEEDS_CAP"
EXACT_MAX_N = 16  # the sign-flip test enumerates all 2^n patterns up to here (65,536)
RESAMPLES = 9999  # bootstrap resamples, and sign-flip resamples above EXACT_MAX_N


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


# --- tests for verdicts: all on paired differences d = a - b --------------------------------


def differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """a - b pair by pair; equal lengths and finite values required."""
    xa, xb = _clean(a), _clean(b)
    if len(xa) != len(xb):
        raise ValueError(
            f"paired samples differ in length: {len(xa)} vs {len(xb)}; pair them by seed first"
        )
    d = xa - xb
    if not np.all(np.isfinite(d)):
        raise ValueError(f"paired samples hold non-finite values: {d.tolist()}; drop those seeds")
    return d


def _constant(d: np.ndarray) -> bool:
    """Every difference equal (np.std of equal floats can be 1e-17, so compare exactly)."""
    return len(d) >= 1 and float(np.ptp(d)) == 0.0


def t_test_p(d: Sequence[float]) -> float:
    """Two-sided paired t-test of mean(d) = 0; exact 0 or 1 for constant d; NaN for n < 2."""
    x = _clean(d)
    if len(x) < 2:
        return math.nan
    if _constant(x):
        return 1.0 if x[0] == 0.0 else 0.0
    return float(stats.ttest_1samp(x, 0.0).pvalue)


def smallest_sign_flip_p(n: int) -> float:
    """The smallest two-sided p the exact sign-flip test can give at n pairs: 2 / 2^n."""
    return min(1.0, 2.0 / 2.0**n)


def can_reach(n: int, alpha: float = ALPHA, m: int = 1) -> bool:
    """Whether the exact sign-flip test at n pairs can give p < alpha at all; with m > 1,
    whether its Holm-adjusted p over a family of m can (at best m * 2 / 2^n)."""
    return m * smallest_sign_flip_p(n) < alpha


def sign_flip_p(d: Sequence[float], *, seed: int = 0, n_resamples: int = RESAMPLES) -> float:
    """Two-sided paired permutation (sign-flip) p of mean(d) = 0; exact for n <= EXACT_MAX_N.

    Above EXACT_MAX_N it is a seeded Monte-Carlo estimate over n_resamples sign patterns.
    """
    x = _clean(d)
    n = len(x)
    if n == 0:
        return math.nan
    if n == 1:  # SciPy wants two; both signs of one difference: p = 2 * 1/2
        return 1.0
    exact = n <= EXACT_MAX_N
    res = stats.permutation_test(
        (x,),
        np.mean,
        permutation_type="samples",  # one sample: the null flips the sign of each difference
        vectorized=True,
        n_resamples=2**n if exact else n_resamples,
        alternative="two-sided",
        rng=seed,
    )
    return float(res.pvalue)


def bootstrap_ci(
    d: Sequence[float], level: float = LEVEL, *, seed: int = 0, n_resamples: int = RESAMPLES
) -> tuple[float, float]:
    """Seeded BCa bootstrap interval of mean(d); percentile where BCa is undefined.

    Constant d gives (d0, d0); n < 2 gives NaNs. At n <= 5 any bootstrap interval is too
    narrow (few distinct resamples), which is why the t-test, not this, is the primary test.
    """
    x = _clean(d)
    if len(x) < 2:
        return math.nan, math.nan
    if _constant(x):
        return float(x[0]), float(x[0])
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():  # BCa's "cannot be calculated": we fall back below
            warnings.simplefilter("ignore")
            ci = stats.bootstrap(
                (x,),
                np.mean,
                confidence_level=level,
                n_resamples=n_resamples,
                method=method,
                rng=seed,
            ).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
        if math.isfinite(lo) and math.isfinite(hi):
            break
    return lo, hi


def prob_improvement(
    a: Sequence[float],
    b: Sequence[float],
    *,
    higher_is_better: bool = True,
    paired: bool = True,
) -> float:
    """P(A beats B): mean of 1[a beats b] + 1/2 * 1[a == b] (rliable's definition).

    paired=True compares a[i] with b[i] only (same seed); paired=False compares every a[i]
    with every b[j] (rliable's form for independent runs).
    """
    xa, xb = _clean(a), _clean(b)
    if paired:
        d = differences(xa, xb)
    else:
        d = (xa[:, None] - xb[None, :]).ravel()
    if len(d) == 0:
        return math.nan
    wins = d > 0 if higher_is_better else d < 0
    return float(np.mean(wins + 0.5 * (d == 0)))


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values in the input order; NaN entries stay NaN and are not counted."""
    p = np.asarray(pvalues, dtype=np.float64)
    out = np.full(p.shape, math.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = multipletests(p[ok], method="holm")[1]
    return out


@dataclass(frozen=True)
class Tost:
    """Paired equivalence test of |mean(d)| < delta: p and the (1 - 2 alpha) interval."""

    p: float  # max of the two one-sided p-values
    lo: float
    hi: float
    delta: float


def tost(d: Sequence[float], delta: float, alpha: float = ALPHA) -> Tost:
    """Two one-sided paired t-tests of H0: mean(d) <= -delta or mean(d) >= delta.

    Equivalence at level alpha when p < alpha, i.e. when the (1 - 2 alpha) t interval lies
    inside (-delta, delta). Constant d: p = 0 if |d0| < delta, else 1.
    """
    if not delta >= 0:
        raise ValueError(f"equivalence margin must be >= 0, got {delta}")
    x = _clean(d)
    n = len(x)
    if n < 2:
        return Tost(math.nan, math.nan, math.nan, delta)
    mean = float(np.mean(x))
    if _constant(x):
        return Tost(0.0 if abs(x[0]) < delta else 1.0, float(x[0]), float(x[0]), delta)
    se = float(np.std(x, ddof=1)) / math.sqrt(n)
    dist = stats.t(n - 1)
    p_low = float(dist.sf((mean + delta) / se))  # H0: mean <= -delta
    p_high = float(dist.cdf((mean - delta) / se))  # H0: mean >= delta
    half = float(dist.ppf(1 - alpha)) * se
    return Tost(max(p_low, p_high), mean - half, mean + half, delta)


def seeds_needed(
    d: Sequence[float], alpha: float = ALPHA, power: float = POWER, cap: int = SEEDS_CAP
) -> int | None:
    """Seeds for `power` in the two-sided paired t-test at the observed d_z = mean(d) / sd(d).

    None where mean(d) is exactly 0 or n < 2 (no effect to power); 2 for a constant nonzero d;
    cap + 1 where even cap seeds fall short (read it as "more than cap").
    """
    x = _clean(d)
    if len(x) < 2 or float(np.mean(x)) == 0.0 or (_constant(x) and x[0] == 0.0):
        return None
    if _constant(x):
        return 2
    effect = abs(float(np.mean(x))) / float(np.std(x, ddof=1))
    if not paired_t_power(effect, cap, alpha) >= power:
        return cap + 1
    # power rises with n: bisect for the smallest n with enough power, i.e.
    # ceil(statsmodels' TTestPower().solve_power(...)) without its failures on large effects
    lo, hi = 1, cap  # enough power at hi; lo is below the t-test's minimum of 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if paired_t_power(effect, mid, alpha) >= power else (mid, hi)
    return max(hi, 2)


def paired_t_power(d_z: float, n: int, alpha: float = ALPHA) -> float:
    """Power of the two-sided paired (one-sample) t-test at effect size d_z with n pairs.

    The same formula as statsmodels' TTestPower().power, but the far tail, which SciPy's
    noncentral t returns as NaN when it underflows (e.g. d_z = 0.5, n = 500), counts as 0.
    """
    if n < 2:
        return math.nan
    crit = float(stats.t.ppf(1 - alpha / 2, n - 1))
    nc = abs(d_z) * math.sqrt(n)
    near = float(stats.nct.sf(crit, n - 1, nc))
    far = float(stats.nct.cdf(-crit, n - 1, nc))
    return near + (far if math.isfinite(far) else 0.0)
