"""What a tuned or a lesson experiment adds to the one report (`python -m harness.report EXP`).

`prepare(sweep, compare)` is the report's analysis step for every sweep: the runs the verdicts
compare, their design and findings, the Markdown that follows the verdicts, the extra files,
and extra verdict rows. For a plain sweep it is exactly the design and findings as before.

- A tuned sweep (its parent is tagged `tuned.criterion.metric`, hydra/sweeper=harness_tuned)
  holds tune and eval runs: the verdicts compare the eval stage only (each arm at its own
  chosen rate, paired by seed within backend); the tuned sections (harness.report.tuned) and
  `sensitivity.png` are added. runs.csv still ships both stages.
- A lesson experiment (overfitting, data_size, conv_vs_dense, softmax2_vs_sigmoid) adds what
  its question needs (harness.report.lesson_report).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pandas as pd

from harness.report.design import Design, design
from harness.report.lesson_report import LESSONS
from harness.report.load import ReportError, Sweep, SweepRun
from harness.report.questions import Findings, Question, analyse

TUNED_TAG = "tuned.criterion.metric"
TUNED_PARAMS = ("stage", "arm")  # set per job by the tuned sweeper: not factors of the eval design


@dataclass
class Prepared:
    """A sweep ready to render: what its verdicts compare and what its report adds."""

    sweep: Sweep  # the runs the verdicts compare (a tuned sweep: its eval stage)
    design: Design
    found: Findings
    extra: list[str] = field(default_factory=list)  # Markdown right after the verdicts
    files: dict[str, bytes] = field(default_factory=dict)  # e.g. sensitivity.png
    questions: list[Question] = field(default_factory=list)  # extra verdict rows

    @property
    def all(self) -> list[Question]:
        return self.found.all + self.questions


def is_tuned(sweep: Sweep) -> bool:
    return TUNED_TAG in sweep.tags


def _stage(r: SweepRun) -> str:
    return r.tags.get("stage") or r.params.get("stage", "")


def eval_sweep(sweep: Sweep) -> Sweep:
    """The eval stage of a tuned sweep, with the per-arm rate and the stage/arm labels left
    out of the parameters: each arm at its own rate is one level of the arm's factor."""
    lr_key = sweep.tags.get("tuned.lr_key", "optimizer.lr")
    drop = {lr_key, *TUNED_PARAMS}
    runs = [
        dataclasses.replace(r, params={k: v for k, v in r.params.items() if k not in drop})
        for r in sweep.runs
        if _stage(r) == "eval"
    ]
    if not runs:
        raise ReportError(
            f"tuned sweep {sweep.parent_name} has no FINISHED eval-stage run: its verdicts "
            "compare the eval stage only; rerun the sweep to resume: "
            + sweep.tags.get("command", f"python -m harness +experiment={sweep.experiment} -m")
        )
    order = [k for k in sweep.key_order if k not in drop]
    return dataclasses.replace(sweep, runs=runs, key_order=order, planned=len(runs))


def tuned_frame(sweep: Sweep) -> pd.DataFrame:
    """The runs of both stages as harness.report.tuned reads them (one row per run)."""
    lr_key = sweep.tags.get("tuned.lr_key", "optimizer.lr")
    rows = []
    for r in sweep.runs:
        rows.append({
            "run_id": r.run_id, "stage": _stage(r),
            "arm": r.tags.get("arm") or r.params.get("arm", ""),
            "lr": float(r.params.get(lr_key, "nan")), "backend": r.backend, "seed": r.seed,
            "status": "FINISHED", "diverged": r.tags.get("diverged") == "true",
            **r.final,
        })
    backends = {r.backend for r in sweep.runs}
    for overrides in sweep.missing_overrides:  # never FINISHED: the worst value of its rate
        o = dict(x.lstrip("+").split("=", 1) for x in overrides if "=" in x)
        if lr_key not in o or "stage" not in o:
            continue
        rows.append({
            "run_id": "", "stage": o["stage"], "arm": o.get("arm", ""), "lr": float(o[lr_key]),
            "backend": o.get("backend") or min(backends), "seed": int(o.get("seed", 0)),
            "status": "FAILED", "diverged": False,
        })
    return pd.DataFrame(rows)


def _tuned(sweep: Sweep, compare: str | None) -> Prepared:
    from harness.report.tuned import FIGURE, sensitivity_figure, tuned_sections
    from harness.sweep.tuning import Criterion

    ev = eval_sweep(sweep)
    d = design(ev, compare)
    frame = tuned_frame(sweep)
    criterion = Criterion(sweep.tags[TUNED_TAG], sweep.tags.get("tuned.criterion.mode", "min"))
    n_tune = int((frame["stage"] == "tune").sum())
    head = [
        "## Each arm at its own best",
        "",
        f"A tuned sweep: the verdicts above compare its eval stage only ({len(ev.runs)} runs): "
        "each arm at the learning rate its tuning seeds chose (per backend), on evaluation "
        f"seeds disjoint from the tuning ones, paired by seed within backend. The {n_tune} "
        "tuning runs only choose the rates (below); `runs.csv` ships both stages.",
        "",
    ]
    if sweep.missing:
        head += [
            f"{len(sweep.missing)} planned run(s) never FINISHED; in the selection below a "
            "tuning run that failed or diverged counts as the worst value of its rate, as the "
            "sweeper counted it.",
            "",
        ]
    text = tuned_sections(frame, criterion, sweep.tags.get("tuned.equal_settings"), FIGURE)
    text = text.replace("## ", "### ")  # nested under "Each arm at its own best"
    return Prepared(
        ev, d, analyse(ev.runs, d), head + [text],
        {FIGURE: sensitivity_figure(frame, None, criterion)},
    )


def prepare(sweep: Sweep, compare: str | None = None) -> Prepared:
    """Design, findings and additions of a sweep's report (see the module docstring)."""
    if is_tuned(sweep):
        return _tuned(sweep, compare)
    lesson = LESSONS.get(sweep.experiment)
    if lesson is None:
        d = design(sweep, compare)
        return Prepared(sweep, d, analyse(sweep.runs, d))
    try:
        d = design(sweep, compare or lesson.compare)
    except ReportError:
        if compare:
            raise
        d = design(sweep)  # the lesson's factor is not swept here: the usual default
    p = Prepared(sweep, d, analyse(sweep.runs, d))
    p.extra, p.questions = lesson.sections(sweep.runs, d)
    return p
