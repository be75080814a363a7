"""What a sweep reads back from its own runs, and notes it adds to its parent run: the final
metrics and tags of given runs (a tuned sweep's selection), tags and text on a run."""

from __future__ import annotations

from harness.store.names import ROLE_TAG
from harness.store.sweeps import Store
from harness.store.writer import TrackedRun

Final = tuple[dict[str, float], dict[str, str]]  # a run's metrics (last values), its tags


def final_runs(store: Store, run_ids: list[str]) -> dict[str, Final]:
    """run_id -> (its metrics' last logged values, its tags), for the runs the store has."""
    found: dict[str, Final] = {}
    for i in range(0, len(run_ids), 100):
        ids = ", ".join(f"'{r}'" for r in run_ids[i : i + 100])
        for run in store._search(f"attributes.run_id IN ({ids})"):
            found[run.info.run_id] = (dict(run.data.metrics), dict(run.data.tags))
    return found


def annotate(store: Store, run_id: str, tags: dict[str, str], texts: dict[str, str]) -> None:
    """Add tags and text artifacts to an existing run (e.g. a sweep's parent)."""
    tracked = TrackedRun(store.client, run_id, flush_every_s=0.0)
    tracked.set_tags(tags)
    for path, text in texts.items():
        tracked.log_text(text, path)


def latest_sweep(store: Store, tag: str | None = None) -> str | None:
    """The newest parent run of the store's experiment (carrying `tag`, if given)."""
    runs = store._search(f"tags.`{ROLE_TAG}` = 'sweep'")
    runs = [r for r in runs if tag is None or tag in r.data.tags]
    return max(runs, key=lambda r: r.info.start_time).info.run_id if runs else None


def job_runs(store: Store) -> list[dict]:
    """Every training run of the store's experiment, whatever its status: id, status, start
    time, params, tags and metrics (each metric's last value)."""
    return [
        {
            "run_id": r.info.run_id,
            "status": r.info.status,
            "start_time": r.info.start_time,
            "params": dict(r.data.params),
            "tags": dict(r.data.tags),
            "metrics": dict(r.data.metrics),
        }
        for r in store._search(f"tags.`{ROLE_TAG}` = 'job'")
    ]


def artifact_text(store: Store, run_id: str, path: str) -> str | None:
    """A text artifact of a run (e.g. a sweep's sweep.json), None if it has none."""
    import os
    import tempfile
    from pathlib import Path

    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return Path(store.client.download_artifacts(run_id, path, tmp)).read_text()
        except Exception:  # no such artifact (MlflowException, OSError)
            return None


def run_tags(store: Store, run_id: str) -> dict[str, str]:
    return dict(store.client.get_run(run_id).data.tags)
