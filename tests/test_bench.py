"""The benchmark command: its committed table is what its code computes from its rows, and
the harness variants time what they claim to."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from backends import baselines
from backends.baselines import Role
from harness.tools.bench import (
    FASTEST,
    TARGETS,
    _steady,
    harness_variant,
    ratios,
    verdict,
    write_table,
)

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
        over = target.denominator_framework or target.framework
        assert target.numerator in roles, target.claim
        assert target.denominator is FASTEST or target.denominator in {
            v.role for v in baselines.variants(over)
        }, target.claim
    names = [v.name for f in baselines.FRAMEWORKS for v in baselines.variants(f)]
    assert len(names) == len(set(names))  # a name picks one variant


def test_a_ratio_with_a_missing_variant_fails_loudly_instead_of_vanishing():
    rows = json.loads(TABLE.with_suffix(".json").read_text())["rows"]
    rows = [r for r in rows if r["variant"] != "hand-written pytorch loop"]
    with pytest.raises(KeyError):
        ratios(rows)


def _rows(epoch_ms: dict[tuple[str, Role], float], half_at_full_batch: bool = True) -> list[dict]:
    """Hand-made bench rows: every variant of every group, its epoch (ms) from (group, role)
    (100 ms where not given); at full batch each epoch is half its batch-32 one."""
    rows = []
    for group in baselines.FRAMEWORKS:
        for v in baselines.variants(group):
            ms = epoch_ms.get((group, v.role), 100.0)
            for batch, scale in (("32", 1.0), ("full", 0.5 if half_at_full_batch else 1.0)):
                rows.append({"group": group, "variant": v.name, "batch": batch,
                             "steady_epoch_ms": ms * scale, "repeats": [ms * scale]})
    return rows


def test_each_keras_engine_is_compared_with_its_own_fastest_fit_and_with_the_others():
    rows = _rows({
        ("keras", Role.harness): 40.0,
        ("keras_jax", Role.harness): 30.0,
        ("keras_jax", Role.fastest_fit): 20.0,
        ("keras_jax", Role.textbook): 60.0,
        ("keras_torch", Role.harness): 90.0,
        ("keras_torch", Role.fastest_fit): 80.0,
        ("keras_torch", Role.compiled_fit): 45.0,  # torch.compile: faster than eager fit
        ("lightning", Role.harness): 15.0,
    })
    got = {claim: (value, target) for claim, value, target in ratios(rows)}
    for batch in ("32", "full"):  # a ratio of two epochs: the same at either batch here
        assert got[f"keras_jax backend / fastest keras fit on jax (batch {batch})"] == (
            pytest.approx(1.5), "<= 1.25")
        # the fastest on torch is whichever fit is faster: here the compiled one
        assert got[f"keras_torch backend / fastest keras fit on torch (batch {batch})"] == (
            pytest.approx(2.0), "<= 1.25")
        assert got[f"keras_torch backend / eager keras fit on torch (batch {batch})"][0] == (
            pytest.approx(90 / 80))
        assert got[f"textbook keras fit on jax / keras_jax backend (batch {batch})"][0] == (
            pytest.approx(2.0))
        # side by side: the same harness epoch on another engine, and on Lightning
        assert got[f"keras_jax backend / keras backend (tensorflow) (batch {batch})"] == (
            pytest.approx(0.75), "(reported)")
        assert got[f"keras_torch backend / lightning backend (batch {batch})"] == (
            pytest.approx(6.0), "(reported)")
    # the TensorFlow rows read TensorFlow's variants only: 40 / min(its baselines, 100)
    assert got["keras backend / fastest keras (batch 32)"][0] == pytest.approx(0.4)


def test_a_table_without_the_engine_groups_has_no_engine_rows_but_a_missing_variant_fails():
    rows = _rows({})
    older = [r for r in rows if r["group"] not in ("keras_jax", "keras_torch")]
    claims = [claim for claim, _, _ in ratios(older)]
    assert claims and not [c for c in claims if "keras_jax" in c or "keras_torch" in c]
    assert any("keras_torch" in claim for claim, _, _ in ratios(rows))
    without_harness = [r for r in rows if r["variant"] != "harness keras_torch"]
    with pytest.raises(KeyError):
        ratios(without_harness)


@pytest.mark.slow  # ~25 s (JAX) and ~55 s (PyTorch: torch.compile) on a shared 2-core machine
@pytest.mark.parametrize("group", ["keras_jax", "keras_torch"])
def test_an_engine_group_times_its_variants_in_a_process_of_its_own(group, tmp_path):
    out = tmp_path / "rows.json"
    cmd = [sys.executable, "-m", "harness.bench", "--group", group, "--repeats", "1",
           "--epochs", "2", "--json", str(out)]
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
    rows = json.loads(out.read_text())
    names = {v.name: v.role for v in baselines.variants(group)}
    for batch in ("32", "full"):
        timed = {r["variant"] for r in rows if r["batch"] == batch}
        assert timed == set(names), batch
    assert {r["group"] for r in rows} == {group}
    assert all(r["steady_epoch_ms"] > 0 for r in rows)
    roles = {names[r["variant"]] for r in rows}
    assert {Role.harness, Role.harness_with_evaluation, Role.fastest_fit, Role.textbook} <= roles


def _hand_made_rows() -> list[dict]:
    """Rows as the benchmark writes them, with round numbers that meet every target."""
    ms = {  # steady epoch per role (batch 32 and full alike)
        Role.harness: 10.0, Role.harness_with_evaluation: 13.0, Role.fastest_fit: 10.0,
        Role.hand_written: 9.0, Role.textbook: 60.0,
    }
    rows = [
        {"group": f, "variant": v.name, "batch": b, "steady_epoch_ms": ms[v.role], "repeats": []}
        for f in ("keras", "lightning") for v in baselines.variants(f) for b in ("32", "full")
    ]
    rows += [
        {"group": "tracking", "variant": f"harness {b}", "batch": "32", "run_s_tracked": 1.0,
         "run_s_untracked": 0.99, "tracking_share_measured_inside": 0.01}
        for b in ("keras", "lightning")
    ]
    for prefix, jobs in (("course ", 320), ("", 16)):
        median = {"keras": 0.1, "lightning": 0.12}
        rows += [
            {"group": "sweep", "variant": f"{prefix}sequential", "jobs": jobs, "epochs": 100,
             "wall_s": 100.0, "training_s": 95.0, "overhead_share": 0.05,
             "outside_epochs_median_s": median},
            {"group": "sweep", "variant": f"{prefix}parallel (2 workers)", "jobs": jobs,
             "epochs": 100, "wall_s": 52.0, "training_s": 98.0, "overhead_share": None,
             "outside_epochs_median_s": median},
        ]
    return rows


def _verdicts(rows: list[dict]) -> dict[str, str]:
    return {claim: verdict(claim, value, target) for claim, value, target in ratios(rows)}


def test_every_target_of_the_issue_is_in_the_ratios_and_met_by_rows_that_meet_it():
    computed = {claim: (value, target) for claim, value, target in ratios(_hand_made_rows())}
    assert computed["keras backend / hand-written keras loop (batch full)"] == (
        pytest.approx(10 / 9), "<= 1.25"
    )
    for f in ("keras", "lightning"):
        claim = f"{f} evaluation adds to an epoch (with / without - 1) (batch full)"
        assert computed[claim] == (pytest.approx(0.3), "<= 0.45")
        claim = f"median run time outside epochs (s), {f}, course sweep (320 jobs)"
        assert computed[claim][1] == "<= 0.15"
    share = "course sweep time outside epochs, share of wall time, sequential (320 jobs)"
    assert computed[share] == (0.05, "<= 0.10")
    speedup = "course sweep speed-up, 2 parallel workers vs 1 (320 jobs)"
    assert computed[speedup] == (pytest.approx(100 / 52), ">= 1.85")
    assert computed["sweep speed-up, 2 parallel workers vs 1"][1] == ">= 1.75"
    minutes = computed["course sweep wall minutes, sequential (320 jobs)"][0]
    assert minutes == pytest.approx(100 / 60)
    verdicts = _verdicts(_hand_made_rows())
    assert "NO" not in verdicts.values()
    # a target for one batch setting says nothing of the other's
    assert verdicts["textbook keras fit / keras backend (batch full)"] == ""
    assert "keras backend / hand-written keras loop (batch 32)" not in verdicts
    assert verdicts["keras backend / hand-written keras loop (batch full)"] == "yes"


@pytest.mark.parametrize(
    "plant, claim",
    [
        ({"variant": "hand-written tf.function loop", "batch": "full", "steady_epoch_ms": 7.0},
         "keras backend / hand-written keras loop (batch full)"),
        ({"variant": "harness lightning + per-epoch evaluation", "batch": "full",
          "steady_epoch_ms": 15.0},
         "lightning evaluation adds to an epoch (with / without - 1) (batch full)"),
        ({"variant": "course parallel (2 workers)", "wall_s": 60.0},
         "course sweep speed-up, 2 parallel workers vs 1 (320 jobs)"),
        ({"variant": "course sequential", "outside_epochs_median_s": {"keras": 0.2}},
         "median run time outside epochs (s), keras, course sweep (320 jobs)"),
    ],
)
def test_a_planted_wrong_row_turns_its_verdict_and_the_table_says_so(tmp_path, plant, claim):
    rows = _hand_made_rows()
    assert _verdicts(rows)[claim] == "yes"
    for row in rows:
        if row["variant"] == plant["variant"] and row.get("batch") == plant.get("batch"):
            row.update(plant)
    assert _verdicts(rows)[claim] == "NO"
    table = write_table(rows, tmp_path, "planted", ["--course"]).read_text()
    assert re.search(rf"^\| {re.escape(claim)} \| [0-9.]+ \| .+ \| NO \|$", table, re.M)
    assert json.loads((tmp_path / "planted.json").read_text())["rows"] == rows
