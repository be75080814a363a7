"""The one module that writes to MLflow.

A run is a context manager: it starts a run with its tags and params, buffers per-epoch
metrics and flushes them with one `log_batch` call at most every `flush_every_s` seconds
(so a crash loses at most that much history), and always ends the run with a status:
FINISHED, FAILED (exception, divergence) or KILLED (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import math
import os
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from harness.config import TrackingConfig

DEFAULT_STORE = Path("results") / "mlflow.db"
ARTIFACT_ROOT = Path("results") / "mlartifacts"
MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
MAX_METRICS_PER_BATCH = 1000


def resolve_uri(cfg: TrackingConfig) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else a SQLite file under results/."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def dashboard_command(uri: str) -> str:
    """The exact command that opens the MLflow UI on this store, bound to loopback."""
    if uri.startswith(("http://", "https://")):
        return f"open {uri} in a browser"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def _experiment_id(client, name: str, uri: str) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = None
    if uri.startswith("sqlite:///"):
        # artifacts beside the store, never in ./mlruns
        root = Path(uri[len("sqlite:///") :]).parent / "mlartifacts"
        location = (root / name).resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by a parallel job
        exp = client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class TrackedRun:
    """An MLflow run being written: buffered metrics, explicit flushes."""

    def __init__(self, client, run_id: str, flush_every_s: float) -> None:
        self.client, self.run_id, self.flush_every_s = client, run_id, flush_every_s
        self._pending: list = []
        self._last_flush = time.monotonic()

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Buffer one step's metrics; non-finite values are never logged."""
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), ts, step) for k, v in metrics.items() if _finite(v)]
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        while self._pending:
            chunk, self._pending = (
                self._pending[:MAX_METRICS_PER_BATCH],
                self._pending[MAX_METRICS_PER_BATCH:],
            )
            self.client.log_batch(self.run_id, metrics=chunk)
        self._last_flush = time.monotonic()

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            self.client.log_batch(self.run_id, params=items[i : i + MAX_PARAMS_PER_BATCH])

    def log_text(self, text: str, artifact_file: str) -> None:
        self.client.log_text(self.run_id, text, artifact_file)


class RunFailed(Exception):
    """Training ended without an exception but must be recorded FAILED (e.g. divergence)."""


@contextmanager
def tracked_run(
    cfg: TrackingConfig,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, str],
    config_yaml: str,
) -> Iterator[TrackedRun | None]:
    """Start a run; end it FINISHED, FAILED (with traceback) or KILLED, whatever happens."""
    if not cfg.enabled:
        yield None
        return
    from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

    uri = resolve_uri(cfg)
    client = _client(uri)
    exp_id = _experiment_id(client, cfg.experiment, uri)
    run = client.create_run(exp_id, run_name=run_name, tags={MLFLOW_RUN_NAME: run_name, **tags})
    tracked = TrackedRun(client, run.info.run_id, cfg.flush_every_s)
    status = "FINISHED"
    try:
        tracked.log_params(params)
        tracked.log_text(config_yaml, "config.yaml")
        yield tracked
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, SystemExit) else "FAILED"
        try:
            tracked.flush()
            tracked.set_tags({"error": f"{type(exc).__name__}: {exc}"[:5000]})
            tracked.log_text(traceback.format_exc(), "error/traceback.txt")
        except Exception:  # the store itself may be what failed; still try to end the run
            pass
        raise
    finally:
        try:
            tracked.flush()
        finally:
            client.set_terminated(tracked.run_id, status=status)
