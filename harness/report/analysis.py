"""What a report computes from the runs: the comparisons of the compared factor's levels
with its baseline, and the agreement of the backends, paired by seed (harness.report.stats).

Plain dataclasses out; no text, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harness.report import stats
from harness.report.design import Design, cell
from harness.report.load import SCORE_NAME, SweepRun
from harness.report.verdicts import Verdict


@dataclass(frozen=True)
class Threshold:
    """'Epochs to reach': the first epoch at which `key` crosses `value`."""

    key: str
    value: float
    below: bool
    text: str

    @property
    def rule(self) -> str:
        return f"{self.key} {'<=' if self.below else '>='} {self.value:g}"


# Classification: a training cross-entropy of 0.1 nats (mean predicted probability of the
# true class around 0.9) - reached within the default 100 epochs by a model that learns,
# not by one that stalls. Regression (MSE on a target of a different scale): R^2 0.4, about
# what a linear model explains of the diabetes targets.
THRESHOLDS = {
    "binary": Threshold("train/loss", 0.1, True, "training loss ≤ 0.1"),
    "multiclass": Threshold("train/loss", 0.1, True, "training loss ≤ 0.1"),
    "multilabel": Threshold("train/loss", 0.1, True, "training loss ≤ 0.1"),
    "regression": Threshold("train/r2", 0.4, False, "training R² ≥ 0.4"),
}


def threshold(task: str) -> Threshold:
    return THRESHOLDS.get(task, THRESHOLDS["binary"])


def epochs_to(run: SweepRun) -> int | None:
    """The first epoch at which the run crosses its task's threshold; None if never."""
    th = threshold(run.task)
    curve = run.curves.get(th.key)
    if curve is None or not len(curve):
        return None
    return stats.first_crossing(curve, th.value, th.below)


def pairs(a: list[SweepRun], b: list[SweepRun]) -> list[tuple[SweepRun, SweepRun]]:
    """Runs of a and b with the same seed, in a's order."""
    by_seed = {r.seed: r for r in b}
    return [(r, by_seed[r.seed]) for r in a if r.seed in by_seed]


@dataclass
class MetricComparison:
    """One metric of a comparison: both arms over the paired seeds and their difference
    (or why there is none)."""

    name: str
    key: str  # the run metric, or `epochs_to_threshold`
    a: stats.Estimate  # baseline arm
    b: stats.Estimate  # other arm
    result: stats.Paired | None
    note: str = ""  # why result is None
    reached_a: int = 0  # epochs to threshold: runs that reach it, per arm, out of n_pairs
    reached_b: int = 0
    n_pairs: int = 0
    budget: int = 0  # epochs the runs trained
    a_values: list[float] = field(default_factory=list)  # per seed, paired; empty if censored
    b_values: list[float] = field(default_factory=list)
    verdict: Verdict | None = None  # filled in by harness.report.questions


@dataclass
class Comparison:
    """`level` against the baseline level of the compared factor, in one stratum (the other
    factors at `variant`'s levels) and one backend."""

    variant: tuple[str, ...]  # the baseline's variant
    level: str
    backend: str
    train_loss: MetricComparison
    val_loss: MetricComparison
    score: MetricComparison
    epochs: MetricComparison

    @property
    def metrics(self) -> list[MetricComparison]:
        """In the order of the comparisons table."""
        return [self.train_loss, self.val_loss, self.score, self.epochs]

    @property
    def n(self) -> int:
        """Pairs of runs (seeds) compared."""
        return self.epochs.n_pairs


def final_values(
    paired_runs: list[tuple[SweepRun, SweepRun]], key: str
) -> tuple[list[float], list[float]]:
    return [x.last(key) for x, _ in paired_runs], [y.last(key) for _, y in paired_runs]


def compare(
    a: list[SweepRun], b: list[SweepRun], where: tuple[str, ...], level: str, backend: str
) -> Comparison | None:
    """b against a, paired by seed: final losses and score, epochs to threshold."""
    paired_runs = pairs(a, b)
    if not paired_runs:
        return None
    first = paired_runs[0][0]
    score = first.score
    finals = []
    for key, name in (
        ("train/loss", "final training loss"),
        ("val/loss", "final validation loss"),
        (f"val/{score}", f"final validation {SCORE_NAME[score]}"),
    ):
        xa, xb = final_values(paired_runs, key)
        finals.append(
            MetricComparison(
                name,
                key,
                stats.mean_ci(xa),
                stats.mean_ci(xb),
                stats.paired(xa, xb),
                a_values=xa,
                b_values=xb,
            )
        )
    th = threshold(first.task)
    ea = [epochs_to(x) for x, _ in paired_runs]
    eb = [epochs_to(y) for _, y in paired_runs]
    ra, rb = [e for e in ea if e is not None], [e for e in eb if e is not None]
    budget = max(len(r.curves.get(th.key, ())) for pair in paired_runs for r in pair)
    n = len(paired_runs)
    if len(ra) == len(rb) == n:
        result, note = stats.paired(ea, eb), ""
    else:  # censored: a run that never gets there has no number of epochs to compare
        result = None
        note = (
            f"reached within {budget} epochs by {len(ra)}/{n} baseline and {len(rb)}/{n} other runs"
        )
    epochs = MetricComparison(
        f"epochs to {th.text}",
        "epochs_to_threshold",
        stats.mean_ci(ra),
        stats.mean_ci(rb),
        result,
        note,
        len(ra),
        len(rb),
        n,
        budget,
        a_values=[float(e) for e in ea] if result else [],
        b_values=[float(e) for e in eb] if result else [],
    )
    return Comparison(where, level, backend, *finals, epochs)


def comparisons(runs: list[SweepRun], d: Design) -> list[Comparison]:
    """Every level of the compared factor against its baseline, per stratum and backend."""
    f = d.compared
    if f is None:
        return []
    i = d.factors.index(f)
    out = []
    for v in d.variants:
        if v[i] != f.levels[0]:
            continue
        for level in f.levels[1:]:
            other = v[:i] + (level,) + v[i + 1 :]
            for b in d.backends:
                c = compare(cell(runs, v, b), cell(runs, other, b), v, level, b)
                if c is not None:
                    out.append(c)
    return out


@dataclass
class Agreement:
    """A final metric of one backend against the first backend, in one variant."""

    variant: tuple[str, ...]
    backend: str
    key: str
    result: stats.Paired
    worst: float  # largest |difference| over the pairs
    a_values: list[float] = field(default_factory=list)  # the first backend, per seed
    b_values: list[float] = field(default_factory=list)  # this backend, same seeds
    verdict: Verdict | None = None  # filled in by harness.report.questions
    reference: str = ""  # the backend it is held against; "": the first backend


def agreement(runs: list[SweepRun], d: Design) -> list[Agreement]:
    b0 = d.backends[0]
    return [
        row
        for v in d.variants
        for b in d.backends[1:]
        for row in agreement_rows(cell(runs, v, b0), cell(runs, v, b), v, b)
    ]


def agreement_rows(
    reference_runs: list[SweepRun], runs: list[SweepRun], variant, backend: str, reference: str = ""
) -> list[Agreement]:
    """One backend's runs held against a reference's, paired by seed: final train loss,
    val loss and val score."""
    paired_runs = pairs(reference_runs, runs)
    if not paired_runs:
        return []
    score = paired_runs[0][0].score
    out = []
    for key in ("train/loss", "val/loss", f"val/{score}"):
        xa, xb = final_values(paired_runs, key)
        worst = max(abs(p - q) for p, q in zip(xa, xb, strict=True))
        result = stats.paired(xa, xb)
        out.append(Agreement(variant, backend, key, result, worst, xa, xb, reference=reference))
    return out


def stratum_label(d: Design, variant: tuple[str, ...]) -> str:
    """The other factors' levels of a comparison, e.g. `data=diabetes`; `—` if none."""
    levels = zip(d.factors, variant, strict=True)
    parts = [f"{f.label}={x}" for f, x in levels if f is not d.compared]
    return ", ".join(parts) or "—"
