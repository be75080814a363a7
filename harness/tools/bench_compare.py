"""Two benchmark tables compared (`python -m harness.bench --compare OLD.json`), honestly on a
noisy machine: by ranges over repeats, not by one median against another.

Epoch ratios. Within a group every variant's repeat i ran side by side in one process
(harness.tools.bench.measure_group interleaves them), so repeat i of the numerator over
repeat i of the denominator is a paired ratio: a ratio's range is (min, max) of its paired
per-repeat ratios, its median their median (FASTEST: the baseline fastest by median, then its
repeat i; minus_one taken off each); the Ratios table's figure (a ratio of medians) can
differ from that median but lies in that range. A ratio between two groups (a target's
denominator_framework) was measured in two processes, so nothing pairs its repeats: its
values are every numerator repeat over every denominator repeat, the range
(min num / max den, max num / min den), wider, and the table marks it "unpaired".

A ratio got worse only when its new range lies wholly on the bad side of its old range (no
overlap); better when wholly on the good side; otherwise the same within noise. The bad side
is the target's operator's: "<=" lower is better, ">=" higher is better; ratios that are only
reported (or a floor) have no direction and are not judged. Values without repeats (tracking,
sweeps, or a ratio whose rows hold one repeat) are single values: worse only when worse than
the old value by more than TOLERANCE of it (and ABS_TOLERANCE), else within noise.
"""

from __future__ import annotations

import itertools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from harness.tools.bench_targets import (
    Target,
    direction,
    epoch_series,
    epoch_targets,
    ratios,
)

TOLERANCE = 0.25  # single values: relative change of the old value taken as noise
ABS_TOLERANCE = 0.01  # ... and at least this much (shares near zero move by more than 25%)

WORSE, BETTER, SAME, NOT_JUDGED = "worse", "better", "same within noise", "not judged"


@dataclass(frozen=True)
class Measure:
    """A ratio as two tables are compared: its median and range (lo == hi: a single value)."""

    claim: str
    target: str
    median: float
    lo: float
    hi: float
    pairing: str  # "paired", "unpaired", or "single" (no repeats: the tolerance rule)


def _epoch_measure(rows: list[dict], t: Target, batch: str) -> Measure:
    _, num = epoch_series(rows, t.framework, t.numerator, batch)
    _, den = epoch_series(rows, t.denominator_framework or t.framework, t.denominator, batch)
    paired = not t.denominator_framework and len(num) == len(den)
    if paired:
        values = [n / d for n, d in zip(num, den, strict=True)]
    else:
        values = [n / d for n, d in itertools.product(num, den)]
    values = [v - t.minus_one for v in values]
    kind = "single" if len(num) < 2 or len(den) < 2 else "paired" if paired else "unpaired"
    return Measure(f"{t.claim} (batch {batch})", t.target, statistics.median(values),
                   min(values), max(values), kind)


def measures(rows: list[dict]) -> list[Measure]:
    """Every ratio of the table (bench_targets.ratios' claims), epoch ratios with their
    ranges over repeats, the others (tracking, sweeps) as single values."""
    out = [_epoch_measure(rows, t, batch) for t, batch in epoch_targets(rows)]
    epoch_claims = {m.claim for m in out}
    out += [Measure(claim, target, value, value, value, "single")
            for claim, value, target in ratios(rows)
            if claim not in epoch_claims and value is not None]
    return out


def judge(old: Measure, new: Measure) -> str:
    way = direction(new.target or old.target)
    if not way:
        return NOT_JUDGED
    sign = 1 if way == "lower" else -1  # sign * value: lower is better
    if "single" in (old.pairing, new.pairing):
        allowed = max(TOLERANCE * abs(old.median), ABS_TOLERANCE)
        change = sign * (new.median - old.median)
        return WORSE if change > allowed else BETTER if change < -allowed else SAME
    old_lo, old_hi = sorted((sign * old.lo, sign * old.hi))
    new_lo, new_hi = sorted((sign * new.lo, sign * new.hi))
    if new_lo > old_hi:
        return WORSE
    if new_hi < old_lo:
        return BETTER
    return SAME


def compare(new_rows: list[dict], old_rows: list[dict]) -> dict:
    """One entry per ratio in both tables, with its verdict; the claims in one table only."""
    old = {m.claim: m for m in measures(old_rows)}
    new = {m.claim: m for m in measures(new_rows)}
    compared = []
    for claim, n in new.items():
        if claim not in old:
            continue
        o = old[claim]
        compared.append({
            "claim": claim, "target": n.target, "direction": direction(n.target) or "n/a",
            "old": {"median": o.median, "range": [o.lo, o.hi], "pairing": o.pairing},
            "new": {"median": n.median, "range": [n.lo, n.hi], "pairing": n.pairing},
            "verdict": judge(o, n),
        })
    counts = {v: sum(c["verdict"] == v for c in compared)
              for v in (WORSE, BETTER, SAME, NOT_JUDGED)}
    return {
        "rows": compared, "counts": counts,
        "old_only": [c for c in old if c not in new], "new_only": [c for c in new if c not in old],
        "rule": RULE, "tolerance": TOLERANCE, "abs_tolerance": ABS_TOLERANCE,
    }


RULE = (
    "Epoch ratios: range = (min, max) over repeats of repeat i's numerator / repeat i's "
    "denominator (paired: measured side by side in one process); between two groups "
    "(unpaired, two processes) every repeat over every repeat. The median shown is those "
    "ratios' median (the Ratios table's figure, a ratio of medians, can differ). "
    "A ratio is **worse** only when "
    "its new range lies wholly on the bad side of its old range (no overlap), **better** when "
    "wholly on the good side, else **same within noise**. Bad side: higher for \"<=\" "
    "targets, lower for \">=\" targets; reported ratios and floors are not judged."
)


def _fmt(side: dict) -> str:
    lo, hi = side["range"]
    if side["pairing"] == "single":
        return f"{side['median']:.3f}"
    return f"{side['median']:.3f} [{lo:.3f}, {hi:.3f}]"


def render(comparison: dict, against: str) -> list[str]:
    """The Markdown section "## Compared with <file>"."""
    rows = comparison["rows"]
    counts = comparison["counts"]
    tol = f"{comparison['tolerance']:.0%} of the old value (at least {comparison['abs_tolerance']})"
    lines = [f"## Compared with {against}", "", comparison["rule"], ""]
    lines += [", ".join(f"{n} {v}" for v, n in counts.items()), ""]
    ranged = [r for r in rows if "single" not in (r["old"]["pairing"], r["new"]["pairing"])]
    single = [r for r in rows if r not in ranged]
    if ranged:
        lines += ["### Epoch ratios: median [min, max] over repeats", ""]
        lines += ["| measure | target | better | old | new | pairing | verdict |",
                  "|---|---|---|---|---|---|---|"]
        lines += [
            f"| {r['claim']} | {r['target']} | {r['direction']} | {_fmt(r['old'])} "
            f"| {_fmt(r['new'])} | {r['new']['pairing']} | {r['verdict']} |"
            for r in ranged
        ]
        lines.append("")
    if single:
        lines += [f"### Single values (tracking, sweeps; no repeats): worse only when worse "
                  f"than the old value by more than {tol}, else within noise", ""]
        lines += ["| measure | target | better | old | new | change | verdict |",
                  "|---|---|---|---|---|---|---|"]
        for r in single:
            old, new = r["old"]["median"], r["new"]["median"]
            change = f"{(new - old) / abs(old):+.0%}" if old else "-"
            lines.append(f"| {r['claim']} | {r['target']} | {r['direction']} | {old:.3f} "
                         f"| {new:.3f} | {change} | {r['verdict']} |")
        lines.append("")
    for key, where in (("old_only", "the old table only"), ("new_only", "the new table only")):
        if comparison[key]:
            lines += [f"Not compared, in {where}: " + "; ".join(comparison[key]), ""]
    return lines


def worse_line(comparison: dict) -> str:
    worse = [r["claim"] for r in comparison["rows"] if r["verdict"] == WORSE]
    return f"[bench] {len(worse)} ratio(s) worse than before" + (
        ": " + "; ".join(worse) if worse else "")


def compare_files(old_path: str, new_path: str) -> int:
    """`--compare OLD.json --against NEW.json`: no measuring; the section to stdout."""
    old_rows = json.loads(Path(old_path).read_text())["rows"]
    new_rows = json.loads(Path(new_path).read_text())["rows"]
    comparison = compare(new_rows, old_rows)
    print(f"New: {new_path}\n")
    print("\n".join(render(comparison, old_path)))
    print(worse_line(comparison))
    return 0
