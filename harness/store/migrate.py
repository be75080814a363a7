"""A new store's schema, created once even when several sweeps open it at the same moment.

MLflow creates a new SQLite file's tables (and runs its alembic migrations) the first time a
process opens it. Two processes doing that at once clash: the loser fails with alembic's
"Online migration expected to match one row ... 0 found". A lock file beside the database
(`<file>.lock`, flock through `filelock`) lets one process create the schema while the others
wait, then find it made. A tracking server creates its own schema once, at its start.
"""

from __future__ import annotations

import logging
import time

from filelock import FileLock

from harness.store.uri import sqlite_path


def lock_for(uri: str, suffix: str) -> FileLock | None:
    """A lock file beside a SQLite store (`<file><suffix>`); None for any other store."""
    path = sqlite_path(uri)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{path}{suffix}")


def ensure_schema(uri: str, timeout_s: float = 300.0, attempts: int = 6) -> None:
    """Open the store once under its lock, so that only one process creates its tables.

    A process that opens the file without this lock (an MLflow UI, a script) may still be
    migrating it: wait for it and try again rather than fail on its half-made schema.
    """
    from mlflow.tracking import MlflowClient

    lock = lock_for(uri, ".lock")
    if lock is None:
        return
    # "Creating initial MLflow database tables..." (INFO, once per new store) is not news
    for name in ("mlflow.store.db.utils", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    with lock.acquire(timeout=timeout_s):
        for attempt in range(attempts):
            try:
                # a new client each try: a failed one keeps its half-initialised store
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
                break
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(2.0 * (attempt + 1))
