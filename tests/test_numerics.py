"""Softmax vs logits, measured (harness.run.numerics): the exact loss, the clipped share, and the
stress setting under which the probability form loses accuracy in every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.core.config import Task
from harness.run.numerics import clipped_fraction, exact_loss
from harness.run.train import run
from tests.conftest import make_spec

# Large logits: ReLU hidden layers (positively homogeneous) and inputs scaled x300.
STRESS = ("model=mlp_relu", "data.input_scale=300")


def test_exact_loss_is_cross_entropy_from_logits_without_overflow():
    z = np.array([[2.0], [-3.0], [1000.0]])
    y = np.array([[1.0], [0.0], [0.0]])
    expected = [math.log1p(math.exp(-2.0)), math.log1p(math.exp(-3.0)), 1000.0]
    assert exact_loss(Task.binary, y, z) == pytest.approx(np.mean(expected), rel=1e-12)

    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 800.0]])
    labels = np.array([0, 1])
    first = -math.log(math.exp(1.0) / (math.exp(1.0) + math.exp(2.0) + math.exp(3.0)))
    expected = (first + 800.0) / 2
    assert exact_loss(Task.multiclass, labels, logits) == pytest.approx(expected, rel=1e-12)


def test_clipped_fraction_counts_probabilities_at_or_beyond_the_bounds():
    p = np.array([0.0, 1e-8, 1e-7, 0.5, 1 - 1e-8, 1.0], dtype=np.float32)
    # float32 rounds 1 - 1e-8 to 1.0; 1e-7 sits on the bound, which the clip also maps to itself
    assert clipped_fraction(p, 1e-7) == pytest.approx(5 / 6)
    assert clipped_fraction(np.array([0.3, 0.7]), 1e-7) == 0.0


def _final_numerics(backend: str, overrides: tuple[str, ...], from_logits: bool) -> dict:
    spec = make_spec(
        f"backend={backend}", *overrides, f"model.from_logits={str(from_logits).lower()}",
        "train.epochs=5", "train.threads=1", "tracking.enabled=false",
    )
    return run(spec, log=lambda *a, **k: None).final


@pytest.mark.parametrize("backend", ["keras", "lightning", "numpy"])
@pytest.mark.parametrize(
    "task_overrides", [("data=digits_binary",), ("data=digits",)], ids=["binary", "multiclass"]
)
def test_under_stress_the_probability_form_loses_accuracy_in_every_backend(backend, task_overrides):
    probs = _final_numerics(backend, STRESS + task_overrides, from_logits=False)
    logits = _final_numerics(backend, STRESS + task_overrides, from_logits=True)
    # the logits form computes the loss to float32 rounding; the probability form clips
    assert logits["numerics/loss_abs_error"] < 1e-5
    assert probs["numerics/loss_abs_error"] > 0.1
    assert probs["numerics/loss_abs_error"] > 1e4 * logits["numerics/loss_abs_error"]
    assert probs["numerics/clipped_fraction"] > 0.3


def test_without_stress_both_forms_are_accurate():
    for from_logits in (False, True):
        final = _final_numerics("numpy", ("data=digits_binary",), from_logits)
        assert final["numerics/loss_abs_error"] < 1e-5
        assert final["numerics/clipped_fraction"] == 0.0


def test_regression_logs_no_numerics():
    spec = make_spec("backend=numpy", "data=diabetes", "train.epochs=2", "tracking.enabled=false")
    final = run(spec, log=lambda *a, **k: None).final
    assert not any(k.startswith("numerics/") for k in final)
