"""The benchmark's targets (the performance issues') and the ratios that answer them, from a
table's rows: shared by the benchmark (harness.tools.bench) and its comparison of two tables
(harness.tools.bench_compare)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from backends import baselines
from backends.baselines import Role
from harness.tools.bench_sweeps import sweep_ratios

FASTEST: Role | None = None  # a ratio's denominator: the fastest baseline, whatever its role


@dataclass(frozen=True)
class Target:
    """A ratio of two variants' steady epochs, per batch setting, and the target it answers."""

    claim: str  # the table's text, before " (batch ...)"
    framework: str
    numerator: Role
    denominator: Role | None  # None (FASTEST): the fastest non-harness variant, whatever its role
    target: str  # "<= x" or ">= x", "(batch N)" when it holds for one batch setting only
    denominator_framework: str = ""  # the denominator's group when not the numerator's
    minus_one: bool = False  # the ratio less 1: what the numerator adds to the denominator
    batch: str | None = None  # the one batch setting it is measured at ("32", "full"); None: both


# The performance issue's targets, in the table's order (per batch setting).
TARGETS: tuple[Target, ...] = (
    Target("keras backend / fastest keras", "keras", Role.harness, FASTEST, "<= 1.25"),
    Target("keras backend / fastest keras fit", "keras", Role.harness, Role.fastest_fit,
           "(fit's own floor)"),
    Target("keras backend with its evaluation / fastest keras", "keras",
           Role.harness_with_evaluation, FASTEST, "(reported)"),
    Target("textbook keras fit / keras backend", "keras", Role.textbook, Role.harness,
           ">= 4 (batch 32)"),
    Target("lightning backend / lightning lightest", "lightning", Role.harness, Role.fastest_fit,
           "<= 1.15"),
    Target("lightning backend with its evaluation / lightning lightest", "lightning",
           Role.harness_with_evaluation, Role.fastest_fit, "(reported)"),
    Target("textbook lightning / lightning backend", "lightning", Role.textbook, Role.harness,
           ">= 1.5"),
    Target("lightning backend / hand-written pytorch", "lightning", Role.harness,
           Role.hand_written, "<= 2.5"),
    Target("keras backend / hand-written keras loop", "keras", Role.harness, Role.hand_written,
           "<= 1.25", batch="full"),
    Target("keras evaluation adds to an epoch (with / without - 1)", "keras",
           Role.harness_with_evaluation, Role.harness, "<= 0.45", minus_one=True, batch="full"),
    Target("lightning evaluation adds to an epoch (with / without - 1)", "lightning",
           Role.harness_with_evaluation, Role.harness, "<= 0.45", minus_one=True, batch="full"),
    *(
        target
        for backend, engine in (("keras_jax", "jax"), ("keras_torch", "torch"))
        for target in (
            Target(f"{backend} backend / fastest keras fit on {engine}", backend, Role.harness,
                   FASTEST, "<= 1.25"),
            Target(f"{backend} backend with its evaluation / fastest keras fit on {engine}",
                   backend, Role.harness_with_evaluation, FASTEST, "(reported)"),
            Target(f"textbook keras fit on {engine} / {backend} backend", backend,
                   Role.textbook, Role.harness, "(reported)"),
            # the engines side by side: the same harness epoch on each
            Target(f"{backend} backend / keras backend (tensorflow)", backend, Role.harness,
                   Role.harness, "(reported)", "keras"),
            Target(f"{backend} backend / lightning backend", backend, Role.harness,
                   Role.harness, "(reported)", "lightning"),
        )
    ),
    # the harness runs Keras on torch eagerly (keras_engines.TorchEngine.jit_compile)
    Target("keras_torch backend / eager keras fit on torch", "keras_torch", Role.harness,
           Role.fastest_fit, "(reported)"),
)


def epoch_series(
    rows: list[dict], framework: str, role: Role | None, batch: str
) -> tuple[float, list[float]]:
    """A variant's median epoch (ms) and its repeats; role FASTEST: the baseline fastest by
    median. A row without repeats gives its median as its one repeat."""
    roles = {v.name: v.role for v in baselines.variants(framework)}
    found = {
        roles[r["variant"]]: (r["steady_epoch_ms"], r.get("repeats") or [r["steady_epoch_ms"]])
        for r in rows
        if r["group"] == framework and r["batch"] == batch and r["variant"] in roles
    }
    if role is FASTEST:
        role = min((ms, role.value, role) for role, (ms, _) in found.items()
                   if role not in baselines.HARNESS_ROLES)[2]
    return found[role]


def _epoch_ms(rows: list[dict], framework: str, role: Role | None, batch: str) -> float:
    """A variant's steady epoch (ms) from the rows; role None: the fastest baseline."""
    return epoch_series(rows, framework, role, batch)[0]


def epoch_targets(rows: list[dict]) -> list[tuple[Target, str]]:
    """The issue's epoch targets the rows can answer, with the batch setting each is for."""
    measured = {r["group"] for r in rows}  # a table from before a group existed lacks it
    return [
        (t, batch) for batch in ("32", "full") for t in TARGETS
        if t.batch in (None, batch)
        and {t.framework, t.denominator_framework or t.framework} <= measured
    ]


def ratios(rows: list[dict]) -> list[tuple[str, float, str]]:
    """(claim, measured ratio, target) for the issue's targets, per batch setting."""
    out = []
    for t, batch in epoch_targets(rows):
        ratio = (
            _epoch_ms(rows, t.framework, t.numerator, batch)
            / _epoch_ms(rows, t.denominator_framework or t.framework, t.denominator, batch)
        )
        out.append((f"{t.claim} (batch {batch})", ratio - t.minus_one, t.target))
    for r in rows:
        if r["group"] == "tracking":
            share = 1 - r["run_s_untracked"] / r["run_s_tracked"]
            inside = r["tracking_share_measured_inside"]
            variant = r["variant"]
            claim = f"tracking share of run wall time, {variant} (on vs off)"
            out.append((claim, share, "<= 0.03"))
            out.append((f"tracking share measured inside the run, {variant}", inside, "<= 0.03"))
    out += sweep_ratios(rows)
    return out


# a target: "<= x" or ">= x", for one batch setting only when it says "(batch N)";
# anything else ("(reported)", "(fit's own floor)") is not a target
TARGET = re.compile(r"(<=|>=) ([0-9.]+)(?: \(batch (\w+)\))?$")


def direction(target: str) -> str:
    """"lower" or "higher" is better, from the target's operator; "" where none (reported)."""
    found = TARGET.match(target)
    return "" if found is None else {"<=": "lower", ">=": "higher"}[found.group(1)]


def verdict(claim: str, value: float, target: str) -> str:
    """"yes" or "NO" for a target "<= x" / ">= x" (one batch setting's: "(batch N)"), or
    "" where there is no target (reported only) or it is another batch setting's."""
    found = TARGET.match(target)
    if found is None:
        return ""
    op, bound, batch = found.group(1), float(found.group(2)), found.group(3)
    if batch is not None and f"(batch {batch})" not in claim:
        return ""
    met = value <= bound if op == "<=" else value >= bound
    return "yes" if met else "NO"
