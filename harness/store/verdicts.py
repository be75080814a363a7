"""A report's verdicts on its sweep's parent run, so the dashboard shows them."""

from __future__ import annotations

from harness.store.client import client_for, retry
from harness.store.writer import MAX_METRICS_PER_BATCH


def log_verdicts(uri: str, run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
    """Set tags `verdict/...` and log their numbers as metrics (step 0) on an existing run."""
    from mlflow.entities import Metric, RunTag

    client = client_for(uri)
    items = [RunTag(k, v) for k, v in sorted(tags.items())]
    for i in range(0, len(items), MAX_METRICS_PER_BATCH):
        batch = items[i : i + MAX_METRICS_PER_BATCH]
        retry(lambda batch=batch: client.log_batch(run_id, tags=batch))
    points = [Metric(k, v, 0, 0) for k, v in sorted(metrics.items())]
    for i in range(0, len(points), MAX_METRICS_PER_BATCH):
        batch = points[i : i + MAX_METRICS_PER_BATCH]
        retry(lambda batch=batch: client.log_batch(run_id, metrics=batch))
