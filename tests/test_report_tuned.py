"""The tuned report's sections and sensitivity figure, on fabricated runs of both stages."""

from __future__ import annotations

import pandas as pd
import pytest

from harness.report.tuned import (
    at_best,
    budget,
    chosen_rates,
    eval_runs,
    sensitivity_figure,
    tuned_sections,
)

# final val/loss per (arm, lr) on tuning seeds 100 and 101: gd is best at 0.1, adam at 0.001
TUNE = {
    "gd": {0.01: (1.2, 1.4), 0.1: (0.5, 0.7), 1.0: (0.9, None)},  # None: diverged
    "adam": {0.001: (0.30, 0.34), 0.01: (0.40, 0.44), 0.1: (2.0, 2.2)},
}
EVAL = {"gd": (0.1, [0.6, 0.62, 0.58]), "adam": (0.001, [0.31, 0.33, 0.32])}


def fabricated(backends=("keras", "lightning")) -> pd.DataFrame:
    rows = []
    for backend in backends:
        for arm, grid in TUNE.items():
            for lr, values in grid.items():
                for seed, v in zip((100, 101), values, strict=True):
                    rows.append({
                        "stage": "tune", "arm": arm, "lr": lr, "backend": backend, "seed": seed,
                        "status": "FAILED" if v is None else "FINISHED", "diverged": v is None,
                        "val/loss": float("nan") if v is None else v, "val/accuracy": 0.9,
                        "time/total_s": 2.0,
                    })
        for arm, (lr, values) in EVAL.items():
            for seed, v in enumerate(values):
                rows.append({
                    "stage": "eval", "arm": arm, "lr": lr, "backend": backend, "seed": seed,
                    "status": "FINISHED", "diverged": False, "val/loss": v,
                    "val/accuracy": 1 - v / 2, "time/total_s": 3.0,
                })
    return pd.DataFrame(rows)


def test_chosen_rates_per_arm_and_backend_match_the_eval_stage():
    rates = chosen_rates(fabricated())
    assert list(zip(rates["backend"], rates["arm"], rates["chosen lr"], strict=True)) == [
        ("keras", "gd", "0.1"), ("keras", "adam", "0.001"),
        ("lightning", "gd", "0.1"), ("lightning", "adam", "0.001"),
    ]
    assert (rates["chosen lr"] == rates["evaluated at"]).all()


def test_budget_counts_each_arms_runs_and_seconds_per_stage():
    b = budget(fabricated(backends=("keras",))).set_index("arm")
    assert b.loc["gd", "rates tried"] == 3
    assert (b.loc["gd", "tune runs"], b.loc["gd", "tune s"]) == (6, 12.0)
    assert (b.loc["gd", "eval runs"], b.loc["gd", "eval s"]) == (3, 9.0)
    assert b.loc["adam", "total runs"] == 9


def test_each_at_its_best_is_the_eval_stage_only():
    runs = fabricated(backends=("keras",))
    assert set(eval_runs(runs)["seed"]) == {0, 1, 2}
    table = at_best(runs, ["val/loss"]).set_index("arm")
    assert table.loc["gd", "val/loss"] == "0.6000 ± 0.0200"
    assert table.loc["adam", "lr"] == "0.001" and table.loc["adam", "seeds"] == 3


def test_the_sections_give_both_answers_the_rates_the_budget_and_the_figure():
    text = tuned_sections(fabricated(), equal_settings="optimizers")
    assert "[optimizers report](../optimizers/report.md)" in text
    for heading in ("## Both answers", "## Protocol and chosen rates", "## Tuning budget per arm",
                    "## Sensitivity to the learning rate"):
        assert heading in text
    assert "3 evaluation seeds (0-2), disjoint from the tuning seeds (100, 101)" in text
    assert "gd: 0.01, 0.1, 1; adam: 0.001, 0.01, 0.1" in text
    assert "![sensitivity](sensitivity.png)" in text
    assert tuned_sections(fabricated(), equal_settings="optimizers") == text  # deterministic


def test_an_arm_whose_every_rate_diverged_is_stated_in_the_report():
    runs = fabricated(backends=("keras",))
    tune_gd = (runs["stage"] == "tune") & (runs["arm"] == "gd")
    runs.loc[tune_gd, ["status", "diverged", "val/loss"]] = ["FAILED", True, float("nan")]
    runs = runs[~((runs["stage"] == "eval") & (runs["arm"] == "gd"))]
    text = tuned_sections(runs)
    assert "**gd (keras)**: no rate of [0.01, 0.1, 1.0] finished on every tuning seed" in text
    assert chosen_rates(runs).set_index("arm").loc["gd", "chosen lr"] == "none"


def test_the_sensitivity_figure_is_a_deterministic_png(tmp_path):
    path = tmp_path / "sensitivity.png"
    data = sensitivity_figure(fabricated(), path)
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and path.read_bytes() == data
    assert sensitivity_figure(fabricated()) == data


def test_missing_columns_are_named():
    with pytest.raises(ValueError, match=r"\['stage'\]"):
        tuned_sections(fabricated().drop(columns="stage"))
