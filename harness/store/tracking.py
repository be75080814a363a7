"""The one module that writes to MLflow.

A run is a context manager: it starts a run with its tags and params, buffers per-epoch
metrics and flushes them with one `log_batch` call at most every `flush_every_s` seconds
(so a crash loses at most that much history), and always ends the run with a status:
FINISHED, FAILED (exception, divergence) or KILLED (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import re
import shlex
import socket
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar

from harness.core.config import TrackingConfig

DEFAULT_STORE = Path("results") / "mlflow.db"
ARTIFACT_ROOT = Path("results") / "mlartifacts"
MAX_PARAMS_PER_BATCH = 100  # MLflow's log_batch limits
MAX_METRICS_PER_BATCH = 1000


# `\\*` also catches Hydra's escaped form of an override, tracking.uri=http\://user\:secret@host,
# and that form inside JSON (http\\://...)
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*\\*://)[^/@\s]+@")


def redact(text: str) -> str:
    """Hide credentials in URIs (`postgresql://user:secret@host` -> `postgresql://***@host`).

    Every string this module writes (params, tags, artifacts) passes through here.
    """
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def resolve_uri(cfg: TrackingConfig) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else a SQLite file under results/."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def dashboard_command(uri: str) -> str:
    """The command that opens the MLflow UI on this store (harness.tools.dashboard, on 127.0.0.1)."""
    if uri.startswith(("http://", "https://")):
        return f"open {redact(uri)} in a browser"
    if uri == resolve_uri(TrackingConfig()):  # what the dashboard finds by itself, here
        return "python -m harness.dashboard"
    return f"python -m harness.dashboard --uri {shlex.quote(redact(uri))}"


class TrackingUnavailable(RuntimeError):
    """The tracking server cannot be reached: before a run starts, or gone during one."""


# MLflow's HTTP client retries a failed request 7 times with 2 s exponential backoff
# (~4 minutes) and waits 120 s for each answer. Harness processes ride out a ~30 s server
# restart instead (0+2+4+8+16 s of backoff) and fail the run after that; a value the user
# exported is kept.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "5",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    # MLflow prints "View run at <uri>" for server URIs, credentials included; we print our own
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
}


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _unreachable(uri: str, timeout_s: float) -> str | None:
    """Why GET /health fails (one try, no retries), or None when the server answers.

    Any HTTP answer but a 5xx counts as reachable (a 401 is MLflow's to explain).
    """
    import requests

    try:
        answer = requests.get(uri.rstrip("/") + "/health", timeout=timeout_s)
    except requests.Timeout:
        return f"no answer within {timeout_s:g} s"
    except requests.RequestException as exc:
        errno = re.search(r"\[Errno -?\d+\] [^\"')]+", str(exc))  # e.g. "[Errno 111] Connection refused"
        return redact(errno.group(0) if errno else f"{type(exc).__name__}: {exc}")[:300]
    return f"/health answered HTTP {answer.status_code}" if answer.status_code >= 500 else None


def check_server(uri: str, timeout_s: float = 5.0) -> None:
    """Seconds to a clear error, instead of minutes of MLflow's retries, when the server is down."""
    if is_server(uri) and (why := _unreachable(uri, timeout_s)):
        raise TrackingUnavailable(
            f"cannot reach the MLflow tracking server at {redact(uri)} ({why}); start it "
            "(README, 'Scaling out') or point tracking.uri / $MLFLOW_TRACKING_URI at a running one"
        )


def _server_lost(uri: str, run_name: str) -> TrackingUnavailable | None:
    """After a failure inside a run: the error to raise when the server is what went away."""
    why = _unreachable(uri, timeout_s=2.0)
    if why is None:
        return None
    return TrackingUnavailable(
        f"lost the MLflow tracking server at {redact(uri)} during run {run_name} ({why}); the run "
        "stays RUNNING there until the next sweep marks it KILLED: rerun the same command once "
        "the server is back to resume"
    )


ROLE_TAG = "harness.role"  # "job" for a training run, "sweep" for a sweep's parent run
PARENT_TAG = "mlflow.parentRunId"  # MLflow nests runs by this tag, across processes
HOST_TAG, PID_TAG = "harness.host", "harness.pid"
GPU_TAG = "cuda_visible_devices"


def process_tags() -> dict[str, str]:
    """Where the run lives: lets a later sweep tell a killed run from a live one."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


@functools.lru_cache(maxsize=8)
def _client(uri: str):
    """One client per store and process: a warm worker does not re-open the store per run."""
    from mlflow.tracking import MlflowClient

    # "Creating initial MLflow database tables..." (INFO, once per new store) is not news
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///") :]).parent.mkdir(parents=True, exist_ok=True)
    if is_server(uri):
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
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


T = TypeVar("T")


def _retry(call: Callable[[], T], attempts: int = 8) -> T:
    """SQLite under parallel writers may answer 'database is locked': back off and retry."""
    for i in range(attempts):
        try:
            return call()
        except Exception as exc:  # MlflowException or sqlalchemy OperationalError
            if "locked" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.05 * 2**i)
    raise AssertionError("unreachable")


def _finite(value: float) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class TrackedRun:
    """An MLflow run being written: buffered metrics, explicit flushes."""

    def __init__(self, client, run_id: str, flush_every_s: float) -> None:
        self.client, self.run_id, self.flush_every_s = client, run_id, flush_every_s
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
            _retry(lambda: self.client.log_batch(self.run_id, metrics=chunk))
        self._last_flush = time.monotonic()

    def set_tags(self, tags: dict[str, str]) -> None:
        from mlflow.entities import RunTag

        items = [RunTag(k, redact(str(v))) for k, v in tags.items()]
        _retry(lambda: self.client.log_batch(self.run_id, tags=items))

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(k, redact(str(v))[:6000]) for k, v in sorted(params.items())]
        for i in range(0, len(items), MAX_PARAMS_PER_BATCH):
            chunk = items[i : i + MAX_PARAMS_PER_BATCH]
            _retry(lambda: self.client.log_batch(self.run_id, params=chunk))

    def log_text(self, text: str, artifact_file: str) -> None:
        _retry(lambda: self.client.log_text(self.run_id, redact(text), artifact_file))

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
        experiment_id = _retry(lambda: self.client.get_run(self.run_id)).info.experiment_id
        logged = _retry(
            lambda: self.client.create_logged_model(
                experiment_id, name="model", source_run_id=self.run_id
            )
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
        self.set_tags({"model_uri": info.model_uri})
        return info.model_uri


class RunFailed(Exception):
    """Training ended without an exception but must be recorded FAILED (e.g. divergence)."""


@contextmanager
def tracked_run(
    cfg: TrackingConfig,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, str],
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
    client = _client(uri)
    exp_id = _retry(lambda: _experiment_id(client, cfg.experiment, uri))
    all_tags = {**process_tags(), ROLE_TAG: "job", **tags}
    if os.environ.get("CUDA_VISIBLE_DEVICES"):  # the GPU(s) this run was given (harness.sweep.gpus)
        all_tags[GPU_TAG] = os.environ["CUDA_VISIBLE_DEVICES"]
    if parent_run_id:
        all_tags[PARENT_TAG] = parent_run_id
    all_tags = {k: redact(str(v)) for k, v in all_tags.items()}
    run = _retry(lambda: client.create_run(exp_id, run_name=run_name, tags=all_tags))
    tracked = TrackedRun(client, run.info.run_id, cfg.flush_every_s)
    if on_started is not None:
        on_started(run.info.run_id, run_name)
    try:
        tracked.log_params(params)
        tracked.log_text(config_yaml, "config.yaml")
        tracked.seconds += time.perf_counter() - t0
        yield tracked
        tracked.flush()
        _retry(lambda: client.set_terminated(tracked.run_id, status="FINISHED"))
    except BaseException as exc:
        interrupted = isinstance(exc, (KeyboardInterrupt, SystemExit))
        lost = _server_lost(uri, run_name) if is_server(uri) else None
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
            tracked.set_tags({"error": f"{type(exc).__name__}: {exc}"[:5000]})
            tracked.log_text(traceback.format_exc(), "error/traceback.txt")
    except Exception:
        pass
    try:
        _retry(lambda: tracked.client.set_terminated(tracked.run_id, status=status))
    except Exception:  # the original exception is the one worth raising
        pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Sweep-level access to one MLflow experiment: created once before any job runs."""

    def __init__(self, cfg: TrackingConfig) -> None:
        self.uri = resolve_uri(cfg)
        check_server(self.uri)
        self.client = _client(self.uri)  # a new SQLite file gets its schema here, once
        self.experiment_id = _retry(lambda: _experiment_id(self.client, cfg.experiment, self.uri))

    def _search(self, filter_string: str) -> list:
        from mlflow.entities import ViewType

        runs, token = [], None
        while True:
            page = _retry(
                lambda: self.client.search_runs(
                    [self.experiment_id], filter_string, ViewType.ACTIVE_ONLY,
                    max_results=1000, page_token=token,
                )
            )
            runs += list(page)
            token = page.token
            if not token:
                return runs

    def finished_hashes(self) -> dict[str, str]:
        """config_hash -> run_id of FINISHED training runs (what a resumed sweep skips)."""
        runs = self._search(f"attributes.status = 'FINISHED' and tags.`{ROLE_TAG}` = 'job'")
        return {r.data.tags["config_hash"]: r.info.run_id for r in runs if "config_hash" in r.data.tags}

    def reap_stale(self) -> list[str]:
        """Mark KILLED the runs left RUNNING by a process of this host that no longer exists."""
        host = socket.gethostname()
        reaped = []
        for r in self._search("attributes.status = 'RUNNING'"):
            tags = r.data.tags
            pid = tags.get(PID_TAG, "")
            if tags.get(HOST_TAG) == host and pid.isdigit() and not _pid_alive(int(pid)):
                self.set_terminated(r.info.run_id, "KILLED")
                reaped.append(r.info.run_name)
        return reaped

    def start_sweep(self, name: str, tags: dict[str, str], params: dict[str, Any], texts: dict[str, str]) -> str:
        all_tags = {k: redact(str(v)) for k, v in {**process_tags(), ROLE_TAG: "sweep", **tags}.items()}
        run = _retry(lambda: self.client.create_run(self.experiment_id, run_name=name, tags=all_tags))
        tracked = TrackedRun(self.client, run.info.run_id, flush_every_s=0.0)
        tracked.log_params(params)
        for path, text in texts.items():
            tracked.log_text(text, path)
        return run.info.run_id

    def end_sweep(
        self, run_id: str, status: str, summary: dict[str, int], texts: dict[str, str],
        tags: dict[str, str] | None = None,
    ) -> None:
        tracked = TrackedRun(self.client, run_id, flush_every_s=0.0)
        tracked.log_metrics({f"sweep/{k}": v for k, v in summary.items()}, step=0)
        tracked.set_tags({**{f"sweep.{k}": str(v) for k, v in summary.items()}, **(tags or {})})
        for path, text in texts.items():
            tracked.log_text(text, path)
        self.set_terminated(run_id, status)

    def tag_values(self, run_ids: list[str], key: str) -> list[str | None]:
        """One tag of each of these runs (e.g. the parity verdicts of a sweep's jobs)."""
        values: list[str | None] = []
        for i in range(0, len(run_ids), 100):
            ids = ", ".join(f"'{r}'" for r in run_ids[i : i + 100])
            values += [r.data.tags.get(key) for r in self._search(f"attributes.run_id IN ({ids})")]
        return values

    def status(self, run_id: str) -> str:
        return _retry(lambda: self.client.get_run(run_id)).info.status

    def set_terminated(self, run_id: str, status: str) -> None:
        _retry(lambda: self.client.set_terminated(run_id, status=status))

    def running_children(self, parent_run_id: str) -> list[str]:
        runs = self._search(f"attributes.status = 'RUNNING' and tags.`{PARENT_TAG}` = '{parent_run_id}'")
        return [r.info.run_id for r in runs]


def attach_dir(uri: str, run_id: str, path: Path, artifact_path: str) -> None:
    """Upload the files of a local folder as artifacts of an existing run (e.g. a report)."""
    client = _client(uri)
    _retry(lambda: client.log_artifacts(run_id, str(path), artifact_path))
