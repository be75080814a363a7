"""A new store's schema, created once even when several sweeps open it at the same moment.

MLflow creates a new SQLite file's tables (and runs its alembic migrations) the first time a
process opens it. Two processes doing that at once clash: the loser fails with alembic's
"Online migration expected to match one row ... 0 found". A lock file beside the database
(`<file>.lock`, flock through `filelock`) lets one process create the schema while the others
wait, then find it made. A tracking server creates its own schema once, at its start.

Creating the schema runs every one of MLflow's migrations (2-6 s, a sweep's largest one-off
cost after its imports). A new store is therefore a copy of an empty store made once per
MLflow version in the user's cache (`~/.cache/harness`), its Default experiment given the
artifact folder and time MLflow itself would have given it; HARNESS_SCHEMA_CACHE=0 turns
that off.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

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
        path = sqlite_path(uri)
        if path is not None and (not path.exists() or path.stat().st_size == 0):
            _copy_template(path)
        for attempt in range(attempts):
            try:
                # a new client each try: a failed one keeps its half-initialised store
                MlflowClient(tracking_uri=uri).search_experiments(max_results=1)
                break
            except Exception:
                if attempt == attempts - 1:
                    raise
                time.sleep(2.0 * (attempt + 1))


def _template_path() -> Path | None:
    if os.environ.get("HARNESS_SCHEMA_CACHE", "1") == "0":
        return None
    from importlib.metadata import version

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "harness"
    return cache / f"mlflow-{version('mlflow')}-empty.db"


def _copy_template(path: Path) -> None:
    """Make the new store `path` a copy of the empty store of this MLflow version (made
    now if need be); on any failure leave it to MLflow to create (nothing copied)."""
    from mlflow.tracking import MlflowClient

    try:
        template = _template_path()
        if template is None:
            return
        template.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{template}.lock").acquire(timeout=300):
            if not template.exists():
                made = template.with_suffix(".new")
                made.unlink(missing_ok=True)
                MlflowClient(tracking_uri=f"sqlite:///{made}").search_experiments(max_results=1)
                made.replace(template)
            partial = path.with_name(path.name + ".new")
            shutil.copyfile(template, partial)
        now = int(time.time() * 1000)
        with sqlite3.connect(partial) as db:  # as MLflow makes it: ./mlruns/0 of this process
            db.execute(
                "UPDATE experiments SET artifact_location = ?, creation_time = ?, "
                "last_update_time = ? WHERE experiment_id = 0",
                (str(Path.cwd() / "mlruns" / "0"), now, now),
            )
        db.close()
        partial.replace(path)
    except Exception:  # MLflow creates it as it always did
        return
