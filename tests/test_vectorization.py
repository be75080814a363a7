"""Vectorization (harness.run.vectorization): the lesson's loop over neurons computes what the
matrix form and the frameworks compute, and runs are timed and tracked like any other."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from backends.numpy_backend import MLP
from harness.core.config import Activation
from harness.run.train import run
from harness.run.vectorization import dense, loop_forward, time_call
from tests.conftest import cli, make_spec

METRICS = (
    "time/loop_forward_ms",
    "time/forward_ms",
    "vectorization/speedup_vs_loop",
    "throughput/samples_per_s",
    "vectorization/max_abs_diff_vs_loop",
)


def test_dense_computes_one_neuron_at_a_time_what_the_matrix_form_computes():
    rng = np.random.default_rng(0)
    a, w, b = rng.normal(size=5), rng.normal(size=(5, 3)), rng.normal(size=3)
    np.testing.assert_allclose(dense(a, w, b, lambda z: z), a @ w + b, rtol=1e-12)


@pytest.mark.parametrize(
    "hidden,out", [(Activation.sigmoid, Activation.sigmoid), (Activation.relu, Activation.softmax),
                   (Activation.relu, Activation.linear)]
)
def test_the_loop_matches_the_vectorised_forward_pass(hidden, out):
    rng = np.random.default_rng(1)
    sizes = [6, 7, 5, 3]
    weights = [(rng.normal(size=(i, o)), rng.normal(size=o)) for i, o in itertools.pairwise(sizes)]
    x = rng.normal(size=(4, 6))
    expected = MLP([list(p) for p in weights], hidden, out).forward(x).output
    np.testing.assert_allclose(
        loop_forward(x, weights, [hidden, hidden, out]), expected, rtol=1e-12
    )


def test_time_call_repeats_until_the_budget_and_returns_the_median():
    calls = []
    median = time_call(lambda: calls.append(1), min_total_s=0.0, min_repeats=5)
    assert len(calls) == 6  # one warm-up, five timed
    assert 0 <= median < 0.01


def test_a_vectorization_run_trains_nothing_and_logs_its_timings(store):
    spec = make_spec(
        "backend=numpy", "mode=vectorization", "model.hidden=[64,64]", "train.batch_size=32",
        f"tracking.uri={store}", "tracking.experiment=vec_test",
    )
    result = run(spec, log=lambda *a, **k: None)
    assert result.run_name == "vectorization-matmul-w64x64-s0"
    client = MlflowClient(tracking_uri=store)
    (logged,) = client.search_runs([client.get_experiment_by_name("vec_test").experiment_id])
    assert logged.data.tags["mode"] == "vectorization"
    assert logged.data.tags["implementation"] == "matmul"
    assert set(METRICS) <= set(logged.data.metrics)
    assert not any(k.startswith(("train/", "val/")) for k in logged.data.metrics)
    m = logged.data.metrics
    assert m["vectorization/max_abs_diff_vs_loop"] < 1e-5  # float32: the same outputs
    # 32 examples x 129 neurons of Python against two matrix products: not a close call
    assert m["vectorization/speedup_vs_loop"] > 5
    assert m["vectorization/speedup_vs_loop"] == pytest.approx(
        m["time/loop_forward_ms"] / m["time/forward_ms"]
    )


@pytest.mark.slow  # the CLI path of every experiment file also runs in test_experiments
def test_the_vectorization_experiment_times_every_backend_through_the_cli(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = cli(
        "+experiment=vectorization", "model.hidden=[8,8]", f"tracking.uri={store}", "-m",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    client = MlflowClient(tracking_uri=store)
    runs = [
        r
        for r in client.search_runs([client.get_experiment_by_name("vectorization").experiment_id])
        if r.data.tags.get("mode") == "vectorization"
    ]
    assert {r.data.tags["implementation"] for r in runs} == {"matmul", "keras", "lightning"}
    for r in runs:
        assert r.info.status == "FINISHED"
        # every framework computes what the lesson's loop computes, from the same weights
        assert r.data.metrics["vectorization/max_abs_diff_vs_loop"] < 1e-5, r.info.run_name
        assert r.data.metrics["time/forward_ms"] > 0
