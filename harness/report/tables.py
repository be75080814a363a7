"""The report's tables, each one `text.Table` (a DataFrame and how its columns read):
results per variant (also summary.csv), measured times (also timing.csv), time ratios,
comparisons, backend agreement, parity, numerics, design, settings, environment and runs.
"""

from __future__ import annotations

import math
from typing import Any

from harness.report import stats
from harness.report.analysis import (
    Agreement,
    Comparison,
    epochs_to,
    pairs,
    stratum_label,
    threshold,
)
from harness.report.design import Design, cell
from harness.report.load import SCORE_NAME, SweepRun
from harness.report.text import Column, Row, Table, est, num, pval

METRIC_NAME = {
    "train/loss": "final training loss",
    "val/loss": "final validation loss",
    "val/accuracy": "final validation accuracy",
    "val/r2": "final validation R²",
}
EXTRA = {"val/hamming_accuracy": "val Hamming accuracy", "val/mae": "val MAE"}
TIMES = [  # run metric, Markdown header, CSV name
    ("time/steady_epoch_s", "steady epoch (s)", "steady_epoch_s"),
    ("throughput/samples_per_s", "throughput (samples/s)", "samples_per_s"),
    ("time/first_epoch_s", "first epoch (s)", "first_epoch_s"),
    ("time/total_s", "total (s)", "total_s"),
]


def factor_columns(d: Design) -> list[Column]:
    return [Column(f"factor:{f.label}", f.label, f.label) for f in d.factors]


def variant_cells(d: Design, variant: tuple[str, ...]) -> list[str]:
    return list(variant) if d.factors else []


def _values(runs: list[SweepRun], key: str) -> list[float]:
    return [r.last(key) for r in runs]


def results_table(runs: list[SweepRun], d: Design) -> Table:
    """Per variant and backend: final metrics and epochs to threshold, mean [95% CI]."""
    extras = [k for k in EXTRA if any(k in r.curves or k in r.final for r in runs)]
    mixed = len({r.score for r in runs}) > 1
    score_head = "final val score" if mixed else f"final val {SCORE_NAME[runs[0].score]}"

    def score_cell(row: Row) -> str:
        text = est(row["val_score"])
        return f"{SCORE_NAME[row['score_metric']]} {text}" if mixed else text

    def epochs_cell(row: Row) -> str:
        if not row["reached"]:
            return f"not reached (0/{row['seeds']})"
        return f"{est(row['epochs'], 3)} ({row['reached']}/{row['seeds']})"

    columns = factor_columns(d) + [
        Column("backend", "backend", "backend"),
        Column("task", "task", "task"),
        Column("seeds", "seeds", "n_seeds"),
        Column("train_loss", "final train loss", "train_loss", estimate=True),
        Column("val_loss", "final val loss", "val_loss", estimate=True),
        Column("val_score", score_head, "val_score", cell=score_cell, estimate=True),
    ]
    columns += [Column(k, f"final {EXTRA[k]}", k.replace("/", "_"), estimate=True) for k in extras]
    columns += [
        Column(
            "epochs",
            "epochs to threshold (reached)",
            "epochs_to_threshold",
            cell=epochs_cell,
            estimate=True,
        ),
        Column("score_metric", None, "val_score_metric"),
        Column("threshold", None, "threshold"),
        Column("reached", None, "threshold_reached"),
    ]
    rows = []
    for v in d.variants:
        for b in d.backends:
            group = cell(runs, v, b)
            if not group:
                continue
            score = group[0].score
            finals = [
                stats.mean_ci(_values(group, k)) for k in ("train/loss", "val/loss", f"val/{score}")
            ]
            finals += [stats.mean_ci(_values(group, k)) for k in extras]
            reached = [e for e in (epochs_to(r) for r in group) if e is not None]
            rows.append(
                variant_cells(d, v)
                + [b, group[0].task, len(group), *finals, stats.mean_ci(reached)]
                + [score, threshold(group[0].task).rule, len(reached)]
            )
    return Table.of(columns, rows)


def _measured(runs: list[SweepRun], key: str) -> stats.Estimate:
    return stats.mean_ci(
        [r.final.get(key, math.nan) for r in runs if math.isfinite(r.final.get(key, math.nan))]
    )


def timing_table(runs: list[SweepRun], d: Design) -> Table:
    """Per variant and backend: measured times, mean [95% CI] over seeds."""
    columns = factor_columns(d) + [
        Column("backend", "backend", "backend"),
        Column("runs", "runs", "n_runs"),
    ]
    columns += [Column(key, head, name, digits=3, estimate=True) for key, head, name in TIMES]
    rows = []
    for v in d.variants:
        for b in d.backends:
            group = cell(runs, v, b)
            if group:
                rows.append(
                    variant_cells(d, v)
                    + [b, len(group)]
                    + [_measured(group, key) for key, _, _ in TIMES]
                )
    return Table.of(columns, rows)


def time_ratio_table(runs: list[SweepRun], d: Design) -> Table:
    """Steady epoch time of the first backend over each other's, paired by seed."""
    b0 = d.backends[0]
    rows = []
    for v in d.variants:
        for b in d.backends[1:]:
            paired_runs = pairs(cell(runs, v, b0), cell(runs, v, b))
            ta = [x.final.get("time/steady_epoch_s", math.nan) for x, _ in paired_runs]
            tb = [y.final.get("time/steady_epoch_s", math.nan) for _, y in paired_runs]
            if paired_runs and all(math.isfinite(t) and t > 0 for t in ta + tb):
                rows.append(
                    [*variant_cells(d, v), f"{b0} / {b}", stats.ratio_ci(ta, tb), len(paired_runs)]
                )
    return Table.of(
        factor_columns(d)
        + [
            Column("backends", "backends"),
            Column("ratio", "steady epoch time ratio", digits=3, estimate=True),
            Column("pairs", "pairs"),
        ],
        rows,
    )


def comparisons_table(comps: list[Comparison], d: Design) -> Table:
    """Every metric of every comparison: both arms, the difference and its tests."""
    f = d.compared
    rows: list[list[Any]] = []
    for c in comps:
        for m in c.metrics:
            r = m.result
            rows.append(
                [
                    f"{f.label}={c.level} vs {f.levels[0]}",
                    stratum_label(d, c.variant),
                    c.backend,
                    m.name,
                    est(m.a),
                    est(m.b),
                    est(r.diff) if r else m.note,
                    num(r.d_z, 3) if r else "",
                    pval(r.p_t) if r else "",
                    pval(m.verdict.p_adj) if m.verdict is not None else "",
                    str(r.n) if r else "",
                ]
            )
    headers = [
        "comparison",
        "condition",
        "backend",
        "metric",
        "baseline [95% CI]",
        "other [95% CI]",
        "difference [95% CI]",
        "d_z",
        "t-test p",
        "Holm p",
        "pairs",
    ]
    return Table.of([Column(h, h) for h in headers], rows)


def agreement_table(rows: list[Agreement], d: Design) -> Table:
    b0 = d.backends[0]
    return Table.of(
        factor_columns(d)
        + [
            Column("backends", "backends"),
            Column("metric", "final metric"),
            Column("difference", "mean difference [95% CI]"),
            Column("worst", "max |difference|"),
            Column("verdict", "verdict"),
            Column("tost", "TOST p (Holm)"),
            Column("pairs", "pairs"),
        ],
        [
            [
                *variant_cells(d, a.variant),
                f"{a.backend} − {a.reference or b0}",
                METRIC_NAME.get(a.key, a.key),
                est(a.result.diff),
                num(a.worst, 3),
                a.verdict.summary if a.verdict is not None else "",
                pval(a.verdict.p_tost_adj) if a.verdict is not None else "",
                str(a.result.n),
            ]
            for a in rows
        ],
    )


def parity_table(runs: list[SweepRun], d: Design) -> Table:
    """Per variant and backend: parity verdicts and worst differences to the reference."""

    def worst(group: list[SweepRun], key: str, per_epoch: str) -> float:
        return max(
            (r.final.get(key, r.final.get(per_epoch, math.nan)) for r in group),
            default=math.nan,
        )

    rows = []
    for v in d.variants:
        for b in d.backends:
            group = cell(runs, v, b)
            verdicts = [r.tags.get("parity_verdict", "none") for r in group]
            if not group or set(verdicts) <= {"none"}:
                continue
            counts = ", ".join(
                f"{k} {verdicts.count(k)}/{len(group)}" for k in sorted(set(verdicts))
            )
            rows.append(
                [
                    *variant_cells(d, v),
                    b,
                    counts,
                    num(worst(group, "parity/worst_loss_rel_diff", "parity/loss_max_rel_diff"), 3),
                    num(
                        worst(group, "parity/worst_param_abs_diff", "parity/param_max_abs_diff"), 3
                    ),
                    group[0].tags.get("parity_tolerance", ""),
                ]
            )
    headers = ["backend", "verdict", "worst loss rel. diff", "worst param abs. diff", "tolerance"]
    return Table.of(factor_columns(d) + [Column(h, h) for h in headers], rows)


NUMERICS = ["numerics/loss_abs_error", "numerics/clipped_fraction"]


def numerics_table(runs: list[SweepRun], d: Design) -> Table:
    rows = []
    for v in d.variants:
        for b in d.backends:
            group = cell(runs, v, b)
            if group:
                rows.append(
                    [*variant_cells(d, v), b]
                    + [
                        stats.mean_ci([r.final.get(k, math.nan) for r in group if k in r.final])
                        for k in NUMERICS
                    ]
                )
    return Table.of(
        factor_columns(d)
        + [
            Column("backend", "backend"),
            Column(NUMERICS[0], "loss abs. error [95% CI]", digits=3, estimate=True),
            Column(NUMERICS[1], "clipped fraction [95% CI]", digits=3, estimate=True),
        ],
        rows,
    )


def design_table(d: Design) -> Table:
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
    return Table.of([Column(h, h) for h in ("factor", "levels", "role")], rows)


def settings_table(d: Design) -> Table:
    return Table.of(
        [Column("parameter", "parameter"), Column("value", "value")],
        [[f"`{k}`", v] for k, v in d.fixed.items()],
    )


def environment_table(runs: list[SweepRun], backends: list[str]) -> Table:
    """Versions, device and threads as the runs recorded them, one column per backend."""
    keys = sorted({k for r in runs for k in r.tags if k.endswith("_version")})
    keys = ["device", "threads", "python_version", "platform"] + [
        k for k in keys if k != "python_version"
    ]
    rows = []
    for k in keys:
        cells = [
            ", ".join(sorted({r.tags[k] for r in runs if r.backend == b and k in r.tags}))
            for b in backends
        ]
        if any(cells):
            rows.append([k, *[c or "—" for c in cells]])
    return Table.of(
        [Column("environment", "environment")] + [Column(f"backend:{b}", b) for b in backends],
        rows,
    )


def runs_table(runs: list[SweepRun]) -> Table:
    return Table.of(
        [Column(h, h) for h in ("run", "config hash", "run id", "command")],
        [[r.name, r.config_hash, r.run_id, f"`{r.tags.get('command', '')}`"] for r in runs],
    )
