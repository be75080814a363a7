"""A run measures what it spends outside its epochs, and logs it with its summary."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from harness.run.train import run
from tests.conftest import make_spec

PARTS = (
    "time/prepare_s", "time/backend_setup_s", "time/tracking_start_s", "time/build_s",
    "time/between_epochs_s", "time/fit_end_s",
)


@pytest.mark.parametrize("backend", ["numpy", "keras"])
def test_a_run_logs_its_time_outside_epochs_and_where_it_went(store, backend):
    spec = make_spec(
        f"backend={backend}", "train.epochs=3", f"tracking.uri={store}", "tracking.experiment=t"
    )
    result = run(spec, log=lambda *a, **k: None)
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("t")
    (logged,) = client.search_runs([exp.experiment_id])
    metrics = logged.data.metrics
    outside, total = metrics["time/outside_epochs_s"], result.final["time/total_s"]
    assert outside == pytest.approx(result.final["time/outside_epochs_s"])
    # data preparation happens before time/total_s starts; the rest of outside lies within it
    assert 0 <= outside < total + metrics["time/prepare_s"]
    epochs = [m.value for m in client.get_metric_history(logged.info.run_id, "time/epoch_s")]
    evals = [m.value for m in client.get_metric_history(logged.info.run_id, "time/eval_s")]
    assert outside + sum(epochs) + sum(evals) == pytest.approx(
        total + metrics["time/prepare_s"], rel=1e-6
    )
    # the breakdown adds up to the whole, and each part is a time (the last part is a
    # remainder: clocks read a few microseconds apart may leave it just below zero)
    assert sum(metrics[k] for k in PARTS) == pytest.approx(outside, rel=1e-6)
    assert all(metrics[k] >= 0 for k in PARTS if k != "time/between_epochs_s")
    assert metrics["time/between_epochs_s"] > -1e-3
