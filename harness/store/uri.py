"""Where the MLflow store is: the URI harness resolves, its redaction, and whether a tracking
server answers (a clear error in seconds, instead of minutes of MLflow's retries)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from harness.core.config import TrackingConfig

DEFAULT_STORE = Path("results") / "mlflow.db"

# `\\*` also catches Hydra's escaped form of an override, tracking.uri=http\://user\:secret@host,
# and that form inside JSON (http\\://...)
_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*\\*://)[^/@\s]+@")


def redact(text: str) -> str:
    """Hide credentials in URIs (`postgresql://user:secret@host` -> `postgresql://***@host`).

    Every string harness.store writes (params, tags, artifacts) passes through here.
    """
    return _CREDENTIALS.sub(r"\g<scheme>***@", text)


def resolve_uri(cfg: TrackingConfig) -> str:
    """tracking.uri, else $MLFLOW_TRACKING_URI, else a SQLite file under results/."""
    if cfg.uri:
        return cfg.uri
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return f"sqlite:///{DEFAULT_STORE.resolve()}"


def is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def sqlite_path(uri: str) -> Path | None:
    """The file of a SQLite store, None for any other kind."""
    return Path(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else None


def store_exists(uri: str) -> bool:
    """False only for a SQLite store whose file is not there (a server is asked when used)."""
    path = sqlite_path(uri)
    return path is None or path.exists()


def dashboard_command(uri: str) -> str:
    """The command that opens the MLflow UI on this store (harness.tools.dashboard)."""
    if is_server(uri):
        return f"open {redact(uri)} in a browser"
    if uri == resolve_uri(TrackingConfig()):  # what the dashboard finds by itself, here
        return "python -m harness.dashboard"
    return f"python -m harness.dashboard --uri {shlex.quote(redact(uri))}"


def where_logged(cfg: TrackingConfig, run_id: str) -> str:
    """Where a run was recorded and how to look at it: the last lines of a single run."""
    uri = resolve_uri(cfg)
    return (
        f"logged to MLflow experiment '{cfg.experiment}' as run {run_id} ({redact(uri)})\n"
        f"dashboard: {dashboard_command(uri)}"
    )


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
        # e.g. "[Errno 111] Connection refused"
        errno = re.search(r"\[Errno -?\d+\] [^\"')]+", str(exc))
        return redact(errno.group(0) if errno else f"{type(exc).__name__}: {exc}")[:300]
    return f"/health answered HTTP {answer.status_code}" if answer.status_code >= 500 else None


def check_server(uri: str, timeout_s: float = 5.0) -> None:
    """Seconds to a clear error, instead of minutes of MLflow's retries, when the server is down."""
    if is_server(uri) and (why := _unreachable(uri, timeout_s)):
        raise TrackingUnavailable(
            f"cannot reach the MLflow tracking server at {redact(uri)} ({why}); start it "
            "(README, 'Scaling out') or point tracking.uri / $MLFLOW_TRACKING_URI at a running one"
        )


def server_lost(uri: str, run_name: str) -> TrackingUnavailable | None:
    """After a failure inside a run: the error to raise when the server is what went away."""
    if not is_server(uri):
        return None
    why = _unreachable(uri, timeout_s=2.0)
    if why is None:
        return None
    return TrackingUnavailable(
        f"lost the MLflow tracking server at {redact(uri)} during run {run_name} ({why}); the run "
        "stays RUNNING there until the next sweep marks it KILLED: rerun the same command once "
        "the server is back to resume"
    )
