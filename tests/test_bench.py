"""The benchmark command: its committed table is what its code computes from its rows, and
the harness variants time what they claim to."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from backends import baselines
from harness.tools.bench import FASTEST, TARGETS, _steady, harness_variant, ratios

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "results" / "benchmarks" / "cpu-2core"


def test_the_committed_table_states_the_ratios_its_rows_give():
    rows = json.loads(TABLE.with_suffix(".json").read_text())["rows"]
    table = TABLE.with_suffix(".md").read_text()
    printed = dict(re.findall(r"^\| (.+?) \| ([0-9.]+) \| .+ \|$", table, re.M))
    computed = ratios(rows)
    assert len(computed) >= 20  # every framework target, both batch settings, tracking, sweeps
    for claim, value, _target in computed:
        assert printed[claim] == f"{value:.3f}", claim


def test_the_harness_is_timed_with_and_without_its_per_epoch_evaluation():
    series = harness_variant("lightning")(None, 4)
    training = series["harness lightning"]
    with_eval = series["harness lightning + per-epoch evaluation"]
    assert len(training) == len(with_eval) == 4
    # the evaluation (forward passes and metrics) is taken out of each epoch, and only it
    assert 0 < _steady(training) < _steady(with_eval)
    assert all(t < w for t, w in zip(training, with_eval, strict=True))


def test_every_baseline_names_a_function_its_module_defines():
    for variant in baselines.BASELINES:
        path = ROOT.joinpath(*variant.module.split(".")).with_suffix(".py")
        body = ast.parse(path.read_text()).body
        defined = {n.name for n in body if isinstance(n, ast.FunctionDef)}
        assert variant.function in defined, f"{variant.name}: no {variant.function} in {path.name}"


def test_every_target_compares_variants_of_its_framework():
    for target in TARGETS:
        roles = {v.role for v in baselines.variants(target.framework)}
        assert target.numerator in roles, target.claim
        assert target.denominator is FASTEST or target.denominator in roles, target.claim
    names = [v.name for f in baselines.FRAMEWORKS for v in baselines.variants(f)]
    assert len(names) == len(set(names))  # a name picks one variant


def test_a_ratio_with_a_missing_variant_fails_loudly_instead_of_vanishing():
    rows = json.loads(TABLE.with_suffix(".json").read_text())["rows"]
    rows = [r for r in rows if r["variant"] != "hand-written pytorch loop"]
    with pytest.raises(KeyError):
        ratios(rows)
