"""The API's one MLflow reader: a sweep's parent run, its plan and its runs, as plain data.

It reads through harness.store.Reader, the store's one reading interface.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.api.errors import HarnessError
from harness.store.names import (
    CONFIG_HASH_TAG,
    OVERRIDES_TAG,
    PARENT_TAG,
    SWEEP_PLAN_ARTIFACT,
)


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
    from harness.store import ROLE_JOB, ROLE_SWEEP, Reader

    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///") :]).exists():
        raise HarnessError(f"no MLflow store at {uri}; run a sweep first or pass tracking_uri=")
    reader = Reader(uri)  # reads only: the file exists, its schema too
    exp = reader.experiment(experiment)
    if exp is None:
        if experiment in _known_experiments():
            raise HarnessError(
                f"experiment '{experiment}' has no runs in {uri} yet; run its sweep first: "
                f"harness.sweep('{experiment}')"
            )
        raise HarnessError(
            f"unknown experiment '{experiment}': not in {uri} and not in conf/experiment/ "
            f"({', '.join(_known_experiments())})"
        )

    if parent_id:
        parent = reader.run(parent_id)
        if parent is None:
            raise HarnessError(f"no run {parent_id} in {uri}")
    else:
        parents = [
            r for r in reader.runs(exp.experiment_id, role=ROLE_SWEEP)
            if not started_after_ms or (r.info.start_time or 0) >= started_after_ms
        ]
        if not parents:
            raise HarnessError(
                f"experiment '{experiment}' in {uri} has no sweep"
                + (" started by this call" if started_after_ms else "")
                + f"; run one: harness.sweep('{experiment}')"
            )
        parent = parents[0]
    pid = parent.info.run_id
    plan_text = reader.artifact_text(pid, SWEEP_PLAN_ARTIFACT)
    plan = json.loads(plan_text) if plan_text else None  # without its plan: its children
    planned = {j["config_hash"] for j in plan["jobs"]} if plan else set()
    runs = []
    for r in reader.runs(exp.experiment_id, role=ROLE_JOB):
        tags = r.data.tags
        mine = tags.get(PARENT_TAG) == pid
        if mine or (r.info.status == "FINISHED" and tags.get(CONFIG_HASH_TAG) in planned):
            runs.append(StoredRun(
                r.info.run_id, r.info.run_name, r.info.status, tags.get(PARENT_TAG, ""),
                tags.get(CONFIG_HASH_TAG, ""), tags.get(OVERRIDES_TAG, "").split(),
                dict(r.data.metrics), dict(r.data.params), r.info.start_time or 0,
            ))
    if history:
        for run in runs:
            keys = run.metrics if history is True else history
            for key in keys:
                points = reader.metric_history(run.run_id, key)
                by_step = {}  # a step logged twice keeps its latest value
                for m in sorted(points, key=lambda m: (m.step, m.timestamp)):
                    by_step[m.step] = m.value
                run.history[key] = sorted(by_step.items())
    swept = [k[len("sweep.params.") :] for k in parent.data.params if k.startswith("sweep.params.")]
    return StoredSweep(
        experiment, uri, pid, parent.info.run_name, parent.info.status, swept,
        plan["jobs"] if plan else None, runs,
    )
