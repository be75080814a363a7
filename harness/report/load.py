"""The runs of one sweep, read from MLflow (the report's only MLflow reader; writes
nothing). The design they form is harness.report.design.

A sweep's jobs are the ones its parent run planned (`sweep.json`): for each planned config
hash, the latest FINISHED run with that hash in the experiment (a resumed sweep skips the
jobs an earlier sweep finished, so some may belong to an earlier parent).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.core.config import TrackingConfig
from harness.core.paths import EXPERIMENTS_DIR
from harness.store import (
    CONFIG_HASH_TAG,
    OVERRIDES_TAG,
    PARENT_TAG,
    ROLE_JOB,
    ROLE_SWEEP,
    ROLE_TAG,
    SWEEP_PLAN_ARTIFACT,
    Reader,
    resolve_uri,
    store_exists,
)

LESSON = ["course_binary", "activations", "softmax_vs_logits", "optimizers", "tasks"]

SCORE = {
    "binary": "accuracy",
    "multiclass": "accuracy",
    "multilabel": "accuracy",
    "regression": "r2",
}
SCORE_NAME = {"accuracy": "accuracy", "r2": "R²"}


class ReportError(Exception):
    """Something a user must fix (unknown experiment, no sweep, nothing to compare)."""


# --- reading the sweep from MLflow ----------------------------------------------------


@dataclass
class SweepRun:
    """One FINISHED training run of the sweep, with what the report needs of it."""

    run_id: str
    name: str
    config_hash: str
    backend: str
    seed: int
    task: str
    params: dict[str, str]
    tags: dict[str, str]
    final: dict[str, float]
    curves: dict[str, np.ndarray] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    variant: tuple[str, ...] = ()

    @property
    def score(self) -> str:
        return SCORE.get(self.task, "accuracy")

    def last(self, key: str) -> float:
        """The final value of a metric: its curve's last epoch, else the logged value."""
        curve = self.curves.get(key)
        if curve is not None and np.isfinite(curve).any():
            return float(curve[np.isfinite(curve)][-1])
        return float(self.final.get(key, math.nan))


@dataclass
class Sweep:
    experiment: str
    uri: str
    parent_id: str
    parent_name: str
    status: str
    tags: dict[str, str]
    params: dict[str, str]
    key_order: list[str]  # override keys in the order of the sweep's first job
    runs: list[SweepRun]
    missing: list[str]  # planned jobs without a FINISHED run
    planned: int
    # their overrides, kept for a tuned sweep: a tuning run that failed counts in its selection
    missing_overrides: list[list[str]] = field(default_factory=list)


def default_uri() -> str:
    return resolve_uri(TrackingConfig())


def known_experiments() -> list[str]:
    return sorted(p.stem for p in EXPERIMENTS_DIR.glob("*.yaml"))


def _reader(uri: str) -> Reader:
    if not store_exists(uri):
        raise ReportError(
            f"no MLflow store at {uri}; run a sweep first (python -m harness +experiment=NAME -m) "
            "or name the store with --tracking-uri"
        )
    return Reader(uri)


def _experiment(reader: Reader, name: str, uri: str):
    exp = reader.experiment(name)
    if exp is not None:
        return exp
    if name in known_experiments():
        raise ReportError(
            f"experiment '{name}' has no runs in {uri} yet; run its sweep first: "
            f"python -m harness +experiment={name} -m"
        )
    stored = sorted(stored_name for stored_name, _ in reader.experiments())
    raise ReportError(
        f"unknown experiment '{name}': not in {uri} (it holds: {', '.join(stored) or 'none'}) "
        f"and not in conf/experiment/ ({', '.join(known_experiments())})"
    )


def _parent(reader: Reader, exp, parent_id: str | None, uri: str):
    if parent_id:
        run = reader.run(parent_id)
        if run is None:
            raise ReportError(f"parent run '{parent_id}' not found in {uri}")
        if run.info.experiment_id != exp.experiment_id:
            raise ReportError(f"run '{parent_id}' belongs to another experiment than '{exp.name}'")
        if run.data.tags.get(ROLE_TAG) != ROLE_SWEEP:
            raise ReportError(
                f"run '{parent_id}' is not a sweep's parent run (tag {ROLE_TAG}={ROLE_SWEEP})"
            )
        return run
    parents = reader.runs(exp.experiment_id, role=ROLE_SWEEP)
    if parents:
        return parents[0]
    jobs = reader.runs(exp.experiment_id, role=ROLE_JOB)
    if not jobs:
        raise ReportError(
            f"experiment '{exp.name}' is empty: no runs in {uri}; "
            f"run python -m harness +experiment={exp.name} -m"
        )
    raise ReportError(
        f"experiment '{exp.name}' holds {len(jobs)} single run(s) but no sweep: runs started one "
        "by one may differ in anything, so they cannot be compared. Run the experiment as a "
        f"sweep: python -m harness +experiment={exp.name} -m"
    )


def _plan(reader: Reader, run_id: str) -> dict | None:
    """The sweep's sweep.json (its jobs' names, hashes and overrides), if it has one."""
    text = reader.artifact_text(run_id, SWEEP_PLAN_ARTIFACT)
    try:
        return json.loads(text) if text is not None else None
    except ValueError:  # no usable plan: fall back to its children
        return None


def _history(reader: Reader, run_id: str, key: str) -> np.ndarray:
    """A per-epoch metric as an array indexed by epoch - 1 (NaN where none was logged)."""
    points = reader.metric_history(run_id, key)
    if not points:
        return np.array([])
    by_step: dict[int, tuple[int, float]] = {}
    for m in points:  # a step logged twice keeps its latest value
        if m.step not in by_step or m.timestamp >= by_step[m.step][0]:
            by_step[m.step] = (m.timestamp, m.value)
    curve = np.full(max(by_step), np.nan)
    for step, (_, value) in by_step.items():
        if step >= 1:
            curve[step - 1] = value
    return curve


def _sweep_run(reader: Reader, run, overrides: list[str]) -> SweepRun:
    tags = dict(run.data.tags)
    # an empty param (e.g. a non-tuned run's `stage`) is no setting; runs.csv cannot tell it
    # from a missing one either, so the report regenerates alike from the store or its data
    params = {k: v for k, v in run.data.params.items() if v != ""}
    task = tags.get("task") or params.get("data.task") or "binary"
    job = SweepRun(
        run_id=run.info.run_id,
        name=run.info.run_name,
        config_hash=tags.get(CONFIG_HASH_TAG, ""),
        backend=tags.get("backend") or params.get("backend.name", "?"),
        seed=int(float(params.get("seed", "0"))),
        task=task,
        params=params,
        tags=tags,
        final=dict(run.data.metrics),
        overrides=list(overrides),
    )
    score = job.score
    for key in ("train/loss", "val/loss", f"train/{score}", f"val/{score}"):
        job.curves[key] = _history(reader, job.run_id, key)
    return job


def load(experiment: str, uri: str, parent_id: str | None = None) -> Sweep:
    """The sweep's jobs: per planned config hash, the latest FINISHED run with that hash."""
    reader = _reader(uri)
    exp = _experiment(reader, experiment, uri)
    parent = _parent(reader, exp, parent_id, uri)
    pid = parent.info.run_id
    plan = _plan(reader, pid)
    finished = reader.runs(exp.experiment_id, role=ROLE_JOB, status="FINISHED")
    latest: dict[str, Any] = {}
    for run in finished:  # newest first: the first run seen per hash is the latest
        latest.setdefault(run.data.tags.get(CONFIG_HASH_TAG, run.info.run_id), run)
    jobs, missing, missing_overrides = [], [], []
    if plan is not None:
        planned = plan.get("jobs", [])
        for item in planned:
            run = latest.get(item["config_hash"])
            if run is None:
                missing.append(item["run_name"])
                missing_overrides.append(list(item.get("overrides", [])))
            else:
                jobs.append(_sweep_run(reader, run, item.get("overrides", [])))
        key_order = [
            o.split("=", 1)[0].lstrip("+") for o in (planned[0]["overrides"] if planned else [])
        ]
    else:
        children = [r for r in finished if r.data.tags.get(PARENT_TAG) == pid]
        jobs = [
            _sweep_run(reader, r, r.data.tags.get(OVERRIDES_TAG, "").split())
            for r in sorted(children, key=lambda r: r.info.run_name)
        ]
        key_order = []
    tags = dict(parent.data.tags)
    if not jobs:
        command = tags.get("command", f"python -m harness +experiment={experiment} -m")
        raise ReportError(
            f"sweep {parent.info.run_name} ({pid}, {parent.info.status}) has no FINISHED runs "
            f"to report; rerun it to resume: {command}"
        )
    return Sweep(
        experiment=experiment,
        uri=uri,
        parent_id=pid,
        parent_name=parent.info.run_name,
        status=parent.info.status,
        tags=tags,
        params=dict(parent.data.params),
        key_order=key_order,
        runs=jobs,
        missing=missing,
        planned=len(plan["jobs"]) if plan is not None else len(jobs),
        missing_overrides=missing_overrides if "tuned.criterion.metric" in tags else [],
    )
