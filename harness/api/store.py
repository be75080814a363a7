"""The API's one MLflow reader: a sweep's parent run, its plan and its runs, as plain data.

harness.store has no reader yet (it writes); this is the one function to re-point at it.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.api.errors import HarnessError

ROLE, PARENT = "harness.role", "mlflow.parentRunId"  # the tags harness.store.tracking writes


@dataclass
class StoredRun:
    run_id: str
    run_name: str
    status: str
    parent_id: str
    config_hash: str
    overrides: list[str]
    metrics: dict[str, float]
    params: dict[str, str]
    start_ms: int
    # metric -> [(step, value)], step = epoch
    history: dict[str, list[tuple[int, float]]] = field(default_factory=dict)


@dataclass
class StoredSweep:
    experiment: str
    uri: str
    parent_id: str
    parent_name: str
    parent_status: str
    swept: list[str]  # the keys of the experiment's hydra.sweeper.params
    plan: list[dict] | None  # sweep.json's jobs: run_name, config_hash, overrides
    runs: list[StoredRun]  # the parent's children and the FINISHED runs its plan names


def _known_experiments() -> list[str]:
    from harness.core.paths import EXPERIMENTS_DIR

    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def read_sweep(
    uri: str,
    experiment: str,
    parent_id: str | None = None,
    started_after_ms: int | None = None,
    history: Sequence[str] | bool = False,
) -> StoredSweep:
    """The latest sweep of an MLflow experiment (or parent_id's, or the latest started after
    started_after_ms); with history, the per-epoch values of those metrics (True: all)."""
    from mlflow.entities import ViewType
    from mlflow.tracking import MlflowClient

    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        raise HarnessError(f"no MLflow store at {uri}; run a sweep first or pass tracking_uri=")
    client = MlflowClient(tracking_uri=uri)  # reads only: the file exists, its schema too
    exp = client.get_experiment_by_name(experiment)
    if exp is None or exp.lifecycle_stage != "active":
        if experiment in _known_experiments():
            raise HarnessError(
                f"experiment '{experiment}' has no runs in {uri} yet; run its sweep first: "
                f"harness.sweep('{experiment}')"
            )
        raise HarnessError(
            f"unknown experiment '{experiment}': not in {uri} and not in conf/experiment/ "
            f"({', '.join(_known_experiments())})"
        )

    def search(filter_string: str, limit: int | None = None) -> list:
        found, token = [], None
        while True:
            page = client.search_runs(
                [exp.experiment_id], filter_string, ViewType.ACTIVE_ONLY,
                max_results=limit or 1000, page_token=token,
                order_by=["attributes.start_time DESC", "attributes.run_id ASC"],
            )
            found += list(page)
            token = page.token
            if limit or not token:
                return found

    if parent_id:
        parent = client.get_run(parent_id)
    else:
        after = f" and attributes.start_time >= {started_after_ms}" if started_after_ms else ""
        parents = search(f"tags.`{ROLE}` = 'sweep'{after}", limit=1)
        if not parents:
            raise HarnessError(
                f"experiment '{experiment}' in {uri} has no sweep"
                + (" started by this call" if started_after_ms else "")
                + f"; run one: harness.sweep('{experiment}')"
            )
        parent = parents[0]
    pid = parent.info.run_id
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar on stderr
    with tempfile.TemporaryDirectory() as tmp:
        try:
            plan = json.loads(Path(client.download_artifacts(pid, "sweep.json", tmp)).read_text())
        except Exception:  # a sweep without its plan: its children are its jobs
            plan = None
    planned = {j["config_hash"] for j in plan["jobs"]} if plan else set()
    runs = []
    for r in search(f"tags.`{ROLE}` = 'job'"):
        tags = r.data.tags
        mine = tags.get(PARENT) == pid
        if mine or (r.info.status == "FINISHED" and tags.get("config_hash") in planned):
            runs.append(StoredRun(
                r.info.run_id, r.info.run_name, r.info.status, tags.get(PARENT, ""),
                tags.get("config_hash", ""), tags.get("hydra_overrides", "").split(),
                dict(r.data.metrics), dict(r.data.params), r.info.start_time or 0,
            ))
    if history:
        for run in runs:
            keys = run.metrics if history is True else history
            for key in keys:
                points = client.get_metric_history(run.run_id, key)
                by_step = {}  # a step logged twice keeps its latest value
                for m in sorted(points, key=lambda m: (m.step, m.timestamp)):
                    by_step[m.step] = m.value
                run.history[key] = sorted(by_step.items())
    swept = [k[len("sweep.params.") :] for k in parent.data.params if k.startswith("sweep.params.")]
    return StoredSweep(
        experiment, uri, pid, parent.info.run_name, parent.info.status, swept,
        plan["jobs"] if plan else None, runs,
    )
