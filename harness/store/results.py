"""What a sweep reads back from its own runs, and notes it adds to its parent run: the final
metrics and tags of given runs (a tuned sweep's selection), tags and text on a run."""

from __future__ import annotations

from harness.store.tracking import Store, TrackedRun

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
