"""The engines report's own parts (experiment `engines`): Keras 3 on TensorFlow, JAX and
PyTorch, Lightning and the NumPy reference. Each backend's agreement is held against Keras on
TensorFlow (the first backend, as in every report) and, here, also against the NumPy
reference; the section shows both verdicts and the measured times side by side per backend.
"""

from __future__ import annotations

import math

from harness.report import stats
from harness.report.analysis import Agreement, agreement_rows
from harness.report.design import Design, backend_name, cell
from harness.report.load import SweepRun
from harness.report.text import Column, Table
from harness.report.verdicts import Margin

REFERENCE = "numpy"
ENGINES_HEADING = "## Engines side by side"
# backend -> (API, engine that runs it)
ENGINES = {
    "keras": ("Keras 3", "TensorFlow"),
    "keras_jax": ("Keras 3", "JAX"),
    "keras_torch": ("Keras 3", "PyTorch"),
    "lightning": ("Lightning", "PyTorch"),
    "numpy": ("NumPy", "NumPy (reference)"),
}
TIMES = [  # run metric, header
    ("time/steady_epoch_s", "steady epoch (s)"),
    ("time/first_epoch_s", "first epoch (s): build, compile, trace"),
    ("time/total_s", "run wall time (s)"),
]
SHORT = {"train/loss": "train loss", "val/loss": "val loss"}


def is_engines(d: Design) -> bool:
    """Keras ran on more than one engine and the NumPy reference ran too."""
    return sum(b.startswith("keras") for b in d.backends) > 1 and REFERENCE in d.backends


def reference_rows(runs: list[SweepRun], d: Design) -> list[Agreement]:
    """Each backend but the first (already held against it) against the NumPy reference,
    paired by seed; none unless the sweep is an engines sweep."""
    if not is_engines(d):
        return []
    return [
        row
        for v in d.variants
        for b in d.backends[1:]
        if b != REFERENCE
        for row in agreement_rows(
            cell(runs, v, REFERENCE), cell(runs, v, b), v, b, reference=REFERENCE
        )
    ]


def _verdicts(rows: list[Agreement], variant: tuple[str, ...], b: str, against: str) -> str:
    """The verdicts of `b` against `against` ("": the first backend), e.g. `3/3 equivalent`."""
    first_vs_ref = against == REFERENCE and not any(a.backend == b for a in rows)
    # the first backend against the reference is the agreement row `numpy − first`
    want = (REFERENCE, "") if first_vs_ref else (b, against)
    mine = [a for a in rows if a.variant == variant and (a.backend, a.reference) == want]
    if not mine:
        return "—"
    ok = [a for a in mine if a.verdict is not None and a.verdict.label == "equivalent"]
    text = f"{len(ok)}/{len(mine)} equivalent"
    others = [
        f"{SHORT.get(a.key, a.key.replace('/', ' '))}: "
        + (a.verdict.summary if a.verdict is not None else "no verdict")
        for a in mine
        if a not in ok
    ]
    return "; ".join([text, *others])


def engines_table(runs: list[SweepRun], d: Design, rows: list[Agreement]) -> Table:
    """Per variant and backend: API, engine, agreement with Keras (TensorFlow) and with the
    NumPy reference, and the measured times, mean [95% CI] over seeds."""
    b0 = d.backends[0]
    columns = [Column(f"factor:{f.label}", f.label) for f in d.factors] + [
        Column("backend", "backend"),
        Column("api", "API"),
        Column("engine", "engine"),
        Column("vs_first", f"agreement with {backend_name(b0)}"),
        Column("vs_ref", f"agreement with {backend_name(REFERENCE)}"),
        Column("runs", "runs"),
    ]
    columns += [Column(key, head, digits=3, estimate=True) for key, head in TIMES]
    table = []
    for v in d.variants:
        for b in d.backends:
            group = cell(runs, v, b)
            if not group:
                continue
            api, engine = ENGINES.get(b, (b, "?"))
            vs_first = "(itself)" if b == b0 else _verdicts(rows, v, b, "")
            vs_ref = "(itself)" if b == REFERENCE else _verdicts(rows, v, b, REFERENCE)
            times = [
                stats.mean_ci([x for r in group if math.isfinite(x := r.final.get(k, math.nan))])
                for k, _ in TIMES
            ]
            table.append([*(v if d.factors else []), b, api, engine, vs_first, vs_ref, len(group)])
            table[-1] += times
    return Table.of(columns, table)


def _margin(m: Margin) -> str:
    return f"±{m.value:.1%} of the reference" if m.relative else f"±{m.value:g}"


def engines_section(runs: list[SweepRun], d: Design, rows: list[Agreement]) -> list[str]:
    """The engines side by side, from every agreement row with its verdict; nothing unless
    Keras ran on several engines beside NumPy."""
    if not is_engines(d):
        return []
    margins = {  # per metric, as the verdicts state them (of the reference arm's mean)
        a.key.rsplit("/", 1)[-1]: _margin(a.verdict.margin_spec)
        for a in rows
        if a.verdict is not None
    }
    return [
        ENGINES_HEADING,
        "",
        (
            f"Keras 3 on each engine, Lightning and the NumPy reference, on the same initial "
            f"weights and batches. Agreement: the final train loss, val loss and val score of "
            f"each backend against {backend_name(d.backends[0])} and against the NumPy "
            "reference, paired by seed, as equivalence verdicts (TOST, Holm over all the "
            f"agreement rows; margins: {', '.join(f'{k} {m}' for k, m in margins.items())}); "
            "every row is in the "
            "verdict and backend agreement tables. Times: measured on this machine, mean "
            "[95% CI] over seeds; the first epoch includes building the model, compiling and "
            "tracing, the run wall time everything from start to finish."
        ),
        "",
        engines_table(runs, d, rows).markdown(),
        "",
    ]
