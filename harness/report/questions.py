"""The report's verdicts: each comparison's metrics and the backends' agreement as families
for harness.report.verdicts (paired t-test with Holm, bootstrap CI, sign-flip check, TOST
against a margin, seeds needed), and their table, words and tags.

The comparisons of one report form one family (Holm across all of them); the backends'
agreement is a second family, tested for equivalence within tight margins.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from harness.report import verdicts
from harness.report.analysis import (
    Agreement,
    Comparison,
    agreement,
    comparisons,
    stratum_label,
)
from harness.report.design import Design, backend_name
from harness.report.engines import reference_rows
from harness.report.load import ReportError, SweepRun
from harness.report.text import Column, Table, num, pval
from harness.report.verdicts import Margin, Verdict

# Design comparisons: verdicts.DEFAULT_MARGINS (accuracy and R² ±0.01, losses ±5%), and for
# the epochs to reach the threshold ±1 epoch (fewer is better).
EPOCHS = "epochs_to_threshold"
EPOCHS_MARGIN = Margin(1.0)
# Backend agreement: the frameworks train the same model on the same weights and batches,
# so they must agree far more tightly than two designs: ±0.1% of the loss, ±0.001 of the score.
AGREEMENT_MARGINS = {"loss": Margin(0.001, relative=True), "accuracy": Margin(0.001)}
AGREEMENT_MARGINS["r2"] = Margin(0.001)


MARGIN_PARAM = "report.margins."  # a run's param report.margins.<metric> = "0.005" | "5%"


def declared_margins(runs: list[SweepRun]) -> dict[str, Margin]:
    """The margins the experiment's config declares (`report.margins`), by metric segment."""
    out: dict[str, Margin] = {}
    for run in runs:
        for name, text in run.params.items():
            if not name.startswith(MARGIN_PARAM):
                continue
            metric = name[len(MARGIN_PARAM) :]
            relative = text.strip().endswith("%")
            try:
                value = float(text.strip().rstrip("%")) / (100 if relative else 1)
                margin = Margin(value, relative=relative)
            except ValueError:
                raise ReportError(
                    f"{name}={text!r} (run {run.name}): a margin is a number >= 0 (absolute) "
                    "or a percentage of the baseline's mean such as 5%; fix report.margins in "
                    "the experiment's config"
                ) from None
            if out.setdefault(metric, margin) != margin:
                raise ReportError(
                    f"the runs declare different margins for {metric}: {out[metric]} and "
                    f"{margin}; one sweep must use one report.margins"
                )
    return out


def design_margins(runs: list[SweepRun]) -> dict[str, Margin]:
    """Every margin a design comparison uses: the defaults, then what the config declares."""
    defaults = {**verdicts.DEFAULT_MARGINS, EPOCHS: EPOCHS_MARGIN}
    return defaults | declared_margins(runs)


def margins_text(margins: dict[str, Margin]) -> str:
    """`accuracy ±0.01, epochs_to_threshold ±1, loss ±5%, r2 ±0.01`."""
    return ", ".join(f"{k} {margins[k]}" for k in sorted(margins))


@dataclass
class Question:
    """One row of the verdict table: a comparison (or agreement) on one metric."""

    comparison: str  # e.g. `model.hidden_activation=relu vs sigmoid`
    condition: str  # the other factors' levels, `—` if none
    backend: str  # the backend, or `lightning − keras` for agreement
    metric: str  # the run metric, or epochs_to_threshold
    metric_name: str
    verdict: Verdict | None  # None: no paired values (censored), see note
    note: str = ""

    @property
    def tag_key(self) -> str:
        """`verdict/<comparison>/<metric>` as MLflow allows (letters, digits, _-. /:)."""
        where = "" if self.condition == "—" else f" at {self.condition}"
        backend = self.backend.replace(" − ", " vs ")
        comparison = re.sub(r"[^\w.\- :]", "_", f"{self.comparison} {backend}{where}")
        return f"verdict/{comparison}/{self.metric}"


def decide_comparisons(
    comps: list[Comparison], d: Design, margins: dict[str, Margin]
) -> list[Question]:
    """Verdicts for every metric of every comparison; sets each MetricComparison.verdict."""
    f = d.compared
    family, slots = [], []
    questions = []
    for c in comps:
        for m in c.metrics:
            q = Question(
                f"{f.label}={c.level} vs {f.levels[0]}",
                stratum_label(d, c.variant),
                c.backend,
                m.key,
                m.name,
                None,
                m.note,
            )
            questions.append(q)
            if m.result is None or m.result.n < 1:
                continue
            epochs = m.key == EPOCHS
            family.append(
                verdicts.Comparison(
                    m.key,
                    c.level,
                    f.levels[0],
                    m.b_values,
                    m.a_values,
                    higher_is_better=False if epochs else None,
                    margin=margins.get(m.key.rsplit("/", 1)[-1]),
                )
            )
            slots.append((q, m))
    for (q, m), v in zip(slots, verdicts.decide(family), strict=True):
        q.verdict = m.verdict = v
    return questions


def decide_agreement(rows: list[Agreement], d: Design) -> list[Question]:
    """Equivalence of each backend with the first, per variant and final metric."""
    b0 = d.backends[0]
    family = [
        verdicts.Comparison(
            a.key,
            backend_name(a.backend),
            backend_name(a.reference or b0),
            a.b_values,
            a.a_values,
            margin=AGREEMENT_MARGINS.get(a.key.rsplit("/", 1)[-1]),
        )
        for a in rows
    ]
    out = []
    for a, v in zip(rows, verdicts.decide(family), strict=True):
        a.verdict = v
        label = d.label(a.variant) if d.factors else "—"
        against = f"{a.backend} − {a.reference or b0}"
        out.append(Question("backend agreement", label, against, a.key, a.key, v))
    return out


def _effect(v: Verdict) -> str:
    if not math.isfinite(v.ci_low):
        return num(v.effect)
    return f"{num(v.effect)} [{num(v.ci_low)}, {num(v.ci_high)}]"


def verdict_table(questions: list[Question]) -> Table:
    """The verdict table: one row per question and metric; CSV with every number."""

    def md_verdict(row) -> str:
        v = row["verdict"]
        return f"**{v.summary}**" if v is not None else f"not compared: {row['note']}"

    def md(attr: str, fmt=pval):
        def cell(row) -> str:
            v = row["verdict"]
            return fmt(getattr(v, attr)) if v is not None else ""

        return cell

    def csv_value(v: Verdict | None, attr: str):
        if v is None:
            return ""
        value = getattr(v, attr)
        return "" if value is None else value

    attrs = [  # CSV column, Verdict attribute
        ("label", "label"),
        ("summary", "summary"),
        ("effect", "effect"),
        ("ci_low", "ci_low"),
        ("ci_high", "ci_high"),
        ("margin", "margin"),
        ("p_t", "p_t"),
        ("p_holm", "p_adj"),
        ("p_tost_holm", "p_tost_adj"),
        ("p_sign_flip", "p_perm"),
        ("p_sign_flip_holm", "p_perm_adj"),
        ("prob_improvement", "prob_improvement"),
        ("seeds_needed", "seeds_needed"),
        ("n", "n"),
    ]
    columns = [
        Column("comparison", "comparison", "comparison"),
        Column("condition", "condition", "condition"),
        Column("backend", "backend", "backend"),
        Column("metric", "metric", "metric"),
        Column("verdict", "verdict", cell=md_verdict),
        Column(
            "effect_md",
            "effect (other − baseline) [95% bootstrap CI]",
            cell=lambda row: _effect(row["verdict"]) if row["verdict"] is not None else "",
        ),
        Column("p_md", "t-test p", cell=md("p_t")),
        Column("holm_md", "Holm p", cell=md("p_adj")),
        Column("pi_md", "P(other better)", cell=md("prob_improvement", lambda x: num(x, 2))),
        Column("n_md", "pairs", cell=md("n", str)),
        Column("note", None, "note"),
    ]
    columns += [Column(f"csv:{name}", None, name) for name, _ in attrs]
    rows = []
    for q in questions:
        v = q.verdict
        rows.append(
            [q.comparison, q.condition, q.backend, q.metric, v, "", "", "", "", "", q.note]
            + [csv_value(v, attr) for _, attr in attrs]
        )
    return Table.of(columns, rows)


def counts(questions: list[Question]) -> str:
    """`2 better, 1 worse, 3 equivalent, 4 unresolved`, leaving out zeros."""
    labels = [q.verdict.label for q in questions if q.verdict is not None]
    parts = [f"{labels.count(k)} {k}" for k in verdicts.LABELS if labels.count(k)]
    censored = sum(q.verdict is None for q in questions)
    if censored:
        parts.append(f"{censored} not compared (censored)")
    return ", ".join(parts) or "none"


def perm_sentence(questions: list[Question]) -> str | None:
    """Said once: the sign-flip test cannot reach alpha at this many seeds."""
    decided = [q.verdict for q in questions if q.verdict is not None and q.verdict.n >= 2]
    if not decided:
        return None
    m = sum(math.isfinite(v.p_perm) for v in decided)
    return verdicts.perm_note(min(v.n for v in decided), decided[0].alpha, max(1, m))


def verdict_tags(questions: list[Question]) -> tuple[dict[str, str], dict[str, float]]:
    """Tags `verdict/<comparison>/<metric>` = the verdict; its effect, CI and Holm p as metrics."""
    tags, metrics = {}, {}
    for q in questions:
        v = q.verdict
        if v is None:
            tags[q.tag_key] = f"not compared: {q.note}"
            continue
        tags[q.tag_key] = v.summary
        for name, value in (
            ("effect", v.effect),
            ("ci_low", v.ci_low),
            ("ci_high", v.ci_high),
            ("p_holm", v.p_adj),
        ):
            if math.isfinite(value):
                metrics[f"{q.tag_key}/{name}"] = float(value)
    return tags, metrics


@dataclass
class Findings:
    """Everything a report concludes, computed once: the comparisons and the agreement of
    the backends, with their verdicts."""

    comparisons: list[Comparison]
    agreement: list[Agreement]
    margins: dict[str, Margin]  # of the design comparisons
    questions: list[Question]  # the compared factor's levels against its baseline
    agreement_questions: list[Question]

    @property
    def headline(self) -> list[Question]:
        """The verdicts the report opens with: the comparisons, else (only the backend was
        swept) the agreement."""
        return self.questions or self.agreement_questions

    @property
    def all(self) -> list[Question]:
        return self.questions + self.agreement_questions


def analyse(runs: list[SweepRun], d: Design) -> Findings:
    comps = comparisons(runs, d)
    rows = agreement(runs, d) if len(d.backends) > 1 else []
    rows += reference_rows(runs, d)  # each Keras engine also against NumPy: engines sweeps
    margins = design_margins(runs)
    return Findings(
        comps, rows, margins, decide_comparisons(comps, d, margins), decide_agreement(rows, d)
    )
