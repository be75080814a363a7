"""One verdict per comparison and metric: `better`, `worse`, `equivalent` or `unresolved`.

A comparison is arm A against arm B (the reference) on one metric, paired by seed; its
effect is mean(a - b). `decide` takes a family of comparisons (one report's questions) and
applies this rule at level alpha:

1. Holm over the family. The paired t-test is the primary test; its p-values are
   Holm-adjusted over every comparison in the family (`p_adj`). The sign-flip permutation
   p-values and the TOST p-values are Holm-adjusted over the same family, each on its own.
2. `better` / `worse` when p_adj < alpha, the bootstrap interval of the effect excludes 0,
   and, where the exact sign-flip test can reach alpha after Holm (m * 2 / 2^n < alpha for m
   comparisons with a sign-flip p in the family: from n = 6 for one comparison at 0.05,
   n = 10 for up to 25), its Holm-adjusted p is < alpha too. Where it cannot reach alpha,
   its floor, not the data, would decide, so it is not used, and the verdict says so
   (`perm_can_reach`; `perm_note` is the sentence for a report). Better or worse follows
   the metric's direction (`higher_is_better`).
3. Else `equivalent` when the Holm-adjusted TOST p < alpha: the (1 - 2 alpha) interval of
   the effect lies inside (-delta, +delta).
4. Else `unresolved`, with the seeds a paired t-test needs for 80% power at the observed
   effect size d_z = mean(d) / sd(d), at level alpha / m (m comparisons with a defined
   t-test in the family): Holm's strictest step, so that many seeds suffice for this
   comparison whatever the rest of the family shows. `seeds_needed` is filled in for every
   verdict; the text states it for unresolved ones.

Margins: an absolute margin is delta itself; a relative one is a fraction of |mean(b)|, the
reference arm's mean (so "losses within 5%" means |mean(a - b)| < 0.05 |mean(b)|).
Defaults by the metric's last name segment are in DEFAULT_MARGINS; a comparison may carry
its own (an experiment's config overrides them).

Pure functions of numbers; no I/O, no MLflow, no pandas.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.report import stats

LABELS = ("better", "worse", "equivalent", "unresolved")


@dataclass(frozen=True)
class Margin:
    """Equivalence margin: +/- value, absolute or as a fraction of the reference arm's mean."""

    value: float
    relative: bool = False

    def __post_init__(self) -> None:
        if (
            not (isinstance(self.value, int | float) and math.isfinite(self.value))
            or self.value < 0
        ):
            raise ValueError(f"Margin value must be a finite number >= 0, got {self.value!r}")

    def delta(self, reference_mean: float) -> float:
        """The absolute half-width: value, or value * |reference_mean| if relative."""
        return self.value * abs(reference_mean) if self.relative else self.value

    def __str__(self) -> str:
        return f"±{self.value * 100:g}%" if self.relative else f"±{self.value:g}"


# keyed by the metric's last name segment ("val/accuracy" -> "accuracy")
DEFAULT_MARGINS: dict[str, Margin] = {
    "accuracy": Margin(0.01),
    "loss": Margin(0.05, relative=True),
    "r2": Margin(0.01),
}
HIGHER_IS_BETTER: dict[str, bool] = {"accuracy": True, "loss": False, "r2": True}


def _suffix(metric: str) -> str:
    return metric.rsplit("/", 1)[-1]


def default_margin(metric: str) -> Margin:
    """The default margin for a metric, by its last name segment."""
    try:
        return DEFAULT_MARGINS[_suffix(metric)]
    except KeyError:
        raise ValueError(
            f"no default equivalence margin for metric {metric!r} (defaults exist for "
            f"{sorted(DEFAULT_MARGINS)}); give the comparison a margin=Margin(value, relative)"
        ) from None


def default_higher_is_better(metric: str) -> bool:
    """Whether larger is better for a metric, by its last name segment."""
    try:
        return HIGHER_IS_BETTER[_suffix(metric)]
    except KeyError:
        raise ValueError(
            f"no default direction for metric {metric!r} (defaults exist for "
            f"{sorted(HIGHER_IS_BETTER)}); give the comparison higher_is_better=True/False"
        ) from None


@dataclass(frozen=True)
class Comparison:
    """Arm A against reference arm B on one metric; a[i] and b[i] come from the same seed."""

    metric: str
    a_label: str
    b_label: str
    a: Sequence[float]
    b: Sequence[float]
    higher_is_better: bool | None = None  # None: default_higher_is_better(metric)
    margin: Margin | None = None  # None: default_margin(metric)


@dataclass(frozen=True)
class Verdict:
    """The answer to one comparison on one metric, with the evidence behind it."""

    metric: str
    a_label: str
    b_label: str
    n: int  # paired seeds
    mean_a: float
    mean_b: float
    effect: float  # mean(a - b)
    ci_low: float  # bootstrap (BCa) 95% interval of the effect
    ci_high: float
    p_t: float  # two-sided paired t-test, raw
    p_perm: float  # two-sided exact sign-flip test, raw
    p_adj: float  # p_t, Holm-adjusted over the family: the primary test
    p_tost: float  # TOST against the margin, raw
    margin: float  # the absolute half-width delta of the equivalence margin
    prob_improvement: float  # P(A beats B) paired by seed, in the metric's direction
    seeds_needed: int | None  # 80% power at the observed d_z, level alpha/m; SEEDS_CAP + 1: more
    label: str  # one of LABELS
    margin_spec: Margin = field(default_factory=lambda: Margin(0.0))
    higher_is_better: bool = True
    alpha: float = stats.ALPHA
    p_perm_adj: float = math.nan  # p_perm, Holm-adjusted over the family
    p_tost_adj: float = math.nan  # p_tost, Holm-adjusted over the family
    perm_can_reach: bool = False  # its Holm-adjusted p can fall below alpha at this n and m
    tost_low: float = math.nan  # the (1 - 2 alpha) t interval TOST compares with the margin
    tost_high: float = math.nan

    @property
    def margin_text(self) -> str:
        """'±0.01', or '±5% of sigmoid (±0.0021)' for a relative margin."""
        if self.margin_spec.relative:
            return f"{self.margin_spec} of {self.b_label} (±{_num(self.margin)})"
        return f"±{_num(self.margin)}"

    @property
    def summary(self) -> str:
        """The verdict in a table cell or tag: 'better', 'worse', 'equivalent within ±0.01',
        'unresolved (about 23 seeds needed)'."""
        if self.label == "equivalent":
            return f"equivalent within {self.margin_text}"
        if self.label == "unresolved":
            return f"unresolved ({self.unresolved_reason})"
        if self.p_tost_adj < self.alpha:  # a consistent difference, yet a negligible one
            return f"{self.label}, yet within {self.margin_text}"
        return self.label

    @property
    def text(self) -> str:
        """The verdict in words, e.g. 'ReLU better than sigmoid on val/accuracy: +0.009
        [0.004, 0.014], Holm p = 0.003 (10 seeds)'."""
        evidence = (
            f"{_num(self.effect, sign=True)} [{_num(self.ci_low)}, {_num(self.ci_high)}], "
            f"Holm p {_p(self.p_adj)} ({_seeds(self.n)})"
        )
        a, b, m = self.a_label, self.b_label, self.metric
        if self.label in ("better", "worse"):
            text = f"{a} {self.label} than {b} on {m}: {evidence}"
            if self.p_tost_adj < self.alpha:
                text += f"; the difference is also within {self.margin_text}"
            return text
        if self.label == "equivalent":
            return (
                f"{a} equivalent to {b} on {m} within {self.margin_text}: "
                f"{_num(self.effect, sign=True)}, {100 * (1 - 2 * self.alpha):g}% interval "
                f"[{_num(self.tost_low)}, {_num(self.tost_high)}], "
                f"Holm TOST p {_p(self.p_tost_adj)} ({_seeds(self.n)})"
            )
        return f"{a} vs {b} on {m} unresolved ({self.unresolved_reason}): {evidence}"

    @property
    def unresolved_reason(self) -> str:
        """Why an unresolved verdict is open, and what would settle it."""
        if self.n < 2:
            return f"{_seeds(self.n)}: no test is defined"
        if (
            self.p_adj < self.alpha
            and self.ci_low * self.ci_high > 0
            and self.perm_can_reach
            and not self.p_perm_adj < self.alpha
        ):
            return f"the exact sign-flip test does not confirm: Holm p {_p(self.p_perm_adj)}"
        if self.seeds_needed is None:
            return f"no effect observed, and not shown within {self.margin_text}"
        if self.seeds_needed > stats.SEEDS_CAP:
            return f"more than {stats.SEEDS_CAP} seeds needed"
        return f"about {self.seeds_needed} seeds needed"


def _mean(x: Sequence[float]) -> float:
    return float(np.mean(np.asarray(x, dtype=np.float64))) if len(x) else math.nan


def perm_note(n: int, alpha: float = stats.ALPHA, m: int = 1) -> str | None:
    """The one sentence a report states when the sign-flip test cannot reach alpha at n
    seeds, after Holm over m comparisons; None when it can."""
    if stats.can_reach(n, alpha, m):
        return None
    floor = f"2/2^{n} = {stats.smallest_sign_flip_p(n):.3g}"
    if m > 1:
        floor = f"{m} x {floor} after Holm over {m} comparisons"
    return (
        f"With {n} seeds the exact sign-flip test cannot give p < {alpha:g} (its smallest "
        f"p is {floor}), so it is not used as evidence; it needs at least "
        f"{min_seeds_to_reach(alpha, m)} seeds."
    )


def min_seeds_to_reach(alpha: float = stats.ALPHA, m: int = 1) -> int:
    """The fewest pairs at which the exact sign-flip test can give p < alpha after Holm over m."""
    n = 1
    while not stats.can_reach(n, alpha, m):
        n += 1
    return n


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _num(x: float, sign: bool = False) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"{x:+.3g}" if sign else f"{x:.3g}"


def _p(p: float) -> str:
    """'= 0.003', or '< 0.001'."""
    if not math.isfinite(p):
        return "= n/a"
    return "< 0.001" if p < 0.001 else f"= {p:.3f}"


@dataclass(frozen=True)
class _Raw:
    """The per-comparison statistics before the family's Holm adjustment."""

    d: np.ndarray
    higher_is_better: bool
    margin: Margin
    delta: float
    p_t: float
    p_perm: float
    ci: tuple[float, float]
    tost: stats.Tost


def _raw(c: Comparison, alpha: float, seed: int) -> _Raw:
    d = stats.differences(c.a, c.b)
    hib = default_higher_is_better(c.metric) if c.higher_is_better is None else c.higher_is_better
    margin = default_margin(c.metric) if c.margin is None else c.margin
    mean_b = _mean(c.b)
    delta = margin.delta(mean_b)
    return _Raw(
        d=d,
        higher_is_better=hib,
        margin=margin,
        delta=delta,
        p_t=stats.t_test_p(d),
        p_perm=stats.sign_flip_p(d, seed=seed),
        ci=stats.bootstrap_ci(d, seed=seed),
        tost=stats.tost(d, delta, alpha),
    )


def _label(
    r: _Raw, p_adj: float, p_perm_adj: float, p_tost_adj: float, alpha: float, m_perm: int
) -> str:
    lo, hi = r.ci
    significant = (
        p_adj < alpha
        and (lo > 0 or hi < 0)
        and (not stats.can_reach(len(r.d), alpha, m_perm) or p_perm_adj < alpha)
    )
    if significant:
        a_larger = float(np.mean(r.d)) > 0
        return "better" if a_larger == r.higher_is_better else "worse"
    if p_tost_adj < alpha:
        return "equivalent"
    return "unresolved"


def decide(family: list[Comparison], alpha: float = stats.ALPHA, *, seed: int = 0) -> list[Verdict]:
    """One verdict per comparison, Holm applied across the family (the module's rule).

    `seed` seeds the bootstrap (and the sign-flip test above EXACT_MAX_N pairs), so a report
    regenerates identically.
    """
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha}")
    raws = [_raw(c, alpha, seed) for c in family]
    p_adj = stats.holm([r.p_t for r in raws])
    p_perm_adj = stats.holm([r.p_perm for r in raws])
    p_tost_adj = stats.holm([r.tost.p for r in raws])
    m = max(1, int(np.isfinite(p_adj).sum()))
    m_perm = max(1, int(np.isfinite(p_perm_adj).sum()))
    out = []
    for i, (c, r) in enumerate(zip(family, raws, strict=True)):
        n = len(r.d)
        out.append(
            Verdict(
                metric=c.metric,
                a_label=c.a_label,
                b_label=c.b_label,
                n=n,
                mean_a=_mean(c.a),
                mean_b=_mean(c.b),
                effect=float(np.mean(r.d)) if n else math.nan,
                ci_low=r.ci[0],
                ci_high=r.ci[1],
                p_t=r.p_t,
                p_perm=r.p_perm,
                p_adj=float(p_adj[i]),
                p_tost=r.tost.p,
                margin=r.delta,
                prob_improvement=stats.prob_improvement(
                    c.a, c.b, higher_is_better=r.higher_is_better
                ),
                seeds_needed=stats.seeds_needed(r.d, alpha / m),
                label=_label(r, p_adj[i], p_perm_adj[i], p_tost_adj[i], alpha, m_perm),
                margin_spec=r.margin,
                higher_is_better=r.higher_is_better,
                alpha=alpha,
                p_perm_adj=float(p_perm_adj[i]),
                p_tost_adj=float(p_tost_adj[i]),
                perm_can_reach=stats.can_reach(n, alpha, m_perm),
                tost_low=r.tost.lo,
                tost_high=r.tost.hi,
            )
        )
    return out
