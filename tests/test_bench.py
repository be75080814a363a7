"""The benchmark command: its committed table is what its code computes from its rows, and
the harness variants time what they claim to."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.tools.bench import _steady, harness_variant, ratios

TABLE = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "cpu-2core"


def test_the_committed_table_states_the_ratios_its_rows_give():
    rows = json.loads(TABLE.with_suffix(".json").read_text())["rows"]
    printed = dict(re.findall(r"^\| (.+?) \| ([0-9.]+) \| .+ \|$", TABLE.with_suffix(".md").read_text(), re.M))
    computed = ratios(rows)
    assert len(computed) >= 20  # every framework target, both batch settings, tracking, sweeps
    for claim, value, _target in computed:
        assert printed[claim] == f"{value:.3f}", claim


def test_the_harness_is_timed_with_and_without_its_per_epoch_evaluation():
    series = harness_variant("lightning")(None, 4)
    training, with_eval = series["harness lightning"], series["harness lightning + per-epoch evaluation"]
    assert len(training) == len(with_eval) == 4
    # the evaluation (forward passes and metrics) is taken out of each epoch, and only it
    assert 0 < _steady(training) < _steady(with_eval)
    assert all(t < w for t, w in zip(training, with_eval))
