"""Each task's metrics against a small example worked out by hand (and by scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from harness.core.config import Task
from harness.core.metrics import task_metrics


def test_binary_accuracy_thresholds_probabilities_at_one_half():
    y = np.array([[1.0], [0.0], [1.0], [0.0], [1.0]])
    p = np.array([[0.9], [0.4], [0.3], [0.6], [0.5]])
    # right, right, wrong (0.3 < 0.5), wrong (0.6 >= 0.5), right (0.5 counts as 1)
    assert task_metrics(Task.binary, y, p) == {"accuracy": pytest.approx(3 / 5)}


def test_multiclass_accuracy_is_argmax_against_class_ids():
    y = np.array([0, 2, 1, 2])
    p = np.array(
        [
            [0.7, 0.2, 0.1],  # 0: right
            [0.1, 0.5, 0.4],  # 1: wrong (true 2)
            [0.2, 0.6, 0.2],  # 1: right
            [0.3, 0.3, 0.4],  # 2: right
        ]
    )
    got = task_metrics(Task.multiclass, y, p)
    assert got == {"accuracy": pytest.approx(3 / 4)}
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)))


def test_multilabel_subset_and_hamming_accuracy():
    y = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 0]], dtype=float)
    p = np.array(
        [
            [0.8, 0.2, 0.6],  # all 3 labels right
            [0.7, 0.9, 0.1],  # label 0 wrong
            [0.1, 0.4, 0.9],  # labels 0, 1, 2 all wrong
        ]
    )
    got = task_metrics(Task.multilabel, y, p)
    # exact match: 1 of 3 rows; per label: 3 + 2 + 0 = 5 of 9 labels right
    assert got["accuracy"] == pytest.approx(1 / 3)
    assert got["hamming_accuracy"] == pytest.approx(5 / 9)
    hard = (p >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, hard))
    assert got["hamming_accuracy"] == pytest.approx(1 - skm.hamming_loss(y, hard))
    assert set(got) == {"accuracy", "hamming_accuracy"}


def test_regression_mae_and_r2():
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    pred = np.array([[1.5], [2.0], [2.5], [5.0]])
    got = task_metrics(Task.regression, y, pred)
    # errors 0.5, 0, -0.5, 1 -> MAE 2/4; SS_res 1.5, SS_tot 5 (mean 2.5) -> R^2 1 - 0.3
    assert got == {"mae": pytest.approx(0.5), "r2": pytest.approx(0.7)}
    assert got["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))


def test_regression_accepts_flat_or_column_shapes_alike():
    y = np.array([0.5, 1.0, 3.0])
    pred = np.array([[0.0], [1.0], [2.0]])
    assert task_metrics(Task.regression, y, pred) == task_metrics(
        Task.regression, y.reshape(-1, 1), pred.reshape(-1)
    )


def test_perfect_and_constant_predictions():
    y = np.array([[2.0], [4.0]])
    assert task_metrics(Task.regression, y, y)["r2"] == pytest.approx(1.0)
    # predicting the mean explains nothing
    assert task_metrics(Task.regression, y, np.full_like(y, 3.0))["r2"] == pytest.approx(0.0)
    # constant targets: R^2 is 1 for an exact fit and 0 otherwise (scikit-learn's rule)
    flat = np.array([[1.0], [1.0]])
    assert task_metrics(Task.regression, flat, flat)["r2"] == skm.r2_score(flat, flat) == 1.0
    assert (
        task_metrics(Task.regression, flat, flat + 1)["r2"] == skm.r2_score(flat, flat + 1) == 0.0
    )
