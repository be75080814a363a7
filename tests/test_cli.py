"""End to end: the real Hydra CLI sweeping into a real SQLite store, read back by MLflow."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from tests.conftest import cli


def test_course_binary_sweep_lands_in_mlflow(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    epochs = 4
    proc = cli(
        "+experiment=course_binary",
        f"train.epochs={epochs}",
        "seed=0,1",
        f"tracking.uri={store}",
        "-m",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]

    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("course_binary")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], filter_string="tags.backend != ''")
    names = sorted(r.info.run_name for r in runs)
    assert names == [
        "keras-sigmoid-probs-adam-s0",
        "keras-sigmoid-probs-adam-s1",
        "lightning-sigmoid-probs-adam-s0",
        "lightning-sigmoid-probs-adam-s1",
    ]
    for r in runs:
        assert r.info.status == "FINISHED"
        history = client.get_metric_history(r.info.run_id, "train/loss")
        assert [m.step for m in history] == list(range(1, epochs + 1))
        for key in ("val/loss", "train/accuracy", "val/accuracy", "time/epoch_s", "time/eval_s"):
            assert len(client.get_metric_history(r.info.run_id, key)) == epochs, key
        for key in ("time/total_s", "time/first_epoch_s", "throughput/samples_per_s"):
            assert key in r.data.metrics, key
        assert r.data.params["train.epochs"] == str(epochs)
        assert r.data.params["model.hidden"] == "[25, 15]"
        for tag in ("backend", "git_commit", "hydra_overrides", "device", "config_hash"):
            assert r.data.tags.get(tag), tag
        assert r.data.tags["backend"] in r.info.run_name
        framework = "keras_version" if r.data.tags["backend"] == "keras" else "lightning_version"
        assert r.data.tags.get(framework)
        artifacts = [a.path for a in client.list_artifacts(r.info.run_id)]
        assert "config.yaml" in artifacts
