"""The tuned protocol's arithmetic: learning-rate grids, the checks on a protocol, and the
selection of each arm's rate from its tuning runs. Pure functions: no Hydra, no MLflow.

Selection (DeepOBS' protocol): per arm and setting (e.g. backend), the rate whose tuning
runs give the best mean of the criterion metric over the tuning seeds. A run that did not
finish (diverged, failed, killed) counts as the worst value (+inf for a loss), so a rate
with one diverged seed is never chosen over a rate whose every seed finished. Equal means
go to the smaller rate (the more conservative choice; stated in the table).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from harness.core.config import ConfigError, Task
from harness.core.metrics import task_metrics

FINISHED = ("FINISHED", "SKIPPED", "ELSEWHERE")  # the job's run FINISHED (here or before)
TIE_RULE = "equal means: the smaller rate"


@dataclass(frozen=True)
class Criterion:
    metric: str = "val/loss"
    mode: str = "min"  # min: lower is better (losses); max: higher is better (accuracy, R²)

    def describe(self) -> str:
        best = "lowest" if self.mode == "min" else "highest"
        return f"{best} mean final {self.metric} over the tuning seeds"


LOSS = Criterion()  # the default: lowest mean final val/loss


@dataclass(frozen=True)
class TuneResult:
    """One tuning run: its arm, setting (e.g. 'backend=keras'), rate, seed and outcome."""

    arm: str
    setting: str
    lr: float
    seed: int
    status: str  # FINISHED, SKIPPED or ELSEWHERE: finished; FAILED, KILLED, ...: did not
    value: float | None = None  # the criterion metric's final value, when it finished
    diverged: bool = False


@dataclass(frozen=True)
class Choice:
    arm: str
    setting: str
    lr: float | None  # None: no rate of the grid finished on every tuning seed
    score: float  # the criterion's mean at the chosen rate (nan if none)
    reason: str


def expand_grid(spec: Any, where: str) -> list[float]:
    """A declared grid (a list of rates), checked: non-empty, positive, finite, no repeats."""
    if not isinstance(spec, (list, tuple)):
        raise ConfigError(
            f"{where}={spec!r}: give a list of learning rates, e.g. [0.001, 0.01, 0.1]"
        )
    try:
        rates = [float(r) for r in spec]
    except (TypeError, ValueError):
        raise ConfigError(f"{where}={list(spec)}: the rates must be numbers") from None
    if not rates:
        raise ConfigError(f"{where} is empty: the tune stage needs at least one learning rate")
    bad = [r for r in rates if not (math.isfinite(r) and r > 0)]
    if bad:
        raise ConfigError(f"{where}={rates}: learning rates must be positive and finite, not {bad}")
    if len(set(rates)) != len(rates):
        raise ConfigError(f"{where}={rates}: a rate appears twice")
    return sorted(rates)


def arm_grids(grid: Any, arms: Sequence[str]) -> dict[str, list[float]]:
    """Each arm's rates, declared as {arm: [rates]} for every arm of the sweep."""
    if not isinstance(grid, dict) or not grid:
        raise ConfigError(
            f"hydra.sweeper.grid={grid!r}: declare each arm's learning rates, e.g. "
            "grid: {gd: [0.001, 0.01, 0.1, 1.0], adam: [0.0001, 0.001, 0.01, 0.1]}"
        )
    missing = [a for a in arms if a not in grid]
    extra = sorted(set(grid) - set(arms))
    if missing or extra:
        raise ConfigError(
            f"hydra.sweeper.grid names arms {sorted(grid)}, the sweep's arms are {list(arms)}: "
            "give one list of rates per arm"
        )
    return {a: expand_grid(grid[a], f"hydra.sweeper.grid.{a}") for a in arms}


def check_seeds(tune_seeds: Sequence[int], eval_seeds: Sequence[int]) -> None:
    """Tuning and evaluation seeds: each non-empty, no repeats, and never shared."""
    for name, seeds in (("tune_seeds", tune_seeds), ("eval_seeds", eval_seeds)):
        if not seeds:
            raise ConfigError(f"hydra.sweeper.{name} is empty: give at least one seed")
        if len(set(seeds)) != len(seeds):
            raise ConfigError(f"hydra.sweeper.{name}={list(seeds)}: a seed appears twice")
    shared = sorted(set(tune_seeds) & set(eval_seeds))
    if shared:
        raise ConfigError(
            f"seeds {shared} are both tuning and evaluation seeds (tune_seeds={list(tune_seeds)}, "
            f"eval_seeds={list(eval_seeds)}): a rate chosen on a seed would be scored on it "
            "again; make the two lists disjoint"
        )


def logged_metrics(task: Task) -> list[str]:
    """The final metrics a training run of this task logs (the criterion must be one)."""
    probe = {
        Task.binary: ([0.0, 1.0], [0.2, 0.8]),
        Task.multiclass: ([0, 1], [[0.9, 0.1], [0.1, 0.9]]),
        Task.multilabel: ([[0, 1]], [[0.1, 0.9]]),
        Task.regression: ([0.0, 1.0], [0.0, 1.0]),
    }[task]
    keys = ["loss", *task_metrics(task, np.asarray(probe[0]), np.asarray(probe[1]))]
    return [f"{split}/{k}" for split in ("train", "val") for k in keys]


def check_criterion(criterion: Criterion, task: Task) -> None:
    if criterion.mode not in ("min", "max"):
        raise ConfigError(
            f"hydra.sweeper.criterion.mode={criterion.mode!r}: min (losses) or max (accuracy, R²)"
        )
    known = logged_metrics(task)
    if criterion.metric not in known:
        raise ConfigError(
            f"hydra.sweeper.criterion.metric={criterion.metric!r}: a {task.value} run does not log "
            f"it; choose one of {known}"
        )


def _score(values: Iterable[float | None], mode: str) -> float:
    """The mean to minimise: +inf if any run did not finish or gave a non-finite value."""
    vals = list(values)
    if not vals or any(v is None or not math.isfinite(v) for v in vals):
        return math.inf
    mean = float(np.mean(vals))
    return mean if mode == "min" else -mean


def select(
    results: Sequence[TuneResult], criterion: Criterion = LOSS
) -> tuple[dict[tuple[str, str], Choice], pd.DataFrame]:
    """Each (arm, setting)'s chosen rate, and the table it was chosen from.

    The table has one row per arm, setting and rate: runs, finished, diverged, the mean,
    standard deviation, min and max of the criterion over the finished tuning seeds, and
    whether the rate was chosen.
    """
    rows = []
    groups: dict[tuple[str, str, float], list[TuneResult]] = {}
    for r in results:
        groups.setdefault((r.arm, r.setting, r.lr), []).append(r)
    for (arm, setting, lr), runs in groups.items():
        values = [r.value if r.status in FINISHED else None for r in runs]
        done = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float)
        rows.append(
            {
                "arm": arm,
                "setting": setting,
                "lr": lr,
                "runs": len(runs),
                "finished": int(sum(r.status in FINISHED for r in runs)),
                "diverged": int(sum(r.diverged for r in runs)),
                "mean": float(done.mean()) if len(done) else math.nan,
                "std": float(done.std(ddof=1)) if len(done) > 1 else math.nan,
                "min": float(done.min()) if len(done) else math.nan,
                "max": float(done.max()) if len(done) else math.nan,
                "score": _score(values, criterion.mode),
            }
        )
    table = pd.DataFrame(rows, columns=[
        "arm", "setting", "lr", "runs", "finished", "diverged", "mean", "std", "min", "max", "score"
    ])
    table = table.sort_values(["arm", "setting", "lr"], kind="stable").reset_index(drop=True)
    table["chosen"] = False
    choices: dict[tuple[str, str], Choice] = {}
    for (arm, setting), part in table.groupby(["arm", "setting"], sort=False):
        finite = part[np.isfinite(part["score"])]
        if finite.empty:
            choices[(arm, setting)] = Choice(
                arm, setting, None, math.nan,
                f"no rate of {sorted(part['lr'])} finished on every tuning seed "
                f"({int(part['diverged'].sum())} of {int(part['runs'].sum())} runs diverged): "
                "no evaluation; extend the grid toward smaller rates",
            )
            continue
        # sorted by rate: idxmin returns the first (smallest) rate among equal scores
        best = finite["score"].idxmin()
        table.loc[best, "chosen"] = True
        lr = float(table.loc[best, "lr"])
        tied = finite[finite["score"] == finite.loc[best, "score"]]
        note = f"; tied with {sorted(tied['lr'])[1:]} ({TIE_RULE})" if len(tied) > 1 else ""
        choices[(arm, setting)] = Choice(
            arm, setting, lr, float(table.loc[best, "mean"]),
            f"{criterion.describe()}: {table.loc[best, 'mean']:.4g} at lr={lr:g}{note}",
        )
    return choices, table.drop(columns="score")


def markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table, floats at 4 significant digits."""

    def cell(value: Any) -> str:
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    rows = frame.itertuples(index=False)
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def selection_markdown(table: pd.DataFrame, choices: dict[tuple[str, str], Choice]) -> str:
    """The tuning table as Markdown, chosen rows marked, then one line per choice."""
    shown = table.copy()
    shown["chosen"] = np.where(shown["chosen"], "**chosen**", "")
    lines = [markdown(shown), ""]
    lines += [f"- {c.arm} ({c.setting or 'all'}): {c.reason}" for c in choices.values()]
    return "\n".join(lines) + "\n"
