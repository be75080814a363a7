"""The lesson experiments' sections of the one report, each what its question needs:

- overfitting: per variant and backend, the epoch where validation loss turns up and the
  generalisation gap (mean [95% CI] over seeds); the gap compared conv vs dense;
- data_size: the learning curve (validation accuracy per training fraction, dense vs conv)
  and the smallest fraction reaching 90%; the verdicts compare the models per fraction;
- conv_vs_dense: parameter count and epoch time beside accuracy; epoch time compared
  (a measured time: its section is left out of the deterministic text);
- softmax2_vs_sigmoid: the task is the factor (a 1-unit sigmoid vs a 2-unit softmax on the
  same images), so the standard verdicts compare nothing; the equivalence of their validation
  accuracy and loss, paired by seed, is the answer.

The numbers come from harness.report.lesson, the verdicts from harness.report.verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from harness.report import lesson, stats, verdicts
from harness.report.analysis import stratum_label
from harness.report.design import Design, Factor, backend_name, cell
from harness.report.load import SweepRun
from harness.report.questions import Question, verdict_table
from harness.report.text import Column, Table, est, num
from harness.report.verdicts import Margin

MODEL = "model.conv_filters"  # what model=mlp_relu,conv varies (the dense model has none)
GAP = "generalisation_gap"
TURN_UP = "turn_up_epoch"
EPOCH_TIME = "time/steady_epoch_s"
TARGET = 0.9  # the validation accuracy a learning curve must reach
LOSS_MARGIN = Margin(0.05, relative=True)  # as the report's losses: ±5% of the baseline


def factor(d: Design, prefix: str) -> Factor | None:
    """The factor whose parameter (or label) starts with `prefix`."""
    return next((f for f in d.factors if f.param.startswith(prefix)), None)


def paired_questions(
    runs: list[SweepRun],
    d: Design,
    f: Factor,
    metrics: dict[str, Callable[[SweepRun], float]],
    higher_is_better: dict[str, bool | None],
    margins: dict[str, Margin | None],
) -> list[Question]:
    """Each level of `f` against its first, per other factors' levels and backend, paired by
    seed, on metrics computed from each run; one Holm family (harness.report.verdicts)."""
    i = d.factors.index(f)
    base = f.levels[0]
    questions, family, slots = [], [], []
    for v in d.variants:
        if v[i] == base:
            continue
        ref = v[:i] + (base,) + v[i + 1 :]
        if f is d.compared:
            where = stratum_label(d, v)
        else:
            parts = [f"{g.label}={x}" for g, x in zip(d.factors, v, strict=True) if g is not f]
            where = ", ".join(parts) or "—"
        for b in d.backends:
            mine = {r.seed: r for r in cell(runs, v, b)}
            theirs = {r.seed: r for r in cell(runs, ref, b)}
            for key, value in metrics.items():
                pairs = [(value(mine[s]), value(theirs[s])) for s in sorted(mine.keys() & theirs)]
                pairs = [(a, c) for a, c in pairs if math.isfinite(a) and math.isfinite(c)]
                q = Question(f"{f.label}={v[i]} vs {base}", where, b, key, key, None)
                questions.append(q)
                if not pairs:
                    q.note = "no seed has a finite value in both arms"
                    continue
                family.append(verdicts.Comparison(
                    key, v[i], base, [a for a, _ in pairs], [c for _, c in pairs],
                    higher_is_better=higher_is_better.get(key), margin=margins.get(key),
                ))
                slots.append(q)
    for q, verdict in zip(slots, verdicts.decide(family), strict=True):
        q.verdict = verdict
    return questions


def _table(headers: list[str], rows: list[list[str]]) -> str:
    return Table.of([Column(h, h) for h in headers], rows).markdown()


def history(run: SweepRun) -> pd.DataFrame:
    """A run's per-epoch train and validation loss, as harness.report.lesson reads it."""
    train, val = run.curves.get("train/loss"), run.curves.get("val/loss")
    n = min(len(train), len(val)) if train is not None and val is not None else 0
    return pd.DataFrame(
        {"epoch": range(1, n + 1), "train/loss": train[:n] if n else [],
         "val/loss": val[:n] if n else []}
    )


def turn_up(run: SweepRun) -> float:
    h = history(run)
    e = lesson.turn_up_epoch(h) if len(h) else None
    return math.nan if e is None else float(e)


def gap(run: SweepRun) -> float:
    h = history(run)
    return lesson.generalisation_gap(h) if len(h) else math.nan


def _verdicts(questions: list[Question], what: str) -> list[str]:
    if not questions:
        return []
    return [what, "", verdict_table(questions).markdown(), ""]


def _per_cell(
    runs: list[SweepRun], d: Design, values: dict[str, Callable[[SweepRun], str]]
) -> str:
    rows = []
    for v in d.variants:
        for b in d.backends:
            mine = cell(runs, v, b)
            if mine:
                rows.append([d.label(v), backend_name(b), str(len(mine))]
                            + [fn(mine) for fn in values.values()])
    return _table(["variant", "backend", "seeds", *values], rows)


def _est(fn: Callable[[SweepRun], float]) -> Callable[[list[SweepRun]], str]:
    def text(runs: list[SweepRun]) -> str:
        xs = [fn(r) for r in runs]
        return est(stats.mean_ci([x for x in xs if math.isfinite(x)]))

    return text


def overfitting(runs: list[SweepRun], d: Design) -> tuple[list[str], list[Question]]:
    def turned(rs: list[SweepRun]) -> str:
        return f"{sum(math.isfinite(turn_up(r)) for r in rs)}/{len(rs)}"

    out = [
        "## Overfitting: where validation loss turns up", "",
        "Per run: the turn-up epoch is the epoch of the lowest validation loss when the loss "
        "later rises more than 2% above that low (none: it never does); the generalisation gap "
        "is validation minus training loss at the last epoch. Mean [95% CI] over seeds (the "
        "turn-up epoch over the runs that turn up).", "",
        _per_cell(runs, d, {"turned up": turned, "turn-up epoch": _est(turn_up),
                            "final gap": _est(gap), "lowest val loss": _est(
                                lambda r: float(min(r.curves.get("val/loss", [math.nan]))))}),
        "",
    ]
    f = factor(d, MODEL) or d.compared
    qs = paired_questions(runs, d, f, {GAP: gap}, {GAP: False}, {GAP: LOSS_MARGIN}) if f else []
    return out + _verdicts(qs, "The final gap compared (smaller is better; ±5% margin):"), qs


def data_size(runs: list[SweepRun], d: Design) -> tuple[list[str], list[Question]]:
    frac, model = factor(d, "data.train_fraction"), factor(d, MODEL)
    if frac is None or model is None:
        return [], []
    key = f"val/{runs[0].score}"
    frame = pd.DataFrame([
        {"fraction": float(r.params[frac.param]), "model": r.params[model.param],
         "backend": r.backend, key: r.last(key)}
        for r in runs
    ])
    curve = lesson.learning_curve(frame, "fraction", key, ["backend", "model"])
    fractions = sorted(frame["fraction"].unique())
    rows = []
    for b in d.backends:
        for m in model.levels:
            part = curve[(curve["backend"] == b) & (curve["model"] == m)]
            cells = {float(x): stats.mean_ci(list(frame[(frame["backend"] == b)
                     & (frame["model"] == m) & (frame["fraction"] == x)][key]))
                     for x in part["fraction"]}
            rows.append([backend_name(b), f"{model.label}={m}"]
                        + [est(cells[x], 3) if x in cells else "—" for x in fractions])
    reach = lesson.fraction_to_reach(curve, "fraction", TARGET, ["backend", "model"])
    reach_rows = [[backend_name(r.backend), f"{model.label}={r.model}",
                   "not reached" if math.isnan(r.fraction) else num(r.fraction)]
                  for r in reach.itertuples()]
    return [
        "## Learning curves", "",
        f"Final {key} per training fraction, mean [95% CI] over seeds (the validation split is "
        "the same at every fraction); the verdicts above compare the models at each fraction.",
        "", _table(["backend", "model", *[f"{x:g}" for x in fractions]], rows), "",
        f"Smallest training fraction whose mean {key} reaches {TARGET:g}:", "",
        _table(["backend", "model", "fraction"], reach_rows), "",
    ], []


def conv_vs_dense(runs: list[SweepRun], d: Design) -> tuple[list[str], list[Question]]:
    score = f"val/{runs[0].score}"

    def n_params(rs: list[SweepRun]) -> str:
        return ", ".join(sorted({r.params.get("model.n_params", "?") for r in rs}))

    out = [
        "## Parameters, accuracy and epoch time", "",
        "Parameter count (`model.n_params`), final validation accuracy and the steady epoch "
        "time (median after the first epoch), mean [95% CI] over seeds. Epoch times are "
        "measured: they change from machine to machine.", "",
        _per_cell(runs, d, {"parameters": n_params, score: _est(lambda r: r.last(score)),
                            "steady epoch (s)": _est(lambda r: r.final.get(EPOCH_TIME,
                                                                           math.nan))}),
        "",
    ]
    f = factor(d, MODEL) or d.compared
    qs = paired_questions(
        runs, d, f, {EPOCH_TIME: lambda r: r.final.get(EPOCH_TIME, math.nan)},
        {EPOCH_TIME: False}, {EPOCH_TIME: LOSS_MARGIN},
    ) if f else []
    return out + _verdicts(qs, "Steady epoch time compared (less is faster; ±5% margin):"), qs


def softmax2(runs: list[SweepRun], d: Design) -> tuple[list[str], list[Question]]:
    f = factor(d, "data.task")
    if f is None:
        return [], []
    keys = {"val/accuracy": None, "val/loss": LOSS_MARGIN}
    qs = paired_questions(
        runs, d, f, {k: (lambda r, k=k: r.last(k)) for k in keys},
        dict.fromkeys(keys), {"val/accuracy": Margin(0.01), "val/loss": LOSS_MARGIN},
    )
    return [
        "## The answer: a 2-unit softmax against a sigmoid output", "",
        "The task is the factor (binary: 1 sigmoid unit and binary cross-entropy; multiclass: "
        "2 softmax units and cross-entropy, on the same images and split), so the standard "
        "verdicts cannot compare them; here the two heads are compared paired by seed within "
        "backend. "
        "**equivalent within ±δ** is the lesson's claim (accuracy ±0.01, loss ±5%).", "",
        verdict_table(qs).markdown(), "",
    ], qs


@dataclass(frozen=True)
class Lesson:
    compare: str | None  # the factor the verdicts compare by default
    sections: Callable[[list[SweepRun], Design], tuple[list[str], list[Question]]]


LESSONS = {
    "overfitting": Lesson(None, overfitting),
    "data_size": Lesson(MODEL, data_size),
    "conv_vs_dense": Lesson(None, conv_vs_dense),
    "softmax2_vs_sigmoid": Lesson(None, softmax2),
}
