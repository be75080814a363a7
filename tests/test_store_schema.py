"""A new SQLite store is a copy of an empty store made once per MLflow version: the same
schema, the same Default experiment as MLflow makes, and the first sweep does not wait."""

from __future__ import annotations

import sqlite3
import time

from mlflow.tracking import MlflowClient

from harness.store.migrate import ensure_schema


def _schema(path) -> tuple[list, list]:
    """Tables and indexes (each statement's lines as a set: MLflow's migrations write a
    table's constraints in an order that varies between processes), and the experiments."""
    with sqlite3.connect(path) as db:
        tables = sorted(
            (kind, name, sorted(line.strip(" ,\t") for line in (sql or "").splitlines()))
            for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master")
        )
        default = db.execute(
            "SELECT experiment_id, name, artifact_location, lifecycle_stage FROM experiments"
        ).fetchall()
    return tables, default


def test_a_new_store_copied_from_the_cache_is_the_store_mlflow_makes(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HARNESS_SCHEMA_CACHE", "0")
    ensure_schema(f"sqlite:///{tmp_path / 'mlflow_made.db'}")
    monkeypatch.setenv("HARNESS_SCHEMA_CACHE", "1")
    ensure_schema(f"sqlite:///{tmp_path / 'first.db'}")  # makes the cached empty store
    assert list((tmp_path / "cache" / "harness").glob("mlflow-*-empty.db"))
    t0 = time.perf_counter()
    ensure_schema(f"sqlite:///{tmp_path / 'copied.db'}")
    assert time.perf_counter() - t0 < 1.5  # a copy, not MLflow's migrations (seconds)
    assert _schema(tmp_path / "copied.db") == _schema(tmp_path / "mlflow_made.db")
    assert _schema(tmp_path / "copied.db")[1] == [
        (0, "Default", str(tmp_path / "mlruns" / "0"), "active")
    ]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'copied.db'}")
    exp = client.create_experiment("e")
    run = client.create_run(exp)
    client.log_param(run.info.run_id, "a", "1")
    assert client.get_run(run.info.run_id).data.params == {"a": "1"}
