"""Writing one run: a context manager that starts it with its tags and params, buffers
per-epoch metrics and flushes them with one `log_batch` call at most every `flush_every_s`
seconds (so a crash loses at most that much history), and always ends the run with a
status: FINISHED, FAILED (exception, divergence) or KILLED (Ctrl-C, SIGTERM)."""

from __future__ import annotations

import logging
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from harness.core.config import TrackingConfig
from harness.store.client import client_for, experiment_id, process_tags, retry
from harness.store.names import (
    CONFIG_ARTIFACT,
    ERROR_TAG,
    GPU_TAG,
    MODEL_URI_TAG,
    PARENT_TAG,
    ROLE_JOB,
    ROLE_TAG,
    TRACEBACK_ARTIFACT,
)
from harness.store.uri import check_server, redact, resolve_uri, server_lost

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
MAX_METRICS_PER_BATCH = 1000


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class TrackedRun:
    """An MLflow run being written: buffered metrics, explicit flushes."""

    def __init__(self, mlflow_client: MlflowClient, run_id: str, flush_every_s: float) -> None:
        self.client, self.run_id, self.flush_every_s = mlflow_client, run_id, flush_every_s
        self._pending: list = []
        self._last_flush = time.monotonic()
        self.seconds = 0.0  # time spent in tracking calls: the run's tracking overhead

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Buffer one step's metrics; non-finite values are never logged."""
        from mlflow.entities import Metric

        t0 = time.perf_counter()
        ts = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), ts, step) for k, v in metrics.items() if _finite(v)]
        self.seconds += time.perf_counter() - t0
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def flush(self) -> None:
        t0 = time.perf_counter()
        self._flush()
        self.seconds += time.perf_counter() - t0

    def _flush(self) -> None:
        while self._pending:
            chunk, self._pending = (
                self._pending[:MAX_METRICS_PER_BATCH],
                self._pending[MAX_METRICS_PER_BATCH:],
            )
            retry(lambda chunk=chunk: self.client.log_batch(self.run_id, metrics=chunk))
        self._last_flush = time.monotonic()

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, redact(str(v))) for k, v in tags.items()]
        retry(lambda: self.client.log_batch(self.run_id, tags=items))

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, redact(str(v))[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            chunk = items[i : i + MAX_PARAMS_PER_BATCH]
            retry(lambda chunk=chunk: self.client.log_batch(self.run_id, params=chunk))

    def log_text(self, text: str, artifact_file: str) -> None:
        retry(lambda: self.client.log_text(self.run_id, redact(text), artifact_file))

    def log_model(self, model: Any, flavor: str, example: Any) -> str:
        """Save a trained model with MLflow's own flavour ("keras", "pytorch") as this run's
        model "model", loadable with mlflow.<flavor>.load_model or mlflow.pyfunc.load_model
        (f"runs:/{run_id}/model"); `example` (a few inputs) gives its input signature.
        Returns the model's URI, also tagged `model_uri` on the run."""
        import importlib

        from mlflow.models import Model, infer_signature
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        module = importlib.import_module(f"mlflow.{flavor}")
        # it warns that torch's "+cpu" build label is left out of the requirements: expected
        logging.getLogger("mlflow.utils.requirements_utils").setLevel(logging.ERROR)
        kwargs: dict[str, Any] = {"signature": infer_signature(example)}
        if flavor == "pytorch":  # torch's pt2 export traces the model with an example
            kwargs.update(pytorch_model=model, input_example=example)
        else:  # (mlflow 3.17's keras flavour fails to save an input example)
            kwargs.update(model=model)
        # created here, in the run's experiment: Model.log alone would put it in the active
        # (default) experiment, where `runs:/<run_id>/model` does not find it
        exp_id = retry(lambda: self.client.get_run(self.run_id)).info.experiment_id
        logged = retry(
            lambda: self.client.create_logged_model(exp_id, name="model", source_run_id=self.run_id)
        )
        # Model.log writes through the process-wide tracking URI: point it at this store for
        # the call only (MLflow's own helper restores it exactly, unset included)
        with _use_tracking_uri(self.client.tracking_uri):
            info = Model.log(
                artifact_path=None,  # deprecated in favour of name, still a required argument
                name="model",
                flavor=module,
                run_id=self.run_id,
                model_id=logged.model_id,
                # the flavour's own list: inferring it would load the model in a subprocess
                pip_requirements=module.get_default_pip_requirements(),
                **kwargs,
            )
        self.set_tags({MODEL_URI_TAG: info.model_uri})
        return info.model_uri


class RunFailed(Exception):
    """Training ended without an exception but must be recorded FAILED (e.g. divergence)."""


@contextmanager
def tracked_run(
    cfg: TrackingConfig,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, Any],
    config_yaml: str,
    parent_run_id: str | None = None,
    on_started: Callable[[str, str], None] | None = None,
) -> Iterator[TrackedRun | None]:
    """Start a run; end it FINISHED, FAILED (with traceback) or KILLED, whatever happens."""
    if not cfg.enabled:
        yield None
        return
    t0 = time.perf_counter()
    uri = resolve_uri(cfg)
    check_server(uri)  # before training: a clear error now, not after minutes of retries
    mlflow_client = client_for(uri)
    exp_id = retry(lambda: experiment_id(mlflow_client, cfg.experiment, uri))
    all_tags = {**process_tags(), ROLE_TAG: ROLE_JOB, **tags}
    if os.environ.get("CUDA_VISIBLE_DEVICES"):  # the GPU(s) this run was given
        all_tags[GPU_TAG] = os.environ["CUDA_VISIBLE_DEVICES"]
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    all_tags = {k: redact(str(v)) for k, v in all_tags.items()}
    run = retry(lambda: mlflow_client.create_run(exp_id, run_name=run_name, tags=all_tags))
    tracked = TrackedRun(mlflow_client, run.info.run_id, cfg.flush_every_s)
    if on_started is not None:
        on_started(run.info.run_id, run_name)
    try:
        tracked.log_params(params)
        tracked.log_text(config_yaml, CONFIG_ARTIFACT)
        tracked.seconds += time.perf_counter() - t0
        yield tracked
        tracked.flush()
        retry(lambda: mlflow_client.set_terminated(tracked.run_id, status="FINISHED"))
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        lost = server_lost(uri, run_name)
        if lost is not None:  # nothing more can be written: say so instead of retrying
            if interrupted:
                raise
            raise lost from exc
        _end_after_error(tracked, exc, "KILLED" if interrupted else "FAILED")
        raise


def _end_after_error(tracked: TrackedRun, exc: BaseException, status: str) -> None:
    """Record what went wrong and end the run; the store itself may be what failed."""
    try:
        tracked.flush()
        if status == "FAILED":
            tracked.set_tags({ERROR_TAG: f"{type(exc).__name__}: {exc}"[:5000]})
            tracked.log_text(traceback.format_exc(), TRACEBACK_ARTIFACT)
    except Exception:
        pass
    try:
        retry(lambda: tracked.client.set_terminated(tracked.run_id, status=status))
    except Exception:  # the original exception is the one worth raising
        pass
