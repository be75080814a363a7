"""The tuned protocol's selection and checks, on fabricated tuning results."""

from __future__ import annotations

import math

import pytest

from harness.core.config import ConfigError, Task
from harness.sweep.tuning import (
    Criterion,
    TuneResult,
    arm_grids,
    check_criterion,
    check_seeds,
    logged_metrics,
    select,
)


def _runs(arm: str, by_lr: dict[float, list[float | None]], setting: str = "backend=keras"):
    """Tuning results: per rate, one value per seed (None: the run diverged)."""
    return [
        TuneResult(arm, setting, lr, 100 + i, "FAILED" if v is None else "FINISHED", v, v is None)
        for lr, values in by_lr.items()
        for i, v in enumerate(values)
    ]


def test_the_rate_with_the_lowest_mean_is_chosen_per_arm_and_setting():
    results = (
        _runs("gd", {0.01: [0.9, 1.1], 0.1: [0.5, 0.7], 1.0: [0.4, 1.2]})
        + _runs("adam", {0.001: [0.3, 0.3], 0.01: [0.35, 0.2]})
        + _runs("adam", {0.001: [0.2, 0.2], 0.01: [0.35, 0.3]}, setting="backend=lightning")
    )
    choices, table = select(results)
    assert choices[("gd", "backend=keras")].lr == 0.1  # mean 0.6 beats 0.8 (1.0) and 1.0 (0.01)
    assert choices[("adam", "backend=keras")].lr == 0.01  # mean 0.275 < 0.3
    assert choices[("adam", "backend=lightning")].lr == 0.001
    assert choices[("gd", "backend=keras")].score == pytest.approx(0.6)
    assert table["chosen"].sum() == 3
    row = table[(table.arm == "gd") & (table.lr == 1.0)].iloc[0]
    assert (row["runs"], row["finished"], row["mean"]) == (2, 2, pytest.approx(0.8))


def test_equal_means_go_to_the_smaller_rate_and_the_tie_is_stated():
    choices, _ = select(_runs("gd", {0.3: [0.5, 0.5], 0.03: [0.4, 0.6], 3.0: [0.9, 0.9]}))
    choice = choices[("gd", "backend=keras")]
    assert choice.lr == 0.03
    assert "tied with [0.3]" in choice.reason and "smaller rate" in choice.reason


def test_a_rate_with_a_diverged_seed_is_never_chosen_over_one_that_finished():
    # 1.0 would win on its finished seed alone (0.1), but its other seed diverged
    choices, table = select(_runs("gd", {0.1: [0.8, 0.9], 1.0: [0.1, None]}))
    assert choices[("gd", "backend=keras")].lr == 0.1
    row = table[table.lr == 1.0].iloc[0]
    assert (row["diverged"], row["finished"], bool(row["chosen"])) == (1, 1, False)


def test_failed_and_killed_runs_count_as_the_worst_value_too():
    results = _runs("gd", {0.1: [0.8, 0.9], 1.0: [0.1, 0.1]})
    results[-1] = TuneResult("gd", "backend=keras", 1.0, 101, "KILLED")
    assert select(results)[0][("gd", "backend=keras")].lr == 0.1


def test_an_arm_whose_every_rate_diverged_gets_no_rate_and_says_why():
    results = _runs("gd", {1.0: [None, None], 3.0: [None]}) + _runs("adam", {0.01: [0.3]})
    choices, table = select(results)
    gd = choices[("gd", "backend=keras")]
    assert gd.lr is None and math.isnan(gd.score)
    assert "3 of 3 runs diverged" in gd.reason and "smaller rates" in gd.reason
    assert choices[("adam", "backend=keras")].lr == 0.01
    assert not table[table.arm == "gd"]["chosen"].any()


def test_a_maximised_criterion_chooses_the_highest_mean():
    results = _runs("relu", {0.001: [0.90, 0.92], 0.01: [0.95, 0.96]})
    key = ("relu", "backend=keras")
    assert select(results, Criterion("val/accuracy", "max"))[0][key].lr == 0.01
    assert select(results, Criterion("val/accuracy", "min"))[0][key].lr == 0.001


def test_skipped_and_elsewhere_runs_count_as_finished():
    results = [
        TuneResult("gd", "", 0.1, 100, "SKIPPED", 0.5),
        TuneResult("gd", "", 0.1, 101, "ELSEWHERE", 0.7),
        TuneResult("gd", "", 1.0, 100, "FINISHED", 0.9),
        TuneResult("gd", "", 1.0, 101, "FINISHED", 0.9),
    ]
    choices, table = select(results)
    assert choices[("gd", "")].lr == 0.1 and table.loc[0, "finished"] == 2


def test_tuning_and_evaluation_seeds_never_overlap():
    check_seeds([100, 101, 102], list(range(10)))
    with pytest.raises(ConfigError, match=r"seeds \[1, 2\] are both tuning and evaluation seeds"):
        check_seeds([1, 2, 100], list(range(10)))
    with pytest.raises(ConfigError, match="eval_seeds is empty"):
        check_seeds([100], [])
    with pytest.raises(ConfigError, match="appears twice"):
        check_seeds([100, 100], [0])


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"gd": [], "adam": [0.01]}, "grid.gd is empty"),
        ({"gd": [0.1, 0.0], "adam": [0.01]}, "must be positive"),
        ({"gd": [0.1, -1.0], "adam": [0.01]}, "must be positive"),
        ({"gd": [0.1, 0.1], "adam": [0.01]}, "appears twice"),
        ({"gd": [0.1]}, "give one list of rates per arm"),
        ({}, "declare each arm's learning rates"),
        ({"gd": 0.1, "adam": [0.01]}, "give a list of learning rates"),
    ],
)
def test_bad_grids_are_refused_with_the_fix(grid, message):
    with pytest.raises(ConfigError, match=message):
        arm_grids(grid, ["gd", "adam"])


def test_grids_come_back_sorted_per_arm():
    assert arm_grids({"gd": [1.0, 0.01, 0.1], "adam": [0.001]}, ["gd", "adam"]) == {
        "gd": [0.01, 0.1, 1.0],
        "adam": [0.001],
    }


def test_the_criterion_must_be_a_metric_the_task_logs():
    assert "val/accuracy" in logged_metrics(Task.multiclass)
    assert "val/r2" in logged_metrics(Task.regression)
    assert "val/accuracy" not in logged_metrics(Task.regression)
    check_criterion(Criterion("val/accuracy", "max"), Task.multiclass)
    with pytest.raises(ConfigError, match="a multiclass run does not log it"):
        check_criterion(Criterion("val/r2", "max"), Task.multiclass)
    with pytest.raises(ConfigError, match="min .losses. or max"):
        check_criterion(Criterion("val/loss", "lowest"), Task.multiclass)
