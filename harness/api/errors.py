"""The API's one exception, and the settings it shares with the CLI (store, experiment)."""

from __future__ import annotations

from collections.abc import Sequence

HYDRA_HINT = "Set the environment variable HYDRA_FULL_ERROR=1 for a complete stack trace."


class HarnessError(ValueError):
    """What the CLI refuses (its exit 2 or Hydra's composition error), with the CLI's message.

    Raised before anything is written. `output` holds the command's whole output when the
    error came from one (a sweep or a report run as a subprocess).
    """

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message.strip())
        self.output = output


def hydra_message(exc: BaseException) -> str:
    """The text Hydra's CLI prints for a composition error: the message, then its causes."""
    parts, seen = [str(exc)], {id(exc)}
    cause = exc.__cause__
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        parts.append(str(cause))
        cause = cause.__cause__
    return "\n".join(p for p in parts if p)


def cli_message(output: str) -> str:
    """The CLI's error message in its output: from the sweep's refusal on, else all of it."""
    lines = [line for line in output.splitlines() if line.strip() != HYDRA_HINT]
    for i, line in enumerate(lines):
        if "invalid sweep:" in line or line.startswith("harness.report:"):
            return "\n".join(lines[i:]).strip()
    return "\n".join(lines).strip()


def override(overrides: Sequence[str], key: str) -> str | None:
    """The value the last `key=value` (or `+key=value`) override gives, unescaped."""
    for item in reversed(overrides):
        name, sep, value = item.lstrip("+~").partition("=")
        if sep and name == key:
            return value.replace("\\", "")
    return None


def store_uri(tracking_uri: str | None, overrides: Sequence[str] = ()) -> str:
    """Where the CLI would write: tracking.uri=, else tracking_uri (as $MLFLOW_TRACKING_URI),
    else the CLI's default ($MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db)."""
    from harness.core.config import TrackingConfig
    from harness.store import resolve_uri

    return override(overrides, "tracking.uri") or tracking_uri or resolve_uri(TrackingConfig())
