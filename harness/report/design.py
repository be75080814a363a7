"""The design a sweep's runs form, derived, not configured:
- the factors are the parameters that vary across the runs, apart from the seed (the
  replicate), the backend (checked for agreement) and parameters that follow from other
  factors (e.g. `data.task` follows `data`), ordered as the sweep's overrides list them;
- a factor whose levels are different tasks (different losses and metrics) is a condition;
- the compared factor is the first factor that keeps the task (or the one named), its first
  level (in sweep order) the baseline.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.report.load import ReportError, Sweep, SweepRun

# Parameters that are not factors: where runs are logged, the text of the question, the
# replicate and the backend (reported separately), how the report judges (its margins), and
# sizes that follow from the data.
# data.digest identifies the split, which follows the seed: a replicate, not a factor
NOT_FACTORS = ("tracking.", "question", "seed", "backend.name", "report.", "data.digest")
DERIVED_PREFIX = "data.n_"
BACKEND_ORDER = ["keras", "keras_jax", "keras_torch", "lightning", "numpy"]


@dataclass
class Factor:
    param: str  # the run parameter, e.g. optimizer.name
    label: str  # what a user typed to sweep it, e.g. optimizer
    levels: list[str]  # in sweep order; the first is the baseline
    changes_task: bool = False


@dataclass
class Design:
    factors: list[Factor]
    derived: list[str]  # parameters that vary only because a factor does
    fixed: dict[str, str]
    backends: list[str]
    seeds: list[int]
    compared: Factor | None

    def label(self, variant: tuple[str, ...]) -> str:
        pairs = zip(self.factors, variant, strict=True)
        return ", ".join(f"{f.label}={v}" for f, v in pairs) or "all runs"

    @property
    def variants(self) -> list[tuple[str, ...]]:
        return self._variants

    def set_variants(self, jobs: list[SweepRun]) -> None:
        order = {f.param: {v: i for i, v in enumerate(f.levels)} for f in self.factors}
        found = {j.variant for j in jobs}
        self._variants = sorted(
            found, key=lambda v: [order[f.param][x] for f, x in zip(self.factors, v, strict=True)]
        )


def _is_param(name: str) -> bool:
    return not any(name == p or (p.endswith(".") and name.startswith(p)) for p in NOT_FACTORS)


def _determined(param: str, others: list[str], jobs: list[SweepRun]) -> bool:
    """True when `param` takes one value for each combination of `others`."""
    seen: dict[tuple, str] = {}
    for j in jobs:
        key = tuple(j.params.get(o, "") for o in others)
        if seen.setdefault(key, j.params.get(param, "")) != j.params.get(param, ""):
            return False
    return True


def ordered_unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def design(sweep: Sweep, compare: str | None = None) -> Design:
    jobs = sweep.runs
    names = sorted({k for j in jobs for k in j.params})
    varying = [p for p in names if _is_param(p) and len({j.params.get(p, "") for j in jobs}) > 1]

    def key_of(p: str) -> str | None:
        for k in sweep.key_order:
            if p in (k, f"{k}.name"):
                return k
        return None

    def priority(p: str) -> tuple:
        k = key_of(p)
        if k is not None:
            return (0, sweep.key_order.index(k), p)
        return (2 if p.startswith(DERIVED_PREFIX) else 1, 0, p)

    kept = sorted(varying, key=priority)
    for p in reversed(list(kept)):  # least likely to be a factor first
        if _determined(p, [q for q in kept if q != p], jobs):
            kept.remove(p)
    factors = [
        Factor(p, key_of(p) or p, ordered_unique(j.params.get(p, "") for j in jobs)) for p in kept
    ]
    for f in factors:
        others = [g.param for g in factors if g is not f]
        tasks_per = {}
        for j in jobs:
            tasks_per.setdefault(tuple(j.params.get(o, "") for o in others), set()).add(j.task)
        f.changes_task = any(len(t) > 1 for t in tasks_per.values())
    for j in jobs:
        j.variant = tuple(j.params.get(f.param, "") for f in factors)
    backends = sorted(
        {j.backend for j in jobs},
        key=lambda b: (BACKEND_ORDER.index(b) if b in BACKEND_ORDER else 99, b),
    )
    if not factors and len(backends) < 2:
        raise ReportError(
            f"the {len(jobs)} runs of sweep {sweep.parent_name} differ only in the seed "
            f"(one configuration, backend {backends[0]}): there is nothing to compare. Sweep a "
            "factor, e.g. backend=keras,lightning or model.hidden_activation=sigmoid,relu"
        )
    fixed = {
        p: jobs[0].params.get(p, "")
        for p in names
        if _is_param(p) and p not in varying and len({j.params.get(p, "") for j in jobs}) == 1
    }
    d = Design(
        factors=factors,
        derived=[p for p in varying if p not in kept],
        fixed=fixed,
        backends=backends,
        seeds=sorted({j.seed for j in jobs}),
        compared=_compared(factors, compare),
    )
    d.set_variants(jobs)
    return d


def _compared(factors: list[Factor], compare: str | None) -> Factor | None:
    if compare is None:
        return next((f for f in factors if not f.changes_task), None)
    for f in factors:
        if compare in (f.param, f.label):
            if f.changes_task:
                raise ReportError(
                    f"--compare {compare}: its levels are different tasks with different losses "
                    "and metrics, so they are reported side by side, not compared"
                )
            return f
    raise ReportError(
        f"--compare {compare}: not a factor of this sweep; its factors are: "
        + (", ".join(f.label for f in factors) or "none (only the backend varies)")
    )


def cell(jobs: list[SweepRun], variant: tuple[str, ...], backend: str) -> list[SweepRun]:
    return sorted(
        (j for j in jobs if j.variant == variant and j.backend == backend), key=lambda j: j.seed
    )


def backend_name(b: str) -> str:
    names = {"keras": "Keras", "lightning": "Lightning", "numpy": "NumPy"}
    names |= {"keras_jax": "Keras on JAX", "keras_torch": "Keras on PyTorch"}
    return names.get(b, b)
