"""The report's answer in words: each comparison as a sentence, the agreement of the
backends, the parity verdict; then the table of every comparison and the method."""

from __future__ import annotations

from harness.report import stats
from harness.report.analysis import Comparison, MetricComparison, stratum_label
from harness.report.design import Design, Factor, backend_name
from harness.report.load import SCORE_NAME, SweepRun
from harness.report.questions import Findings
from harness.report.tables import comparisons_table
from harness.report.text import num, p_phrase, plural, pm


def stats_text(m: MetricComparison) -> str:
    """A paired result in words: difference, CI, effect size, test with its Holm-adjusted p;
    or why there is none."""
    r = m.result
    if r.n < 2:
        return "1 pair: no interval or test"
    if r.constant and r.diff.mean == 0:
        return f"identical in each of the {r.n} pairs"
    if r.constant:
        return f"difference {num(r.diff.mean)} in each of the {r.n} pairs: no spread, so no test"
    return (
        f"difference {num(r.diff.mean)}, 95% CI [{num(r.diff.lo)}, {num(r.diff.hi)}], "
        f"d_z = {num(r.d_z, 3)}, paired t-test p {p_phrase(r.p_t)}"
        + (f", Holm p {p_phrase(m.verdict.p_adj)}" if m.verdict is not None else "")
    )


def level_name(f: Factor, level: str) -> str:
    """A level as a sentence can use it: `relu`, but `model.from_logits=True`."""
    plain = level.replace("_", "").isalpha() and level not in ("True", "False", "None")
    return level if plain else f"{f.label}={level}"


def _epochs_clause(level: str, base: str, epochs: MetricComparison) -> str:
    what = epochs.name[len("epochs to ") :]
    if epochs.result is not None:
        return (
            f"{level} reaches {what} in {pm(epochs.b)} epochs against {pm(epochs.a)} for "
            f"{base} ({stats_text(epochs)})"
        )
    n = epochs.n_pairs

    def arm(label: str, reached: int, e: stats.Estimate) -> str:
        if reached == 0:
            return f"{label} in none of {n} runs within {epochs.budget} epochs"
        return f"{label} in {pm(e)} epochs ({reached} of {n} runs)"

    return (
        f"{what} is reached by {arm(level, epochs.reached_b, epochs.b)} and by "
        f"{arm(base, epochs.reached_a, epochs.a)}"
    )


def sentence(level: str, base: str, c: Comparison) -> str:
    """The comparison in words, e.g. 'relu reaches ... in 23 ± 2 epochs against 71 ± 5 ...'."""
    loss, score = c.train_loss, c.score
    return (
        f"{_epochs_clause(level, base, c.epochs)}; final training loss {num(loss.b.mean)} for "
        f"{level} against {num(loss.a.mean)} for {base} ({stats_text(loss)}); "
        f"{score.name} {num(score.b.mean)} against {num(score.a.mean)} "
        f"({stats_text(score)})"
    )


def agreement_sentences(runs: list[SweepRun], d: Design, found: Findings) -> list[str]:
    rows = found.agreement
    if not rows:
        return ["Only one backend ran: no agreement to check."]
    b0 = d.backends[0]
    score_name = "score" if len({r.score for r in runs}) > 1 else SCORE_NAME[runs[0].score]
    out = []
    for b in d.backends[1:]:
        mine = [a for a in rows if a.backend == b]
        n = sum(a.result.n for a in mine if a.key == "val/loss")
        loss = max((a for a in mine if a.key == "val/loss"), key=lambda a: a.worst)
        score = max(
            (a for a in mine if a.key not in ("val/loss", "train/loss")), key=lambda a: a.worst
        )

        def where(a) -> str:
            return f" ({d.label(a.variant)})" if d.factors and a.worst > 0 else ""

        out.append(
            f"{backend_name(b)} vs {backend_name(b0)} over {n} paired runs (every variant and "
            f"seed): final validation loss differs by at most {num(loss.worst, 3)}{where(loss)}, "
            f"final validation {score_name} by at most {num(score.worst, 3)}{where(score)}."
        )
        same = [a.verdict for a in mine if a.verdict is not None]
        if not same:
            continue
        equivalent = [v for v in same if v.label == "equivalent"]
        margins = "; ".join(
            sorted({f"{v.metric} {v.margin_spec}" for v in same}, key=lambda t: t.split()[0])
        )
        out.append(
            f"Equivalence (TOST at α = {same[0].alpha:g}, Holm over the {len(same)} agreement "
            f"tests; margins {margins}): {backend_name(b)} is equivalent to {backend_name(b0)} "
            f"on {len(equivalent)} of {len(same)} final metrics"
            + (
                "."
                if len(equivalent) == len(same)
                else "; the others: "
                + ", ".join(f"{v.metric} {v.summary}" for v in same if v.label != "equivalent")
                + "."
            )
        )
    return out


def parity_sentence(runs: list[SweepRun]) -> str:
    from harness.run.parity import overall_verdict

    tags = [r.tags.get("parity_verdict") for r in runs]
    checked = sum(t in ("pass", "fail") for t in tags)
    failed = sorted(r.name for r in runs if r.tags.get("parity_verdict") == "fail")
    return (
        f"**Parity verdict of the sweep: {overall_verdict(tags) or 'none'}** "
        f"({plural(checked, 'framework run')} checked against the NumPy reference; fail if any "
        "failed" + (f": {', '.join(failed)}" if failed else "") + ")."
    )


METHOD = (
    "Method: n = seeds; the backends are tested separately, never pooled (they share weights "
    "and batches, so their runs are not independent replicates). Intervals are t intervals; "
    "p-values are two-sided paired t-tests (`scipy.stats.ttest_rel`), Holm-adjusted over every "
    "comparison of this report (`statsmodels`). d_z = mean difference / SD of the differences. "
    "A difference that is the same in every pair has no spread and no test."
)


def answer_section(runs: list[SweepRun], d: Design, found: Findings) -> list[str]:
    f = d.compared
    out = ["## Answer", ""]
    if any("parity_verdict" in r.tags for r in runs):
        out += [parity_sentence(runs), ""]
    conditions = [g for g in d.factors if g.changes_task]
    if f is None:
        if conditions:
            many = len(conditions) > 1
            out.append(
                f"The swept factor{'s' if many else ''} "
                f"{', '.join(g.label for g in conditions)} change{'' if many else 's'} the task "
                "(loss and metrics differ), so its levels are reported side by side (tables "
                "and figures below), not tested against each other."
            )
        else:
            out.append(
                "Only the backend is swept: the question is whether the frameworks train the "
                "same model alike."
            )
        out += ["", *agreement_sentences(runs, d, found), "", "Speed: see Measured times."]
        return out
    comps = found.comparisons
    base = f.levels[0]
    out.append(
        f"Each level of **{f.label}** is compared with **{base}** (its first level) within each "
        f"backend{' and condition' if len(d.factors) > 1 else ''}, pairing runs with the same "
        "seed (same initial weights, same batches). Difference = other − baseline; ± is the "
        "95% CI half-width."
    )
    out.append("")
    groups: dict[tuple[tuple[str, ...], str], list[Comparison]] = {}
    for c in comps:
        groups.setdefault((c.variant, c.level), []).append(c)
    for (variant, level), items in groups.items():
        cond = stratum_label(d, variant)
        where = "" if cond == "—" else f" at {cond}"
        n = items[0].n
        out.append(f"- **{f.label}={level} vs {base}**{where} ({plural(n, 'seed')}):")
        for c in items:
            text = sentence(level_name(f, level), level_name(f, base), c)
            out.append(f"  - {backend_name(c.backend)}: {text}.")
    if not comps:
        out.append(
            "No pair of runs shares a seed and backend across the levels: nothing could be paired."
        )
    out += ["", "All comparisons:", "", comparisons_table(comps, d).markdown(), "", METHOD]
    return out
