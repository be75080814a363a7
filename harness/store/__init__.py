"""The one owner of MLflow: nothing outside this package imports mlflow.

- `uri`: where the store is (resolve_uri, redact, server checks, the dashboard command);
- `names`: every tag name and run role, and the search filter built from them;
- `client`: the client per store, retries, experiment lookup, searches that page to the end;
- `writer`: one run as a context manager (`tracked_run`) with batched metrics;
- `sweeps`: a sweep's parent run, resume and clean-up (`Store`);
- `reader`: read-only access for reports, the dashboard and the benchmarks (`Reader`).
"""

from harness.store.client import (
    PAGE_SIZE,
    attach_dir,
    client_for,
    experiment_id,
    preload,
    process_tags,
    retry,
    search_runs,
)
from harness.store.names import (
    CONFIG_ARTIFACT,
    CONFIG_HASH_TAG,
    DIVERGED_TAG,
    ERROR_TAG,
    GPU_TAG,
    HOST_TAG,
    MLFLOW_DEFAULT_EXPERIMENT,
    MODEL_URI_TAG,
    NOTE_TAG,
    OVERRIDES_TAG,
    PARENT_TAG,
    PID_TAG,
    ROLE_JOB,
    ROLE_SWEEP,
    ROLE_TAG,
    SWEEP_PLAN_ARTIFACT,
    TRACEBACK_ARTIFACT,
    run_filter,
)
from harness.store.reader import Reader
from harness.store.sweeps import Store
from harness.store.uri import (
    DEFAULT_STORE,
    TrackingUnavailable,
    check_server,
    dashboard_command,
    is_server,
    redact,
    resolve_uri,
    sqlite_path,
    store_exists,
    where_logged,
)
from harness.store.writer import RunFailed, TrackedRun, tracked_run

__all__ = [
    "CONFIG_ARTIFACT",
    "CONFIG_HASH_TAG",
    "DEFAULT_STORE",
    "DIVERGED_TAG",
    "ERROR_TAG",
    "GPU_TAG",
    "HOST_TAG",
    "MLFLOW_DEFAULT_EXPERIMENT",
    "MODEL_URI_TAG",
    "NOTE_TAG",
    "OVERRIDES_TAG",
    "PAGE_SIZE",
    "PARENT_TAG",
    "PID_TAG",
    "ROLE_JOB",
    "ROLE_SWEEP",
    "ROLE_TAG",
    "SWEEP_PLAN_ARTIFACT",
    "TRACEBACK_ARTIFACT",
    "Reader",
    "RunFailed",
    "Store",
    "TrackedRun",
    "TrackingUnavailable",
    "attach_dir",
    "check_server",
    "client_for",
    "dashboard_command",
    "experiment_id",
    "is_server",
    "preload",
    "process_tags",
    "redact",
    "resolve_uri",
    "retry",
    "run_filter",
    "search_runs",
    "sqlite_path",
    "store_exists",
    "tracked_run",
    "where_logged",
]
