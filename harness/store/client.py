"""The MLflow client, one per store and process, and the calls every reader and writer
shares: retries under SQLite's lock, experiment lookup, searches that page to the end."""

from __future__ import annotations

import functools
import importlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from harness.store.names import HOST_TAG, PID_TAG
from harness.store.uri import HTTP_DEFAULTS, is_server, sqlite_path

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

PAGE_SIZE = 1000  # runs per search request (MLflow's own maximum is 50,000)

# what the client and a SQLite store import on first use (~1.5 s): a warm worker imports
# them before its first job instead
_MODULES = ("mlflow.entities", "mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store")


def preload() -> None:
    """Import MLflow's client and SQL store now rather than in the first run."""
    for module in _MODULES:
        importlib.import_module(module)


@functools.lru_cache(maxsize=8)
def client_for(uri: str) -> MlflowClient:
    """One client per store and process: a warm worker does not re-open the store per run."""
    from mlflow.tracking import MlflowClient

    # "Creating initial MLflow database tables..." (INFO, once per new store) is not news
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    path = sqlite_path(uri)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.stat().st_size == 0:
            from harness.store.migrate import ensure_schema

            ensure_schema(uri)  # a new file: one process creates its tables, the others wait
    if is_server(uri):
        for key, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(key, value)
    return MlflowClient(tracking_uri=uri)


T = TypeVar("T")


def retry(call: Callable[[], T], attempts: int = 8) -> T:
    """SQLite under parallel writers may answer 'database is locked': back off and retry."""
    for i in range(attempts):
        try:
            return call()
        except Exception as exc:  # MlflowException or sqlalchemy OperationalError
            if "locked" not in str(exc) or i == attempts - 1:
                raise
            time.sleep(0.05 * 2**i)
    raise AssertionError("unreachable")


def experiment_id(mlflow_client: MlflowClient, name: str, uri: str) -> str:
    """The id of the experiment of this name, created (or restored) if need be."""
    from mlflow.exceptions import MlflowException

    exp = mlflow_client.get_experiment_by_name(name)
    if exp is not None:
        if exp.lifecycle_stage == "deleted":
            mlflow_client.restore_experiment(exp.experiment_id)
        return exp.experiment_id
    location = None
    path = sqlite_path(uri)
    if path is not None:  # artifacts beside the store, never in ./mlruns
        location = (path.parent / "mlartifacts" / name).resolve().as_uri()
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except MlflowException:  # created meanwhile by a parallel job
        exp = mlflow_client.get_experiment_by_name(name)
        if exp is None:
            raise
        return exp.experiment_id


def search_runs(
    mlflow_client: MlflowClient,
    experiment_ids: Iterable[str],
    filter_string: str = "",
    order_by: list[str] | None = None,
    page_size: int = PAGE_SIZE,
) -> list[Run]:
    """Every active run that matches, however many pages MLflow splits them into."""
    from mlflow.entities import ViewType

    ids = list(experiment_ids)
    runs: list[Run] = []
    token = None
    while True:
        page = retry(
            lambda token=token: mlflow_client.search_runs(
                ids, filter_string, ViewType.ACTIVE_ONLY,
                max_results=page_size, order_by=order_by, page_token=token,
            )
        )
        runs += list(page)
        token = page.token
        if not token:
            return runs


def process_tags() -> dict[str, str]:
    """Where the run lives: lets a later sweep tell a killed run from a live one."""
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(os.getpid())}


def attach_dir(uri: str, run_id: str, path: Path, artifact_path: str) -> None:
    """Upload the files of a local folder as artifacts of an existing run (e.g. a report)."""
    mlflow_client = client_for(uri)
    retry(lambda: mlflow_client.log_artifacts(run_id, str(path), artifact_path))
