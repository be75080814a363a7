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


def test_writes_on_the_writer_thread_all_land_in_order_before_the_run_ends(store):
    # a flush after every epoch: the most writes in flight while the run trains
    spec = make_spec(
        "backend=numpy", "train.epochs=6", "tracking.flush_every_s=0", f"tracking.uri={store}",
        "tracking.experiment=w",
    )
    run(spec, log=lambda *a, **k: None)
    client = MlflowClient(tracking_uri=store)
    (logged,) = client.search_runs([client.get_experiment_by_name("w").experiment_id])
    assert logged.info.status == "FINISHED"
    history = client.get_metric_history(logged.info.run_id, "train/loss")
    assert [m.step for m in history] == [1, 2, 3, 4, 5, 6]
    assert logged.data.params["train.epochs"] == "6"
    assert {d.dataset.name for d in logged.inputs.dataset_inputs} == {"digits_binary"}
    assert "config.yaml" in [a.path for a in client.list_artifacts(logged.info.run_id)]


def test_a_write_that_fails_on_the_writer_thread_fails_the_run_with_its_error(store):
    from harness.store import tracked_run

    spec = make_spec(f"tracking.uri={store}", "tracking.experiment=wf")

    def broken() -> None:
        raise RuntimeError("the store refused this write")

    with pytest.raises(RuntimeError, match="refused"):
        with tracked_run(spec.tracking, "r", {}, {"a": 1}, "a: 1\n") as tracked:
            tracked.submit(broken)
            tracked.log_metrics({"train/loss": 1.0}, step=1)
            tracked.wait()  # the training thread's next tracking call raises it
    client = MlflowClient(tracking_uri=store)
    (logged,) = client.search_runs([client.get_experiment_by_name("wf").experiment_id])
    assert logged.info.status == "FAILED"
    assert "refused" in logged.data.tags["error"]
    assert logged.data.params == {"a": "1"}  # written before the failed write
