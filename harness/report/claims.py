"""`python -m harness.report --claims`: results/CLAIMS.md, the ledger of the course's claims.

Each claim is answered from the data the committed reports ship (results/<experiment>/
runs.csv and sweep.json), with the same verdicts as the reports: one row per claim with the
verdict harness measured, the conditions it holds under and a link to the report's verdicts.
Claims no experiment tests yet are listed with what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.report import data
from harness.report.design import design
from harness.report.questions import Question, analyse


@dataclass(frozen=True)
class Claim:
    """A claim of the course and where harness tests it (experiment, comparison, metric)."""

    text: str
    experiment: str = ""
    comparison: str = ""  # a row of the report's verdict table, e.g. `optimizer=adam vs gd`
    metric: str = ""
    measured_as: str = ""  # what the metric stands for, when it only approximates the claim
    missing: str = ""  # why it cannot be tested yet


CLAIMS = [
    Claim(
        "ReLU hidden layers train faster than sigmoid ones",
        "activations",
        "model.hidden_activation=relu vs sigmoid",
        "epochs_to_threshold",
        "epochs to reach a training loss of 0.1, at equal epochs and learning rate",
    ),
    Claim(
        "Gradient descent is slow where the cost is flat (sigmoid saturation)",
        missing="a measure of the flat region (gradient norm or loss change per epoch) and a "
        "start placed in it; the activations experiment shows only the consequence",
    ),
    Claim(
        "Adam reaches a low cost faster than gradient descent",
        "optimizers",
        "optimizer=adam vs gd",
        "epochs_to_threshold",
        "epochs to reach a training loss of 0.1, at equal learning rates",
    ),
    Claim(
        "The `from_logits` form is numerically more accurate than a softmax/sigmoid output",
        "softmax_vs_logits",
        "model.from_logits=True vs False",
        "val/loss",
        "final validation loss; the numerical error itself (numerics/loss_abs_error) is "
        "reported per variant, not yet compared",
    ),
    Claim(
        "Softmax with 2 classes is logistic regression",
        missing="an experiment training a 2-unit softmax and a 1-unit sigmoid output from "
        "matched weights and comparing their predictions",
    ),
    Claim(
        "Vectorised forward propagation is much faster than a loop over neurons",
        missing="a committed report of the vectorization experiment with its data "
        "(python -m harness +experiment=vectorization -m measures it; no report reads it yet)",
    ),
    Claim(
        "More epochs help; too many overfit",
        missing="an epochs (or data size) sweep with held-out curves and an overfitting measure",
    ),
    Claim(
        "A convolutional layer speeds up computation, needs less data and overfits less",
        missing="convolutional layers, a data-size sweep and an overfitting measure are not "
        "built yet",
    ),
]


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _where(q: Question) -> str:
    parts = [q.backend] + ([] if q.condition == "—" else [q.condition])
    return ", ".join(parts)


def _row(claim: Claim, results: Path) -> list[str]:
    if claim.missing:
        return [claim.text, "not testable yet", f"missing: {claim.missing}", "—"]
    folder = results / claim.experiment
    link = f"[{claim.experiment}]({claim.experiment}/report.md#verdicts)"
    if not (folder / data.RUNS_CSV).is_file():
        return [
            claim.text,
            "no data yet",
            f"results/{claim.experiment}/ ships no {data.RUNS_CSV}: regenerate it with "
            f"`python -m harness.report --reproduce {claim.experiment}`",
            link,
        ]
    sweep, _, compare = data.read(folder)
    d = design(sweep, compare)
    rows = [
        q
        for q in analyse(sweep.runs, d).all
        if q.comparison == claim.comparison and q.metric == claim.metric
    ]
    if not rows:
        return [claim.text, "not in the report", f"no `{claim.comparison}` row", link]
    labels = sorted({q.verdict.label if q.verdict else "not compared" for q in rows})
    verdict = labels[0] if len(labels) == 1 else "depends: " + ", ".join(labels)
    epochs = d.fixed.get("train.epochs", "?")
    conditions = f"{claim.measured_as}; {epochs} epochs, {len(d.seeds)} seeds; " + "; ".join(
        f"{_where(q)}: {q.verdict.summary if q.verdict else 'not compared: ' + q.note}"
        for q in rows
    )
    return [claim.text, verdict, conditions, link]


def ledger(results: Path) -> str:
    """CLAIMS.md from the data of the reports under `results`."""
    lines = [
        "# The course's claims, as harness measures them",
        "",
        "Written by `python -m harness.report --claims` from the data the committed reports "
        "ship (`results/<experiment>/runs.csv`); each verdict is the report's own (paired by "
        "seed, Holm over the report's comparisons, equivalence margins stated there). "
        "Conditions: what the metric measures, the budget, then each backend and condition.",
        "",
        "| claim | verdict | conditions | report |",
        "|---|---|---|---|",
    ]
    for claim in CLAIMS:
        lines.append("| " + " | ".join(_escape(c) for c in _row(claim, results)) + " |")
    return "\n".join(lines) + "\n"


def write_claims(results: Path) -> Path:
    path = Path(results) / "CLAIMS.md"
    path.write_text(ledger(Path(results)))
    return path
