"""Writing one run: a context manager that starts it with its tags and params, buffers
per-epoch metrics and flushes them with one `log_batch` call at most every `flush_every_s`
seconds (so a crash loses at most that much history), and always ends the run with a
status: FINISHED, FAILED (exception, divergence) or KILLED (Ctrl-C, SIGTERM).

The writes made while the run trains (its params, config file and datasets, the periodic
metric flushes) go to the store from a writer thread, in order, so that training does not
wait for them (a SQLite `log_batch` of a second's metrics takes tens of ms); an error there
is raised in the training thread at its next tracking call. The final flush, the end of the
run and every tag are written synchronously, after the writes before them."""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
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
    """An MLflow run being written: buffered metrics, writes in order on a writer thread."""

    def __init__(
        self,
        mlflow_client: MlflowClient,
        run_id: str,
        flush_every_s: float,
        background: bool = False,
    ) -> None:
        self.client, self.run_id, self.flush_every_s = mlflow_client, run_id, flush_every_s
        self.background = background  # False: every write done when its call returns
        self._pending: list = []
        self._last_flush = time.monotonic()
        # time the training thread spent in tracking calls (waiting for the writer thread
        # included): the run's tracking overhead
        self.seconds = 0.0
        self._tasks: queue.Queue[Callable[[], object] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, write: Callable[[], object]) -> None:
        """Run `write` on the writer thread, after the writes submitted before it (here and
        now unless the run writes in the background)."""
        self._raise_error()
        if not self.background:
            write()
            return
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._write, name="harness-tracking", daemon=True
            )
            self._thread.start()
        self._tasks.put(write)

    def _write(self) -> None:
        while (write := self._tasks.get()) is not None:
            try:
                if self._error is None:  # after a failed write, the rest would only fail too
                    write()
            except BaseException as exc:
                self._error = exc
            finally:
                self._tasks.task_done()
        self._tasks.task_done()

    def wait(self) -> None:
        """Every write submitted so far done; the first that failed raised here."""
        if self._thread is not None:
            self._tasks.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def close(self) -> None:
        """Stop the writer thread once its writes are done (errors are no longer raised)."""
        if self._thread is not None:
            self._tasks.put(None)
            self._thread.join()
            self._thread = None

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        """Buffer one step's metrics; non-finite values are never logged."""
        from mlflow.entities import Metric

        t0 = time.perf_counter()
        ts = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), ts, step) for k, v in metrics.items() if _finite(v)]
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            chunk, self._pending = self._pending, []
            self._last_flush = time.monotonic()
            self.submit(lambda: self._log_metrics(chunk))
        self.seconds += time.perf_counter() - t0

    def flush(self) -> None:
        """Every metric so far written, and every write before them done."""
        t0 = time.perf_counter()
        try:
            self.wait()
            chunk, self._pending = self._pending, []
            self._log_metrics(chunk)
            self._last_flush = time.monotonic()
        finally:
            self.seconds += time.perf_counter() - t0

    def _log_metrics(self, metrics: list) -> None:
        for i in range(0, len(metrics), MAX_METRICS_PER_BATCH):
            chunk = metrics[i : i + MAX_METRICS_PER_BATCH]
            retry(lambda chunk=chunk: self.client.log_batch(self.run_id, metrics=chunk))

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        self.wait()
        items = [RunTag(k, redact(str(v))) for k, v in tags.items()]
        retry(lambda: self.client.log_batch(self.run_id, tags=items))

    def log_params(self, params: dict[str, Any]) -> None:
        """Write the params (on the writer thread: the run goes on meanwhile)."""
        from mlflow.entities import Param

        items = [Param(k, redact(str(v))[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            chunk = items[i : i + MAX_PARAMS_PER_BATCH]
            self.submit(
                lambda chunk=chunk: retry(lambda: self.client.log_batch(self.run_id, params=chunk))
            )

    def log_text(self, text: str | Callable[[], str], artifact_file: str) -> None:
        """Write a text artifact (on the writer thread); `text` may be made there too."""

        def write() -> None:
            body = redact(text() if callable(text) else text)
            retry(lambda: self.client.log_text(self.run_id, body, artifact_file))

        self.submit(write)

    def log_model(self, model: Any, flavor: str, example: Any) -> str:
        """Save a trained model with MLflow's own flavour ("keras", "pytorch") as this run's
        model "model", loadable with mlflow.<flavor>.load_model or mlflow.pyfunc.load_model
        (f"runs:/{run_id}/model"); `example` (a few inputs) gives its input signature.
        Returns the model's URI, also tagged `model_uri` on the run."""
        import importlib

        from mlflow.models import Model, infer_signature
        from mlflow.tracking._tracking_service.utils import _use_tracking_uri

        self.wait()
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
    config_yaml: str | Callable[[], str],
    parent_run_id: str | None = None,
    on_started: Callable[[str, str], None] | None = None,
) -> Iterator[TrackedRun | None]:
    """Start a run; end it FINISHED, FAILED (with traceback) or KILLED, whatever happens.

    config_yaml: the config artifact's text, or a function that makes it (on the writer
    thread)."""
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
    tracked = TrackedRun(mlflow_client, run.info.run_id, cfg.flush_every_s, background=True)
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
    finally:
        tracked.close()


def _end_after_error(tracked: TrackedRun, exc: BaseException, status: str) -> None:
    """Record what went wrong and end the run; the store itself may be what failed."""
    try:
        tracked.flush()
    except Exception:
        pass  # the write that failed may be what the run failed of
    try:
        if status == "FAILED":
            tracked.set_tags({ERROR_TAG: f"{type(exc).__name__}: {exc}"[:5000]})
            tracked.log_text(traceback.format_exc(), TRACEBACK_ARTIFACT)
            tracked.wait()
    except Exception:
        pass
    try:
        retry(lambda: tracked.client.set_terminated(tracked.run_id, status=status))
    except Exception:  # the original exception is the one worth raising
        pass
