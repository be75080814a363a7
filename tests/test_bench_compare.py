"""Two benchmark tables compared by ranges over repeats (harness.tools.bench_compare), on
hand-made rows whose ranges are worked out by hand in each test."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from backends import baselines
from backends.baselines import Role
from harness.tools.bench import write_table
from harness.tools.bench_compare import (
    BETTER,
    NOT_JUDGED,
    SAME,
    WORSE,
    Measure,
    compare,
    judge,
    measures,
)

ROOT = Path(__file__).resolve().parents[1]
LIGHTEST = "lightning backend / lightning lightest (batch 32)"  # target "<= 1.15"
TEXTBOOK = "textbook lightning / lightning backend (batch 32)"  # target ">= 1.5"
WITH_EVAL = "lightning backend with its evaluation / lightning lightest (batch 32)"  # reported


def _rows(repeats: dict[tuple[str, Role, str], list[float]],
          groups: tuple[str, ...] = ("keras", "lightning")) -> list[dict]:
    """Every variant of the groups at both batch settings, with the repeats given per
    (group, role, batch) and [100, 100, 100] ms elsewhere, as measure_group writes them;
    and the sweep rows (16 jobs: 100 s sequential, 50 s with two workers)."""
    rows = []
    for group in groups:
        for v in baselines.variants(group):
            for batch in ("32", "full"):
                values = repeats.get((group, v.role, batch), [100.0, 100.0, 100.0])
                rows.append({"group": group, "variant": v.name, "batch": batch,
                             "steady_epoch_ms": statistics.median(values), "repeats": values})
    rows += [
        {"group": "sweep", "variant": "sequential", "jobs": 16, "epochs": 100, "wall_s": 100.0,
         "training_s": 80.0, "overhead_share": 0.2, "outside_epochs_median_s": {}},
        {"group": "sweep", "variant": "parallel (2 workers)", "jobs": 16, "epochs": 100,
         "wall_s": 50.0, "training_s": 80.0, "overhead_share": None,
         "outside_epochs_median_s": {}},
    ]
    return rows


def _lightning(harness: list[float], lightest: list[float]) -> list[dict]:
    return _rows({("lightning", Role.harness, "32"): harness,
                  ("lightning", Role.fastest_fit, "32"): lightest})


def _by_claim(rows: list[dict]) -> dict[str, Measure]:
    return {m.claim: m for m in measures(rows)}


def _verdicts(new_rows: list[dict], old_rows: list[dict]) -> dict[str, str]:
    return {r["claim"]: r["verdict"] for r in compare(new_rows, old_rows)["rows"]}


def test_a_paired_ratio_ranges_over_its_per_repeat_ratios():
    # 10/10, 12/10, 11/11 -> 1.0, 1.2, 1.0: range [1.0, 1.2], median 1.0 (ratio of medians:
    # 11/10 = 1.1; unpaired it would range from 10/11 to 12/10)
    m = _by_claim(_lightning([10.0, 12.0, 11.0], [10.0, 10.0, 11.0]))[LIGHTEST]
    assert (m.median, m.lo, m.hi, m.pairing) == (pytest.approx(1.0), pytest.approx(1.0),
                                                pytest.approx(1.2), "paired")
    assert m.target == "<= 1.15"


def test_fastest_is_the_baseline_fastest_by_median_paired_repeat_by_repeat():
    # fit [20, 30, 40] (median 30) is faster by median than the hand-written loop [35, 25, 32]
    # (median 32), though the loop has the fastest single repeat (25)
    rows = _rows({("keras", Role.harness, "32"): [30.0, 30.0, 40.0],
                  ("keras", Role.fastest_fit, "32"): [20.0, 30.0, 40.0],
                  ("keras", Role.hand_written, "32"): [35.0, 25.0, 32.0]})
    m = _by_claim(rows)["keras backend / fastest keras (batch 32)"]
    # 30/20, 30/30, 40/40 -> 1.5, 1.0, 1.0
    assert (m.median, m.lo, m.hi) == (pytest.approx(1.0), pytest.approx(1.0), pytest.approx(1.5))
    rows = _rows({("keras", Role.harness, "32"): [30.0, 30.0, 40.0],
                  ("keras", Role.fastest_fit, "32"): [20.0, 30.0, 40.0],
                  ("keras", Role.hand_written, "32"): [25.0, 24.0, 32.0]})  # median 25 now
    m = _by_claim(rows)["keras backend / fastest keras (batch 32)"]
    # 30/25, 30/24, 40/32 -> 1.2, 1.25, 1.25
    assert (m.median, m.lo, m.hi) == (pytest.approx(1.25), pytest.approx(1.2),
                                      pytest.approx(1.25))


def test_minus_one_is_taken_off_each_per_repeat_ratio():
    rows = _rows({("keras", Role.harness_with_evaluation, "full"): [13.0, 15.0, 12.0],
                  ("keras", Role.harness, "full"): [10.0, 10.0, 10.0]})
    m = _by_claim(rows)["keras evaluation adds to an epoch (with / without - 1) (batch full)"]
    assert (m.median, m.lo, m.hi) == (pytest.approx(0.3), pytest.approx(0.2), pytest.approx(0.5))


def test_a_ratio_between_two_groups_is_unpaired_every_repeat_over_every_repeat():
    rows = _rows({("keras_jax", Role.harness, "32"): [10.0, 20.0],
                  ("keras", Role.harness, "32"): [40.0, 50.0]},
                 groups=("keras", "keras_jax", "lightning"))
    m = _by_claim(rows)["keras_jax backend / keras backend (tensorflow) (batch 32)"]
    # 10/40, 10/50, 20/40, 20/50 -> 0.25, 0.2, 0.5, 0.4: median (0.25 + 0.4) / 2
    assert (m.median, m.lo, m.hi, m.pairing) == (pytest.approx(0.325), pytest.approx(0.2),
                                                pytest.approx(0.5), "unpaired")


OLD = _lightning([10.0, 12.0, 11.0], [10.0, 10.0, 10.0])  # 1.0, 1.2, 1.1: range [1.0, 1.2]


def test_a_new_range_wholly_above_the_old_one_is_worse_for_a_lower_is_better_target():
    new = _lightning([13.0, 14.0, 13.5], [10.0, 10.0, 10.0])  # [1.3, 1.4]
    assert _verdicts(new, OLD)[LIGHTEST] == WORSE
    assert _verdicts(OLD, new)[LIGHTEST] == BETTER


def test_overlapping_ranges_are_the_same_within_noise_even_with_a_worse_median():
    # 1.1, 1.3, 1.25: median 1.25 above the old range's top (1.2), but the ranges overlap
    new = _lightning([11.0, 13.0, 12.5], [10.0, 10.0, 10.0])
    assert _by_claim(new)[LIGHTEST].median > _by_claim(OLD)[LIGHTEST].hi
    assert _verdicts(new, OLD)[LIGHTEST] == SAME
    touching = _lightning([12.0, 13.0, 14.0], [10.0, 10.0, 10.0])  # [1.2, 1.4]: touches 1.2
    assert _verdicts(touching, OLD)[LIGHTEST] == SAME


def test_a_new_range_wholly_below_is_better_for_lower_and_worse_for_higher_is_better():
    new = _lightning([8.0, 9.0, 8.5], [10.0, 10.0, 10.0])  # [0.8, 0.9]
    verdicts = _verdicts(new, OLD)
    assert verdicts[LIGHTEST] == BETTER
    # textbook (100 ms) / harness: old [100/12, 100/10], new [100/9, 100/8]: higher is better
    assert verdicts[TEXTBOOK] == BETTER
    assert _verdicts(OLD, new)[TEXTBOOK] == WORSE
    # reported only: no direction, never judged, however far it moved
    assert verdicts[WITH_EVAL] == _verdicts(OLD, new)[WITH_EVAL] == NOT_JUDGED
    row = next(r for r in compare(new, OLD)["rows"] if r["claim"] == WITH_EVAL)
    assert row["direction"] == "n/a"


def _single(value: float, target: str) -> Measure:
    return Measure("x", target, value, value, value, "single")


def test_single_values_are_worse_only_beyond_the_tolerance():
    # lower is better: 25% of 0.2 is 0.05
    assert judge(_single(0.2, "<= 0.25"), _single(0.249, "<= 0.25")) == SAME
    assert judge(_single(0.2, "<= 0.25"), _single(0.251, "<= 0.25")) == WORSE
    assert judge(_single(0.2, "<= 0.25"), _single(0.149, "<= 0.25")) == BETTER
    # higher is better: 25% of 2.0 is 0.5
    assert judge(_single(2.0, ">= 1.75"), _single(1.51, ">= 1.75")) == SAME
    assert judge(_single(2.0, ">= 1.75"), _single(1.49, ">= 1.75")) == WORSE
    # near zero, at least 0.01: 0.005 -> 0.012 is +140% but within noise
    assert judge(_single(0.005, "<= 0.03"), _single(0.012, "<= 0.03")) == SAME
    assert judge(_single(0.005, "<= 0.03"), _single(0.016, "<= 0.03")) == WORSE
    assert judge(_single(15.0, "(reported)"), _single(30.0, "(reported)")) == NOT_JUDGED


def test_the_sweep_rows_are_compared_as_single_values():
    old = _rows({})  # speed-up 100 / 50 = 2.0
    slower = _rows({})
    slower[-1]["wall_s"] = 60.0  # 1.667: -17%, within 25%
    assert _verdicts(slower, old)["sweep speed-up, 2 parallel workers vs 1"] == SAME
    slower[-1]["wall_s"] = 70.0  # 1.429: -29%
    assert _verdicts(slower, old)["sweep speed-up, 2 parallel workers vs 1"] == WORSE
    assert _verdicts(slower, old)["sweep overhead share, sequential (16 jobs)"] == SAME


def test_ratios_in_one_table_only_are_listed_not_compared():
    old = _rows({})
    new = _rows({}, groups=("keras", "keras_jax", "lightning"))
    comparison = compare(new, old)
    assert not comparison["old_only"]
    assert "keras_jax backend / fastest keras fit on jax (batch 32)" in comparison["new_only"]
    assert all("keras_jax" not in r["claim"] for r in comparison["rows"])
    assert comparison["counts"][WORSE] == 0


def test_the_written_table_has_the_comparison_section_and_json(tmp_path):
    new = _lightning([13.0, 14.0, 13.5], [10.0, 10.0, 10.0])
    comparison = compare(new, OLD)
    table = write_table(new, tmp_path, "t", [], ("old.json", comparison)).read_text()
    assert "## Compared with old.json" in table
    assert "wholly on the bad side" in table  # the rule, for the reader
    assert f"| {LIGHTEST} | <= 1.15 | lower | 1.100 [1.000, 1.200] | 1.350 [1.300, 1.400] " \
           f"| paired | worse |" in table
    assert "more than 25% of the old value" in table
    data = json.loads((tmp_path / "t.json").read_text())
    assert data["comparison"]["against"] == "old.json"
    # a slower harness epoch also turns textbook / harness and harness / hand-written worse
    assert data["comparison"]["counts"][WORSE] == 3


def test_the_cli_compares_two_tables_without_measuring(tmp_path):
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps({"rows": OLD}))
    new.write_text(json.dumps({"rows": _lightning([13.0, 14.0, 13.5], [10.0, 10.0, 10.0])}))
    cmd = [sys.executable, "-m", "harness.bench", "--compare", str(old), "--against", str(new)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"## Compared with {old}" in proc.stdout
    assert f"| {LIGHTEST} | <= 1.15 | lower |" in proc.stdout
    last = proc.stdout.rstrip().splitlines()[-1]
    assert last == (f"[bench] 3 ratio(s) worse than before: {LIGHTEST}; {TEXTBOOK}; "
                    "lightning backend / hand-written pytorch (batch 32)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.json", "old.json"]  # no writes
