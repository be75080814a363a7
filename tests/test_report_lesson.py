"""harness.report.lesson on cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from harness.report import lesson


def _history(val: list[float], train: list[float] | None = None, **cols) -> pd.DataFrame:
    train = train if train is not None else [v / 2 for v in val]
    return pd.DataFrame({"epoch": np.arange(1, len(val) + 1), "val/loss": val,
                         "train/loss": train, **cols})


def test_turn_up_is_the_low_before_a_real_rise():
    assert lesson.turn_up_epoch(_history([1.0, 0.6, 0.5, 0.55, 0.7])) == 3
    assert lesson.turn_up_epoch(_history([1.0, 0.6, 0.5, 0.4, 0.3])) is None  # still falling
    # noise within 2% of the low is not a turn
    assert lesson.turn_up_epoch(_history([1.0, 0.5, 0.505, 0.502])) is None
    assert lesson.turn_up_epoch(_history([1.0, float("nan"), 0.5])) is None


def test_gap_is_validation_minus_training():
    h = _history([1.0, 0.8, 0.9], train=[0.9, 0.5, 0.2])
    assert lesson.generalisation_gap(h) == 0.9 - 0.2
    assert lesson.generalisation_gap(h, epoch=2) == 0.8 - 0.5


def test_overfitting_summary_per_model():
    a = _history([1.0, 0.5, 0.8], train=[0.9, 0.4, 0.1], run_id="a", model="dense")
    b = _history([1.0, 0.6, 0.9], train=[0.9, 0.4, 0.3], run_id="b", model="dense")
    c = _history([1.0, 0.7, 0.6], train=[0.9, 0.6, 0.5], run_id="c", model="conv")
    s = lesson.overfitting_summary(pd.concat([a, b, c]), ["model"]).set_index("model")
    assert s.loc["dense", "turn_up_epoch"] == 2 and s.loc["dense", "turned_up"] == 2
    assert math.isclose(s.loc["dense", "final_gap"], ((0.8 - 0.1) + (0.9 - 0.3)) / 2)
    assert math.isnan(s.loc["conv", "turn_up_epoch"]) and s.loc["conv", "turned_up"] == 0
    assert s.loc["conv", "runs"] == 1


def test_learning_curve_and_the_fraction_that_reaches_a_target():
    runs = pd.DataFrame({
        "model": ["conv"] * 4 + ["dense"] * 4,
        "frac": [0.1, 0.1, 1.0, 1.0] * 2,
        "acc": [0.90, 0.92, 0.97, 0.99, 0.80, 0.82, 0.96, 0.98],
    })
    curve = lesson.learning_curve(runs, "frac", "acc", ["model"])
    first = curve.iloc[0]
    assert (first["model"], first["frac"], first["count"]) == ("conv", 0.1, 2)
    assert math.isclose(first["mean"], 0.91)
    assert first["low"] < 0.91 < first["high"]
    reach = lesson.fraction_to_reach(curve, "frac", 0.9, ["model"]).set_index("model")
    assert reach.loc["conv", "frac"] == 0.1 and reach.loc["dense", "frac"] == 1.0
