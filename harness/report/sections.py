"""The Markdown report: its sections in order (design, answer, curves, results, agreement,
numerics, measured times, provenance), each a list of lines."""

from __future__ import annotations

from harness.report.analysis import threshold
from harness.report.answer import agreement_sentences, answer_section, parity_sentence
from harness.report.design import Design, backend_name
from harness.report.engines import ENGINES_HEADING, engines_section, is_engines
from harness.report.load import Sweep, SweepRun
from harness.report.questions import (
    AGREEMENT_MARGINS,
    Findings,
    counts,
    margins_text,
    perm_sentence,
    verdict_table,
)
from harness.report.tables import (
    NUMERICS,
    agreement_table,
    design_table,
    environment_table,
    numerics_table,
    parity_table,
    results_table,
    runs_table,
    settings_table,
    time_ratio_table,
    timing_table,
)
from harness.report.text import Column, Table, plural


def design_section(sweep: Sweep, d: Design) -> list[str]:
    runs = sweep.runs
    out = ["## Design", "", design_table(d).markdown(), ""]
    n_var = len(d.variants)
    out.append(
        f"{len(runs)} runs: {n_var} variant{'s' if n_var != 1 else ''} × {len(d.backends)} "
        f"backend{'s' if len(d.backends) != 1 else ''} × {plural(len(d.seeds), 'seed')} "
        f"({sweep.planned} planned)."
    )
    if d.derived:
        out.append(f"Follow from the factors: {', '.join(f'`{p}`' for p in d.derived)}.")
    if sweep.missing:
        out.append(
            f"**Missing**: {len(sweep.missing)} planned run(s) never FINISHED and are left out: "
            f"{', '.join(sweep.missing)}."
        )
    out += [
        "",
        "<details><summary>Settings held fixed</summary>",
        "",
        settings_table(d).markdown(),
        "",
        "</details>",
        "",
    ]
    return out


def _threshold_text(runs: list[SweepRun]) -> str:
    tasks = sorted({r.task for r in runs})
    return "; ".join(f"{t}: first epoch with {threshold(t).text}" for t in tasks)


def curves_and_results_section(runs: list[SweepRun], d: Design) -> list[str]:
    return [
        "",
        "## Curves",
        "",
        (
            "Mean over seeds per variant and backend; the band is the 95% t interval (clipped "
            "to the metric's range). Loss on a log scale."
        ),
        "",
        "![loss curves](loss.png)",
        "",
        "![accuracy curves](accuracy.png)",
        "",
        "## Results per variant",
        "",
        (
            "Mean [95% CI] over seeds at the final epoch (`summary.csv` has the same numbers). "
            f"Epochs to threshold: {_threshold_text(runs)} (mean [95% CI] over the runs that "
            "reach it; reached/runs)."
        ),
        "",
        results_table(runs, d).markdown(),
        "",
    ]


def agreement_section(runs: list[SweepRun], d: Design, found: Findings) -> list[str]:
    out = ["## Backend agreement", ""]
    if len(d.backends) < 2:
        return out + ["Only one backend ran."]
    out += agreement_sentences(runs, d, found)
    out += [
        "",
        (
            f"Difference = other backend − {backend_name(d.backends[0])}, paired by seed (same "
            "initial weights and batches)."
        ),
        "",
        agreement_table(found.agreement, d).markdown(),
    ]
    return out + parity_section(runs, d)


def parity_section(runs: list[SweepRun], d: Design) -> list[str]:
    if not any("parity_verdict" in r.tags for r in runs):
        return []
    return [
        "",
        "### Parity with the NumPy reference",
        "",
        parity_sentence(runs),
        "",
        (
            "The verdict of `harness.run.parity` (tag `parity_verdict`): each framework run "
            "retrained the NumPy reference on the same weights and batches; worst differences "
            "over all epochs."
        ),
        "",
        parity_table(runs, d).markdown(),
    ]


def numerics_section(runs: list[SweepRun], d: Design) -> list[str]:
    if not any(k in r.final for r in runs for k in NUMERICS):
        return []
    return [
        "## Numerics of the loss",
        "",
        (
            "Final epoch, validation set: |loss the backend computed − exact float64 loss from "
            "the same logits| and the share of probabilities at the clipping bounds (see "
            "`harness.run.numerics`)."
        ),
        "",
        numerics_table(runs, d).markdown(),
        "",
    ]


def timing_section(runs: list[SweepRun], d: Design) -> list[str]:
    devices = sorted(
        {
            f"{r.backend}: {r.tags.get('device', '?')}, {r.tags.get('threads', '?')} thread(s)"
            for r in runs
        }
    )
    out = [
        "## Measured times",
        "",
        "Wall-clock measurements of these particular runs ("
        + "; ".join(devices)
        + "). They change from run to run and machine to machine; nothing else in this report "
        "does. Steady epoch = median epoch time after the first (which includes graph building "
        "and warm-up); throughput = training samples per second over the steady epochs. Mean "
        "[95% CI] over seeds.",
        "",
        timing_table(runs, d).markdown(),
    ]
    if len(d.backends) > 1:
        b0 = backend_name(d.backends[0])
        out += [
            "",
            (
                f"Time per epoch ratio {b0} / other (geometric mean over seeds, 95% CI from the "
                f"paired log ratios; < 1 means {b0} is faster):"
            ),
            "",
            time_ratio_table(runs, d).markdown(),
        ]
    return out


def provenance_section(sweep: Sweep, d: Design, report_cmd: str) -> list[str]:
    runs = sweep.runs
    commits = sorted({r.tags.get("git_commit", "unknown") for r in runs})
    sweep_cmd = sweep.tags.get("command", f"python -m harness +experiment={sweep.experiment} -m")
    hashes = len({r.config_hash for r in runs})
    facts = Table.of(
        [Column("what", ""), Column("value", "")],
        [
            ["sweep parent run", f"{sweep.parent_name} (`{sweep.parent_id}`, {sweep.status})"],
            ["git commit of the runs", ", ".join(commits)],
            ["reproduce the runs", f"`{sweep_cmd}`"],
            ["reproduce this report", f"`{report_cmd}`"],
            [
                "both at once",
                f"`python -m harness.report --reproduce {sweep.experiment}` (default budget and "
                "store)",
            ],
            [
                "config hashes",
                f"{hashes} distinct (a rerun with the same config skips FINISHED hashes)",
            ],
        ],
    )
    return [
        "## Environment and provenance",
        "",
        "Identifies these particular runs: the run ids and commits change when the sweep is rerun.",
        "",
        facts.markdown(),
        "",
        environment_table(runs, d.backends).markdown(),
        "",
        "<details><summary>Runs</summary>",
        "",
        runs_table(runs).markdown(),
        "",
        "</details>",
    ]


def verdict_section(d: Design, found: Findings) -> list[str]:
    """The answer first: one verdict per question and metric, then how they were reached."""
    questions = found.headline
    out = ["## Verdicts", ""]
    if not questions:
        return out + ["Nothing is compared: the swept factors change the task.", ""]
    what = (
        f"each level of **{d.compared.label}** against **{d.compared.levels[0]}**"
        if found.questions
        else "each backend against " + backend_name(d.backends[0])
        + (" and against NumPy" if is_engines(d) else "")
    )
    alpha = next(q.verdict.alpha for q in questions if q.verdict is not None)
    margins = margins_text(found.margins)
    out += [
        f"{what[0].upper()}{what[1:]}, paired by seed, per metric: {counts(questions)}.",
        "",
        verdict_table(questions).markdown(),
        "",
        (
            f"**better** / **worse**: the paired t-test's p, Holm-adjusted over the "
            f"{len(questions)} rows, is below α = {alpha:g} and the bootstrap interval of the "
            "effect excludes 0 (better or worse in the metric's direction: lower loss and "
            "fewer epochs are better). **equivalent within ±δ**: otherwise, the two one-sided "
            f"tests (TOST, Holm) place the effect inside ±δ; margins: {margins} (relative ones "
            "of the baseline's mean; set by `report.margins` in the experiment's config), "
            f"backend agreement {margins_text(AGREEMENT_MARGINS)}. "
            "**unresolved**: neither; the seeds a paired t-test needs for 80% power at the "
            "observed effect size are stated. P(other better): the share of seeds where the "
            "other arm is better."
        ),
    ]
    note = perm_sentence(questions)
    if note:
        out += ["", note]
    return out + [""]


def markdown(
    sweep: Sweep, d: Design, report_cmd: str, found: Findings, extra: list[str] | None = None
) -> str:
    """report.md; `extra` (a tuned or lesson experiment's sections) follows the verdicts."""
    runs = sweep.runs
    question = next(
        (r.params["question"] for r in runs if r.params.get("question")),
        "(no question recorded)",
    )
    lines = [f"# {sweep.experiment}", "", f"**Question.** {question}", ""]
    if sweep.status != "FINISHED" or sweep.missing:
        lines += [
            f"> The sweep ended {sweep.status}; this report covers its {len(runs)} FINISHED runs.",
            "",
        ]
    lines += [
        f"Generated by `{report_cmd}` from the MLflow store; the data beside it (`runs.csv`, "
        f"`sweep.json`) regenerates it without the store: `python -m harness.report --from-data "
        "FOLDER`.",
        "",
    ]
    lines += verdict_section(d, found)
    lines += extra or []
    lines += engines_section(runs, d, found.agreement)
    lines += design_section(sweep, d)
    lines += answer_section(runs, d, found)
    lines += curves_and_results_section(runs, d)
    lines += agreement_section(runs, d, found) + [""]
    lines += numerics_section(runs, d)
    lines += timing_section(runs, d) + [""]
    lines += provenance_section(sweep, d, report_cmd)
    return "\n".join(lines) + "\n"


VOLATILE_SECTIONS = (
    "## Measured times",
    ENGINES_HEADING,
    "## Environment and provenance",
    "## Parameters, accuracy and epoch time",  # conv_vs_dense (harness.report.lesson_report)
)


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
