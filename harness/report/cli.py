"""`python -m harness.report EXPERIMENT`: turn a sweep into a report that answers its question.

Reads the runs of one sweep from MLflow (the latest sweep of the experiment, or `--parent
RUN_ID`) and writes `results/<experiment>/`: `report.md`, the figures `loss.png` and
`accuracy.png`, `summary.csv` (final metrics, deterministic) and `timing.csv` (measured
times). The same files are attached to the sweep's parent run under `report/`.

What is compared is derived from the sweep (harness.report.load): the factors are the
parameters that vary apart from the seed and the backend; a factor that changes the task is
a condition; the first other factor (or `--compare KEY`) is compared level by level with its
first level, within each condition and backend, paired by seed (harness.report.stats). Figures:
harness.report_figures.

Same store in, same bytes out: the report has no timestamp of its own, stable ordering and
fixed plot settings. Measured times live only in the "Measured times" section and
`timing.csv`; run ids and commits only in "Provenance"; everything else is identical when
the sweep is rerun with the same seeds on the same machine.

`python -m harness.report --reproduce EXP ...` runs each experiment's sweep at its default
budget into the store first (a resumed sweep skips finished jobs), then reports.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report import stats
from harness.report.figures import figure
from harness.report.load import (
    LESSON,
    SCORE_NAME,
    Design,
    Factor,
    Job,
    ReportError,
    Sweep,
    backend_name,
    cell,
    default_uri,
    design,
    known_experiments,
    load,
)

__all__ = ["ReportError", "design", "deterministic_text", "generate", "load", "main", "reproduce"]


METRIC_NAME = {
    "train/loss": "final training loss",
    "val/loss": "final validation loss",
    "val/accuracy": "final validation accuracy",
    "val/r2": "final validation R²",
}
EXTRA = {"val/hamming_accuracy": "val Hamming accuracy", "val/mae": "val MAE"}


@dataclass(frozen=True)
class Threshold:
    """'Epochs to reach': the first epoch at which `key` crosses `value`."""

    key: str
    value: float
    below: bool
    text: str


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


# --- statistics per cell, comparison and backend pair ---------------------------------


def epochs_to(job: Job) -> int | None:
    th = THRESHOLDS.get(job.task, THRESHOLDS["binary"])
    curve = job.curves.get(th.key)
    if curve is None or not len(curve):
        return None
    return stats.first_crossing(curve, th.value, th.below)


@dataclass
class Metric:
    """A row of a comparison: a metric's paired statistics (or why there are none)."""

    name: str
    a: stats.Estimate  # baseline arm over the paired seeds
    b: stats.Estimate  # other arm
    result: stats.Paired | None
    note: str = ""
    reached: tuple[int, int, int] = (0, 0, 0)  # epochs to threshold: runs reaching it (a, b), n
    budget: int = 0  # epochs the runs trained


def _pairs(a: list[Job], b: list[Job]) -> list[tuple[Job, Job]]:
    bs = {j.seed: j for j in b}
    return [(j, bs[j.seed]) for j in a if j.seed in bs]


def compare_metrics(a: list[Job], b: list[Job]) -> list[Metric]:
    """b vs a, paired by seed: final train loss, val loss, val score, epochs to threshold."""
    pairs = _pairs(a, b)
    if not pairs:
        return []
    score = pairs[0][0].score
    out = []
    for key, name in (
        ("train/loss", "final training loss"),
        ("val/loss", "final validation loss"),
        (f"val/{score}", f"final validation {SCORE_NAME[score]}"),
    ):
        xa, xb = [x.last(key) for x, _ in pairs], [y.last(key) for _, y in pairs]
        out.append(Metric(name, stats.mean_ci(xa), stats.mean_ci(xb), stats.paired(xa, xb)))
    th = THRESHOLDS.get(pairs[0][0].task, THRESHOLDS["binary"])
    ea, eb = [epochs_to(x) for x, _ in pairs], [epochs_to(y) for _, y in pairs]
    ra, rb = [e for e in ea if e is not None], [e for e in eb if e is not None]
    budget = max(len(j.curves.get(th.key, ())) for pair in pairs for j in pair)
    name = f"epochs to {th.text}"
    counts = (len(ra), len(rb), len(pairs))
    if len(ra) == len(rb) == len(pairs):
        result, note = stats.paired(ea, eb), ""
    else:  # censored: a run that never gets there has no number of epochs to compare
        result = None
        note = f"reached within {budget} epochs by {len(ra)}/{len(pairs)} baseline and {len(rb)}/{len(pairs)} other runs"
    out.append(Metric(name, stats.mean_ci(ra), stats.mean_ci(rb), result, note, counts, budget))
    return out


# --- formatting -------------------------------------------------------------------------


def num(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


def est(e: stats.Estimate, digits: int = 4) -> str:
    if e.n == 0:
        return "—"
    if e.n < 2 or not math.isfinite(e.lo):
        return num(e.mean, digits)
    return f"{num(e.mean, digits)} [{num(e.lo, digits)}, {num(e.hi, digits)}]"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def pval(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def esc(cell: Any) -> str:
        return str(cell).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(esc(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(headers)
    for row in rows:
        w.writerow([f"{c:.6g}" if isinstance(c, float) else c for c in row])
    return buf.getvalue().encode()


# --- the report ---------------------------------------------------------------------------


def _variant_cells(d: Design, v: tuple[str, ...]) -> list[str]:
    return list(v) if d.factors else []


def _factor_headers(d: Design) -> list[str]:
    return [f.label for f in d.factors]


def _task_threshold_text(jobs: list[Job]) -> str:
    tasks = sorted({j.task for j in jobs})
    return "; ".join(
        f"{t}: first epoch with {THRESHOLDS.get(t, THRESHOLDS['binary']).text}" for t in tasks
    )


def results_rows(
    jobs: list[Job], d: Design
) -> tuple[list[str], list[list[str]], list[str], list[list[Any]]]:
    """The deterministic per-variant table, for report.md and summary.csv."""
    extras = [k for k in EXTRA if any(k in j.curves or k in j.final for j in jobs)]
    mixed = len({j.score for j in jobs}) > 1
    score_head = "final val score" if mixed else f"final val {SCORE_NAME[jobs[0].score]}"
    md_head = _factor_headers(d) + [
        "backend",
        "task",
        "seeds",
        "final train loss",
        "final val loss",
        score_head,
    ]
    md_head += [f"final {EXTRA[k]}" for k in extras] + ["epochs to threshold (reached)"]
    csv_head = _factor_headers(d) + ["backend", "task", "n_seeds"]
    for m in (
        ["train_loss", "val_loss", "val_score"]
        + [k.replace("/", "_") for k in extras]
        + ["epochs_to_threshold"]
    ):
        csv_head += [f"{m}_mean", f"{m}_ci_lo", f"{m}_ci_hi"]
    csv_head += ["val_score_metric", "threshold", "threshold_reached"]
    md_rows, csv_rows = [], []
    for v in d.variants:
        for b in d.backends:
            runs = cell(jobs, v, b)
            if not runs:
                continue
            score = runs[0].score
            ests = [
                stats.mean_ci([j.last(k) for j in runs])
                for k in ("train/loss", "val/loss", f"val/{score}")
            ]
            ests += [stats.mean_ci([j.last(k) for j in runs]) for k in extras]
            reached = [e for e in (epochs_to(j) for j in runs) if e is not None]
            ep = stats.mean_ci(reached)
            th = THRESHOLDS.get(runs[0].task, THRESHOLDS["binary"])
            cells = [est(e) for e in ests]
            if mixed:
                cells[2] = f"{SCORE_NAME[score]} {cells[2]}"
            ep_cell = (
                f"{est(ep, 3)} ({len(reached)}/{len(runs)})"
                if reached
                else f"not reached ({0}/{len(runs)})"
            )
            md_rows.append(
                _variant_cells(d, v) + [b, runs[0].task, str(len(runs))] + cells + [ep_cell]
            )
            row: list[Any] = _variant_cells(d, v) + [b, runs[0].task, len(runs)]
            for e in ests + [ep]:
                row += [e.mean, e.lo, e.hi]
            row += [score, f"{th.key} {'<=' if th.below else '>='} {th.value:g}", len(reached)]
            csv_rows.append(row)
    return md_head, md_rows, csv_head, csv_rows


def timing_rows(
    jobs: list[Job], d: Design
) -> tuple[list[str], list[list[str]], list[str], list[list[Any]]]:
    keys = [
        ("time/steady_epoch_s", "steady epoch (s)", "steady_epoch_s"),
        ("throughput/samples_per_s", "throughput (samples/s)", "samples_per_s"),
        ("time/first_epoch_s", "first epoch (s)", "first_epoch_s"),
        ("time/total_s", "total (s)", "total_s"),
    ]
    md_head = _factor_headers(d) + ["backend", "runs"] + [k[1] for k in keys]
    csv_head = _factor_headers(d) + ["backend", "n_runs"]
    for _, _, c in keys:
        csv_head += [f"{c}_mean", f"{c}_ci_lo", f"{c}_ci_hi"]
    md_rows, csv_rows = [], []
    for v in d.variants:
        for b in d.backends:
            runs = cell(jobs, v, b)
            if not runs:
                continue
            ests = [
                stats.mean_ci(
                    [
                        j.final.get(k, math.nan)
                        for j in runs
                        if math.isfinite(j.final.get(k, math.nan))
                    ]
                )
                for k, _, _ in keys
            ]
            md_rows.append(_variant_cells(d, v) + [b, str(len(runs))] + [est(e, 3) for e in ests])
            row: list[Any] = _variant_cells(d, v) + [b, len(runs)]
            for e in ests:
                row += [e.mean, e.lo, e.hi]
            csv_rows.append(row)
    return md_head, md_rows, csv_head, csv_rows


def _stratum_label(d: Design, v: tuple[str, ...]) -> str:
    parts = [f"{f.label}={x}" for f, x in zip(d.factors, v) if f is not d.compared]
    return ", ".join(parts) or "—"


def comparisons(jobs: list[Job], d: Design) -> list[tuple[tuple[str, ...], str, str, list[Metric]]]:
    """(stratum variant of the baseline, level, backend, metrics) for every comparison."""
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
                metrics = compare_metrics(cell(jobs, v, b), cell(jobs, other, b))
                if metrics:
                    out.append((v, level, b, metrics))
    return out


def _pm(e: stats.Estimate) -> str:
    """mean ± 95% CI half-width (the mean alone with fewer than two values)."""
    if e.n < 2 or not math.isfinite(e.lo):
        return num(e.mean, 3)
    return f"{num(e.mean, 3)} ± {num((e.hi - e.lo) / 2, 2)}"


def _stats_text(r: stats.Paired) -> str:
    if r.n < 2:
        return "1 pair: no interval or test"
    if r.constant and r.diff.mean == 0:
        return f"identical in each of the {r.n} pairs"
    if r.constant:
        return f"difference {num(r.diff.mean)} in each of the {r.n} pairs: no spread, so no test"
    return (
        f"difference {num(r.diff.mean)}, 95% CI [{num(r.diff.lo)}, {num(r.diff.hi)}], "
        f"d_z = {num(r.d_z, 3)}, paired t-test p {_p_phrase(r.p_t)}, Wilcoxon p {_p_phrase(r.p_wilcoxon)}"
    )


def _p_phrase(p: float) -> str:
    s = pval(p)
    return s if s.startswith(("<", "n/a")) else f"= {s}"


def _name(f: Factor, level: str) -> str:
    """A level as a sentence can use it: `relu`, but `model.from_logits=True`, `optimizer.lr=0.1`."""
    plain = level.replace("_", "").isalpha() and level not in ("True", "False", "None")
    return level if plain else f"{f.label}={level}"


def _sentence(level: str, base: str, metrics: list[Metric]) -> str:
    """The comparison in words, e.g. 'relu reaches ... in 23 ± 2 epochs against 71 ± 5 ...'."""
    epochs, loss, _, score = metrics
    what = epochs.name[len("epochs to ") :]
    if epochs.result is not None:
        first = (
            f"{level} reaches {what} in {_pm(epochs.b)} epochs against {_pm(epochs.a)} for "
            f"{base} ({_stats_text(epochs.result)})"
        )
    else:
        ra, rb, n = epochs.reached

        def arm(label: str, k: int, e: stats.Estimate) -> str:
            if k == 0:
                return f"{label} in none of {n} runs within {epochs.budget} epochs"
            return f"{label} in {_pm(e)} epochs ({k} of {n} runs)"

        first = f"{what} is reached by {arm(level, rb, epochs.b)} and by {arm(base, ra, epochs.a)}"
    return (
        f"{first}; final training loss {num(loss.b.mean)} for {level} against "
        f"{num(loss.a.mean)} for {base} ({_stats_text(loss.result)}); {score.name} "
        f"{num(score.b.mean)} against {num(score.a.mean)} ({_stats_text(score.result)})"
    )


def answer_section(jobs: list[Job], d: Design) -> list[str]:
    f = d.compared
    out = ["## Answer", ""]
    if any("parity_verdict" in j.tags for j in jobs):
        out += [parity_sentence(jobs), ""]
    conds = [g for g in d.factors if g.changes_task]
    if f is None:
        if conds:
            many = len(conds) > 1
            out.append(
                f"The swept factor{'s' if many else ''} {', '.join(g.label for g in conds)} "
                f"change{'' if many else 's'} the task (loss and metrics differ), so its levels are "
                "reported side by side (tables and figures below), not tested against each other."
            )
        else:
            out.append(
                "Only the backend is swept: the question is whether the frameworks train the same model alike."
            )
        out += ["", *agreement_sentences(jobs, d), "", "Speed: see Measured times."]
        return out
    comps = comparisons(jobs, d)
    base = f.levels[0]
    out.append(
        f"Each level of **{f.label}** is compared with **{base}** (its first level) within each "
        f"backend{' and condition' if len(d.factors) > 1 else ''}, pairing runs with the same seed "
        "(same initial weights, same batches). Difference = other − baseline; ± is the 95% CI half-width."
    )
    out.append("")
    groups: dict[tuple, list] = {}
    for v, level, b, metrics in comps:
        groups.setdefault((v, level), []).append((b, metrics))
    for (v, level), items in groups.items():
        cond = _stratum_label(d, v)
        where = "" if cond == "—" else f" at {cond}"
        n = items[0][1][0].result.n
        out.append(f"- **{f.label}={level} vs {base}**{where} ({plural(n, 'seed')}):")
        for b, metrics in items:
            order = [metrics[3], metrics[0], metrics[1], metrics[2]]
            out.append(
                f"  - {backend_name(b)}: {_sentence(_name(f, level), _name(f, base), order)}."
            )
    if not comps:
        out.append(
            "No pair of runs shares a seed and backend across the levels: nothing could be paired."
        )
    out += ["", "All comparisons:", ""]
    rows = []
    for v, level, b, metrics in comps:
        for m in metrics:
            r = m.result
            rows.append(
                [
                    f"{f.label}={level} vs {base}",
                    _stratum_label(d, v),
                    b,
                    m.name,
                    est(m.a),
                    est(m.b),
                    est(r.diff) if r else m.note,
                    num(r.d_z, 3) if r else "",
                    pval(r.p_t) if r else "",
                    pval(r.p_wilcoxon) if r else "",
                    str(r.n) if r else "",
                ]
            )
    out.append(
        table(
            [
                "comparison",
                "condition",
                "backend",
                "metric",
                "baseline [95% CI]",
                "other [95% CI]",
                "difference [95% CI]",
                "d_z",
                "t-test p",
                "Wilcoxon p",
                "pairs",
            ],
            rows,
        )
    )
    out += [
        "",
        (
            "Method: n = seeds; the backends are tested separately, never pooled (they share weights "
            "and batches, so their runs are not independent replicates). Intervals are t intervals; "
            "p-values are two-sided, from `scipy.stats.ttest_rel` and `scipy.stats.wilcoxon` (exact; "
            "with 3 pairs the Wilcoxon test cannot go below p = 0.25). d_z = mean difference / SD of "
            "the differences. A difference that is the same in every pair has no spread and no test."
        ),
    ]
    return out


def agreement(
    jobs: list[Job], d: Design
) -> list[tuple[tuple[str, ...], str, str, stats.Paired, float]]:
    """(variant, other backend, metric, paired stats vs the first backend, max |diff|)."""
    out = []
    b0 = d.backends[0]
    for v in d.variants:
        for b in d.backends[1:]:
            pairs = _pairs(cell(jobs, v, b0), cell(jobs, v, b))
            if not pairs:
                continue
            score = pairs[0][0].score
            for key in ("train/loss", "val/loss", f"val/{score}"):
                xa, xb = [x.last(key) for x, _ in pairs], [y.last(key) for _, y in pairs]
                worst = max(abs(p - q) for p, q in zip(xa, xb))
                out.append((v, b, key, stats.paired(xa, xb), worst))
    return out


def agreement_sentences(jobs: list[Job], d: Design) -> list[str]:
    rows = agreement(jobs, d)
    if not rows:
        return ["Only one backend ran: no agreement to check."]
    b0 = d.backends[0]
    score_name = "score" if len({j.score for j in jobs}) > 1 else SCORE_NAME[jobs[0].score]
    out = []
    for b in d.backends[1:]:
        mine = [r for r in rows if r[1] == b]
        n = sum(r[3].n for r in mine if r[2] == "val/loss")
        loss = max((r for r in mine if r[2] == "val/loss"), key=lambda r: r[4])
        score = max((r for r in mine if r[2] not in ("val/loss", "train/loss")), key=lambda r: r[4])

        def where(row: tuple) -> str:
            return f" ({d.label(row[0])})" if d.factors and row[4] > 0 else ""

        out.append(
            f"{backend_name(b)} vs {backend_name(b0)} over {n} paired runs (every variant and "
            f"seed): final validation loss differs by at most {num(loss[4], 3)}{where(loss)}, "
            f"final validation {score_name} by at most {num(score[4], 3)}{where(score)}."
        )
    return out


def agreement_section(jobs: list[Job], d: Design) -> list[str]:
    out = ["## Backend agreement", ""]
    if len(d.backends) < 2:
        return out + ["Only one backend ran."]
    out += agreement_sentences(jobs, d)
    out += [
        "",
        (
            f"Difference = other backend − {backend_name(d.backends[0])}, paired by seed (same initial "
            "weights and batches)."
        ),
        "",
    ]
    rows = [
        [
            *_variant_cells(d, v),
            f"{b} − {d.backends[0]}",
            METRIC_NAME.get(key, key),
            est(r.diff),
            num(worst, 3),
            str(r.n),
        ]
        for v, b, key, r, worst in agreement(jobs, d)
    ]
    out.append(
        table(
            _factor_headers(d)
            + ["backends", "final metric", "mean difference [95% CI]", "max |difference|", "pairs"],
            rows,
        )
    )
    out += parity_section(jobs, d)
    return out


def parity_sentence(jobs: list[Job]) -> str:
    from harness.run.parity import overall_verdict

    tags = [j.tags.get("parity_verdict") for j in jobs]
    checked = sum(t in ("pass", "fail") for t in tags)
    failed = sorted(j.name for j in jobs if j.tags.get("parity_verdict") == "fail")
    return (
        f"**Parity verdict of the sweep: {overall_verdict(tags) or 'none'}** ({plural(checked, 'framework run')} "
        "checked against the NumPy reference; fail if any failed"
        + (f": {', '.join(failed)}" if failed else "")
        + ")."
    )


def parity_section(jobs: list[Job], d: Design) -> list[str]:
    if not any("parity_verdict" in j.tags for j in jobs):
        return []
    rows = []
    for v in d.variants:
        for b in d.backends:
            runs = cell(jobs, v, b)
            verdicts = [j.tags.get("parity_verdict", "none") for j in runs]
            if not runs or set(verdicts) <= {"none"}:
                continue
            counts = ", ".join(
                f"{k} {verdicts.count(k)}/{len(runs)}" for k in sorted(set(verdicts))
            )

            def worst(key: str, per_epoch: str, runs: list[Job] = runs) -> float:
                return max(
                    (j.final.get(key, j.final.get(per_epoch, math.nan)) for j in runs),
                    default=math.nan,
                )

            rows.append(
                [
                    *_variant_cells(d, v),
                    b,
                    counts,
                    num(worst("parity/worst_loss_rel_diff", "parity/loss_max_rel_diff"), 3),
                    num(worst("parity/worst_param_abs_diff", "parity/param_max_abs_diff"), 3),
                    runs[0].tags.get("parity_tolerance", ""),
                ]
            )
    return [
        "",
        "### Parity with the NumPy reference",
        "",
        parity_sentence(jobs),
        "",
        (
            "The verdict of `harness.run.parity` (tag `parity_verdict`): each framework run retrained the "
            "NumPy reference on the same weights and batches; worst differences over all epochs."
        ),
        "",
        table(
            _factor_headers(d)
            + ["backend", "verdict", "worst loss rel. diff", "worst param abs. diff", "tolerance"],
            rows,
        ),
    ]


def numerics_section(jobs: list[Job], d: Design) -> list[str]:
    keys = ["numerics/loss_abs_error", "numerics/clipped_fraction"]
    if not any(k in j.final for j in jobs for k in keys):
        return []
    rows = []
    for v in d.variants:
        for b in d.backends:
            runs = cell(jobs, v, b)
            if runs:
                rows.append(
                    [*_variant_cells(d, v), b]
                    + [
                        est(
                            stats.mean_ci([j.final.get(k, math.nan) for j in runs if k in j.final]),
                            3,
                        )
                        for k in keys
                    ]
                )
    return [
        "## Numerics of the loss",
        "",
        (
            "Final epoch, validation set: |loss the backend computed − exact float64 loss from the same "
            "logits| and the share of probabilities at the clipping bounds (see `harness.run.numerics`)."
        ),
        "",
        table(
            _factor_headers(d)
            + ["backend", "loss abs. error [95% CI]", "clipped fraction [95% CI]"],
            rows,
        ),
        "",
    ]


def timing_section(
    jobs: list[Job], d: Design, md_head: list[str], md_rows: list[list[str]]
) -> list[str]:
    devices = sorted(
        {
            f"{j.backend}: {j.tags.get('device', '?')}, {j.tags.get('threads', '?')} thread(s)"
            for j in jobs
        }
    )
    out = [
        "## Measured times",
        "",
        "Wall-clock measurements of these particular runs ("
        + "; ".join(devices)
        + "). They change "
        "from run to run and machine to machine; nothing else in this report does. Steady epoch = "
        "median epoch time after the first (which includes graph building and warm-up); "
        "throughput = training samples per second over the steady epochs. Mean [95% CI] over seeds.",
        "",
        table(md_head, md_rows),
    ]
    if len(d.backends) > 1:
        b0 = d.backends[0]
        rows = []
        for v in d.variants:
            for b in d.backends[1:]:
                pairs = _pairs(cell(jobs, v, b0), cell(jobs, v, b))
                ta = [x.final.get("time/steady_epoch_s", math.nan) for x, _ in pairs]
                tb = [y.final.get("time/steady_epoch_s", math.nan) for _, y in pairs]
                if pairs and all(math.isfinite(t) and t > 0 for t in ta + tb):
                    rows.append(
                        [
                            *_variant_cells(d, v),
                            f"{b0} / {b}",
                            est(stats.ratio_ci(ta, tb), 3),
                            str(len(pairs)),
                        ]
                    )
        out += [
            "",
            (
                f"Time per epoch ratio {backend_name(b0)} / other (geometric mean over seeds, 95% CI "
                f"from the paired log ratios; < 1 means {backend_name(b0)} is faster):"
            ),
            "",
            table(_factor_headers(d) + ["backends", "steady epoch time ratio", "pairs"], rows),
        ]
    return out


def design_section(sweep: Sweep, d: Design) -> list[str]:
    jobs = sweep.jobs
    rows = []
    for f in d.factors:
        if f is d.compared:
            role = f"compared (baseline {f.levels[0]})"
        elif f.changes_task:
            role = "condition; changes the task, so its levels are not tested against each other"
        else:
            role = "condition (each comparison is made within one level)"
        rows.append([f.label, ", ".join(f.levels), role])
    rows.append(
        [
            "backend",
            ", ".join(d.backends),
            "agreement checked" if len(d.backends) > 1 else "single backend",
        ]
    )
    rows.append(["seed", ", ".join(str(s) for s in d.seeds), "replicates: runs are paired by seed"])
    out = ["## Design", "", table(["factor", "levels", "role"], rows), ""]
    n_var = len(d.variants)
    out.append(
        f"{len(jobs)} runs: {n_var} variant{'s' if n_var != 1 else ''} × {len(d.backends)} "
        f"backend{'s' if len(d.backends) != 1 else ''} × {plural(len(d.seeds), 'seed')} "
        f"({sweep.planned} planned)."
    )
    if d.derived:
        out.append(f"Follow from the factors: {', '.join(f'`{p}`' for p in d.derived)}.")
    if sweep.missing:
        out.append(
            f"**Missing**: {len(sweep.missing)} planned run(s) never FINISHED and are left out: {', '.join(sweep.missing)}."
        )
    fixed = [[f"`{k}`", v] for k, v in d.fixed.items()]
    out += [
        "",
        "<details><summary>Settings held fixed</summary>",
        "",
        table(["parameter", "value"], fixed),
        "",
        "</details>",
        "",
    ]
    return out


def _environment(jobs: list[Job], backends: list[str]) -> str:
    """Versions, device and threads as the runs recorded them, one column per backend."""
    keys = sorted({k for j in jobs for k in j.tags if k.endswith("_version")})
    keys = ["device", "threads", "python_version", "platform"] + [
        k for k in keys if k != "python_version"
    ]
    rows = []
    for k in keys:
        cells = [
            ", ".join(sorted({j.tags[k] for j in jobs if j.backend == b and k in j.tags}))
            for b in backends
        ]
        if any(cells):
            rows.append([k, *[c or "—" for c in cells]])
    return table(["environment", *backends], rows)


def provenance_section(sweep: Sweep, d: Design, report_cmd: str) -> list[str]:
    jobs = sweep.jobs
    commits = sorted({j.tags.get("git_commit", "unknown") for j in jobs})
    sweep_cmd = sweep.tags.get("command", f"python -m harness +experiment={sweep.experiment} -m")
    out = [
        "## Environment and provenance",
        "",
        "Identifies these particular runs: the run ids and commits change when the sweep is rerun.",
        "",
        table(
            ["", ""],
            [
                ["sweep parent run", f"{sweep.parent_name} (`{sweep.parent_id}`, {sweep.status})"],
                ["git commit of the runs", ", ".join(commits)],
                ["reproduce the runs", f"`{sweep_cmd}`"],
                ["reproduce this report", f"`{report_cmd}`"],
                [
                    "both at once",
                    f"`python -m harness.report --reproduce {sweep.experiment}` (default budget and store)",
                ],
                [
                    "config hashes",
                    f"{len({j.config_hash for j in jobs})} distinct (a rerun with the same config skips FINISHED hashes)",
                ],
            ],
        ),
        "",
        _environment(jobs, d.backends),
        "",
        "<details><summary>Runs</summary>",
        "",
        table(
            ["run", "config hash", "run id", "command"],
            [[j.name, j.config_hash, j.run_id, f"`{j.tags.get('command', '')}`"] for j in jobs],
        ),
        "",
        "</details>",
    ]
    return out


def markdown(sweep: Sweep, d: Design, report_cmd: str) -> str:
    jobs = sweep.jobs
    question = next(
        (j.params["question"] for j in jobs if j.params.get("question")), "(no question recorded)"
    )
    md_head, md_rows, _, _ = results_rows(jobs, d)
    t_head, t_rows, _, _ = timing_rows(jobs, d)
    lines = [f"# {sweep.experiment}", "", f"**Question.** {question}", ""]
    if sweep.status != "FINISHED" or sweep.missing:
        lines += [
            f"> The sweep ended {sweep.status}; this report covers its {len(jobs)} FINISHED runs.",
            "",
        ]
    lines += [f"Generated from the MLflow store by `{report_cmd}`.", ""]
    lines += design_section(sweep, d)
    lines += answer_section(jobs, d)
    lines += [
        "",
        "## Curves",
        "",
        (
            "Mean over seeds per variant and backend; the band is the 95% t interval (clipped to the "
            "metric's range). Loss on a log scale."
        ),
        "",
        "![loss curves](loss.png)",
        "",
        "![accuracy curves](accuracy.png)",
        "",
        "## Results per variant",
        "",
        (
            "Mean [95% CI] over seeds at the final epoch (`summary.csv` has the same numbers). Epochs to "
            f"threshold: {_task_threshold_text(jobs)} (mean [95% CI] over the runs that reach it; "
            "reached/runs)."
        ),
        "",
        table(md_head, md_rows),
        "",
    ]
    lines += agreement_section(jobs, d) + [""]
    lines += numerics_section(jobs, d)
    lines += timing_section(jobs, d, t_head, t_rows) + [""]
    lines += provenance_section(sweep, d, report_cmd)
    return "\n".join(lines) + "\n"


VOLATILE_SECTIONS = ("## Measured times", "## Environment and provenance")


def deterministic_text(md: str) -> str:
    """report.md without the sections that hold measurements, run ids and commits: what a
    rerun of the sweep with the same seeds must reproduce exactly."""
    keep, skip = [], False
    for line in md.splitlines():
        if line.startswith("## "):
            skip = line in VOLATILE_SECTIONS
        if not skip:
            keep.append(line)
    return "\n".join(keep) + "\n"


def render(sweep: Sweep, d: Design, report_cmd: str) -> dict[str, bytes]:
    """Every file of the report, in memory: name -> bytes."""
    _, _, s_head, s_rows = results_rows(sweep.jobs, d)
    _, _, t_head, t_rows = timing_rows(sweep.jobs, d)
    return {
        "report.md": markdown(sweep, d, report_cmd).encode(),
        "loss.png": figure(sweep.jobs, d, "loss", sweep.experiment),
        "accuracy.png": figure(sweep.jobs, d, "score", sweep.experiment),
        "summary.csv": csv_bytes(s_head, s_rows),
        "timing.csv": csv_bytes(t_head, t_rows),
    }


def report_command(
    experiment: str, uri: str | None, parent: str | None, compare: str | None
) -> str:
    cmd = ["python -m harness.report", experiment]
    if uri and uri != default_uri():
        cmd.append(f"--tracking-uri {uri}")
    if parent:
        cmd.append(f"--parent {parent}")
    if compare:
        cmd.append(f"--compare {compare}")
    return " ".join(cmd)


def generate(
    experiment: str,
    uri: str | None = None,
    out: Path = Path("results"),
    parent: str | None = None,
    compare: str | None = None,
    attach: bool = True,
) -> Path:
    """Write results/<experiment>/ and attach it to the sweep's parent run; returns the folder."""
    store = uri or default_uri()
    sweep = load(experiment, store, parent)
    d = design(sweep, compare)
    files = render(sweep, d, report_command(experiment, uri, parent, compare))
    folder = Path(out) / experiment
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    if attach:
        from harness.store import attach_dir

        with tempfile.TemporaryDirectory() as tmp:  # exactly these files, not others in folder
            for name, blob in files.items():
                (Path(tmp) / name).write_bytes(blob)
            attach_dir(store, sweep.parent_id, Path(tmp), "report")
    return folder


def reproduce(
    experiments: list[str], uri: str | None, out: Path, compare: str | None = None
) -> list[Path]:
    """Run each experiment's sweep at its default budget (resuming), then report it."""
    unknown = [e for e in experiments if e not in known_experiments()]
    if unknown:
        raise ReportError(
            f"unknown experiment(s) {', '.join(unknown)}; conf/experiment/ has: {', '.join(known_experiments())}"
        )
    folders, problems = [], []
    for name in experiments:
        cmd = [sys.executable, "-m", "harness", f"+experiment={name}"]
        if uri:
            cmd.append(f"tracking.uri={uri}")
        cmd.append("-m")
        print(f"[harness.report] {' '.join(['python', *cmd[1:]])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:  # some jobs failed: report the rest, say so at the end
            problems.append(
                f"the sweep of '{name}' did not finish every job (exit {proc.returncode}); its "
                "report leaves them out. Run the same command again to retry only those jobs"
            )
        try:
            folders.append(generate(name, uri, out, compare=compare))
        except ReportError as exc:
            problems.append(f"{name}: {exc}")
            continue
        print(f"[harness.report] wrote {folders[-1] / 'report.md'}", file=sys.stderr, flush=True)
    if problems:
        raise ReportError("\n".join(problems))
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.report",
        description="Write results/<experiment>/ (report.md, loss.png, accuracy.png, summary.csv, "
        "timing.csv) from an experiment's latest sweep in MLflow, and attach it to the sweep's parent run.",
    )
    parser.add_argument(
        "experiments", nargs="+", metavar="EXPERIMENT", help=f"e.g. {' '.join(LESSON)}"
    )
    parser.add_argument(
        "--parent", help="report this sweep (its parent run id) instead of the latest"
    )
    parser.add_argument(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("results"),
        help="parent folder of the report (default results)",
    )
    parser.add_argument(
        "--compare",
        metavar="KEY",
        help="the factor to compare (default: the first swept factor that keeps the task)",
    )
    parser.add_argument(
        "--no-attach", action="store_true", help="do not attach the report to the parent run"
    )
    parser.add_argument(
        "--reproduce",
        action="store_true",
        help="first run each experiment's sweep at its default budget",
    )
    args = parser.parse_args(argv)
    if args.parent and len(args.experiments) > 1:
        parser.error("--parent names one sweep: give one experiment")
    try:
        if args.reproduce:
            reproduce(args.experiments, args.tracking_uri, args.out, args.compare)
            return 0
        for name in args.experiments:
            folder = generate(
                name, args.tracking_uri, args.out, args.parent, args.compare, not args.no_attach
            )
            print(f"[harness.report] wrote {folder / 'report.md'}", file=sys.stderr)
    except ReportError as exc:
        print(f"harness.report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
