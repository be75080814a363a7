"""`python -m harness.report --claims`: results/CLAIMS.md, the ledger of the course's claims.

Each claim is answered from the data the committed reports ship (results/<experiment>/
runs.csv and sweep.json), with the same verdicts as the reports: one row per claim with the
verdict harness measured, the conditions it holds under and a link to the report's verdicts.
Claims no experiment tests yet are listed with what is missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness.report import data
from harness.report.extras import prepare
from harness.report.lesson_report import EPOCH_TIME, GAP, MODEL, turn_up
from harness.report.load import Sweep
from harness.report.questions import Question


@dataclass(frozen=True)
class Claim:
    """A claim of the course and where harness tests it (experiment, comparison, metric)."""

    text: str
    experiment: str = ""
    # the start of a row of the report's verdict table, e.g. `optimizer=adam vs gd`
    comparison: str = ""
    metric: str = ""
    measured_as: str = ""  # what the metric stands for, when it only approximates the claim
    missing: str = ""  # why it cannot be tested yet
    turn_up: bool = False  # read the runs' turn-up epochs, not a verdict row
    # the metric that decides when no run pair of `metric` can be compared (e.g. epochs to a
    # threshold that the baseline never reaches within the budget: censored)
    fallback: str = ""
    fallback_as: str = ""


CLAIMS = [
    Claim(
        "ReLU hidden layers train faster than sigmoid ones",
        "activations",
        "model.hidden_activation=relu vs sigmoid",
        "epochs_to_threshold",
        "epochs to reach a training loss of 0.1, at equal epochs and learning rate",
        fallback="train/loss",
        fallback_as="final training loss at equal epochs",
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
        fallback="train/loss",
        fallback_as="final training loss at equal epochs",
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
        "Adam reaches a lower cost than gradient descent, each at its own best learning rate",
        "optimizers_tuned",
        "optimizer=adam vs gd",
        "val/loss",
        "final validation loss on the evaluation seeds, each optimizer at the rate (per "
        "backend) with the lowest mean final val/loss over disjoint tuning seeds on a log grid",
    ),
    Claim(
        "ReLU hidden layers beat sigmoid ones, each at its own best learning rate",
        "activations_tuned",
        "model.hidden_activation=relu vs sigmoid",
        "val/loss",
        "final validation loss on the evaluation seeds, each activation at the Adam rate (per "
        "backend) with the lowest mean final val/loss over disjoint tuning seeds on a log grid",
    ),
    Claim(
        "Softmax with 2 classes is logistic regression",
        "softmax2_vs_sigmoid",
        "data.task=multiclass vs binary",
        "val/accuracy",
        "final validation accuracy of a 2-unit softmax against a 1-unit sigmoid head on the same "
        "images and split, equivalent within ±0.01",
    ),
    Claim(
        "Vectorised forward propagation is much faster than a loop over neurons",
        missing="a committed report of the vectorization experiment with its data "
        "(python -m harness +experiment=vectorization -m measures it; no report reads it yet)",
    ),
    Claim(
        "More epochs help; too many overfit",
        "overfitting",
        turn_up=True,
        measured_as="the epoch where validation loss turns up (its low, then a rise of more "
        "than 2%) on 10% of the digits",
    ),
    Claim(
        "A convolutional layer needs less data",
        "data_size",
        f"{MODEL}=",
        "val/accuracy",
        "final validation accuracy conv vs dense at each training fraction",
    ),
    Claim(
        "A convolutional layer overfits less",
        "overfitting",
        f"{MODEL}=",
        GAP,
        "final validation minus training loss, conv vs dense, on 10% of the digits",
    ),
    Claim(
        "A convolutional layer speeds up computation",
        "conv_vs_dense",
        f"{MODEL}=",
        EPOCH_TIME,
        "steady epoch time (measured, machine-dependent), conv vs dense at matched parameter "
        "counts",
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
            f"no data yet: run `python -m harness.report --reproduce {claim.experiment}` "
            f"(results/{claim.experiment}/ ships no {data.RUNS_CSV})",
            link,
        ]
    sweep, _, compare = data.read(folder)
    if claim.turn_up:
        return [claim.text, *_turn_up(sweep, claim), link]
    p = prepare(sweep, compare)
    d = p.design
    rows = [
        q
        for q in p.all
        if q.comparison.startswith(claim.comparison) and q.metric == claim.metric
    ]
    if not rows:
        return [claim.text, "not in the report", f"no `{claim.comparison}` row", link]
    measured_as = claim.measured_as
    if claim.fallback and not any(q.verdict for q in rows):
        censored = "; ".join(f"{_where(q)}: {q.note}" for q in rows)
        rows = [
            q
            for q in p.all
            if q.comparison.startswith(claim.comparison) and q.metric == claim.fallback
        ]
        measured_as = (
            f"{claim.fallback_as} ({claim.measured_as}: not compared, censored: {censored})"
        )
    labels = sorted({q.verdict.label if q.verdict else "not compared" for q in rows})
    verdict = labels[0] if len(labels) == 1 else "depends: " + ", ".join(labels)
    epochs = d.fixed.get("train.epochs", "?")
    conditions = f"{measured_as}; {epochs} epochs, {len(d.seeds)} seeds; " + "; ".join(
        f"{_where(q)}: {q.verdict.summary if q.verdict else 'not compared: ' + q.note}"
        for q in rows
    )
    return [claim.text, verdict, conditions, link]


def _turn_up(sweep: Sweep, claim: Claim) -> list[str]:
    """The verdict and conditions of "more epochs help, too many overfit": how many runs'
    validation loss fell to a low and then turned up, and at which epoch."""
    epochs = [turn_up(r) for r in sweep.runs]
    turned = [e for e in epochs if math.isfinite(e)]
    n, budget = len(epochs), sweep.runs[0].params.get("train.epochs", "?")
    if not turned:
        verdict = "not seen"
    else:
        verdict = "holds" if 2 * len(turned) > n else f"depends: {len(turned)}/{n} runs"
    where = (
        f"first epochs lower it, then it turns up at epoch {min(turned):g}-{max(turned):g} "
        f"(mean {sum(turned) / len(turned):.1f})"
        if turned
        else "it never turned up"
    )
    return [verdict, f"{claim.measured_as}; {budget} epochs: {len(turned)}/{n} runs turned up; "
            f"{where}"]


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
