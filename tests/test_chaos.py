"""Chaos: several copies of one sweep on one store, workers and a sweep SIGKILLed at random,
then one rerun. Every configuration ends FINISHED exactly once, with its whole history."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.entities import ViewType
from mlflow.tracking import MlflowClient

from harness.store.migrate import ensure_schema
from tests.conftest import cli
from tests.test_server import mlflow_server, needs_postgres, postgres  # noqa: F401 (fixtures)

JOBS, EPOCHS = 24, 40
SWEEP = (
    "+experiment=course_binary",
    "backend=numpy",
    f"seed=range(0,{JOBS})",
    f"train.epochs={EPOCHS}",
    "tracking.flush_every_s=0.2",
    "tracking.experiment=chaos",
)


def _training(client: MlflowClient) -> dict[str, set[int]]:
    """The pids of the processes training now: the sweeps holding claims, their workers."""
    exp = client.get_experiment_by_name("chaos")
    pids: dict[str, set[int]] = {"claim": set(), "job": set()}
    if exp is None:
        return pids
    for run in client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'"):
        role, pid = run.data.tags.get("harness.role"), run.data.tags.get("harness.pid", "")
        if role in pids and pid.isdigit():
            pids[role].add(int(pid))
    return pids


def _chaos(
    tmp_path: Path, store: str, sweeps: int, slots: int, rng: random.Random
) -> list[subprocess.Popen]:
    """Start `sweeps` copies of SWEEP; SIGKILL a few workers and one sweep while they run."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["HARNESS_QUIET"] = "1"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "harness",
                *SWEEP,
                f"tracking.uri={store}",
                f"parallel={slots}",
                "-m",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(tmp_path / f"sweep{i}.log", "w"),
            start_new_session=True,
        )
        for i in range(sweeps)
    ]
    client = MlflowClient(tracking_uri=store)
    deadline = time.monotonic() + 300
    kills: list[str] = []
    # a worker in the middle of a run, twice; then a sweep holding a claim; then two workers
    plan = ["job", "job", "claim", "job", "job"]
    while plan and time.monotonic() < deadline and any(p.poll() is None for p in procs):
        time.sleep(rng.uniform(0.3, 1.5))
        pids = _training(client)
        sweeps = {p.pid: p for p in procs if p.poll() is None}
        targets = sorted(pids[plan[0]] & (set(sweeps) if plan[0] == "claim" else pids["job"]))
        if not targets:
            continue
        pid = rng.choice(targets)
        try:
            os.kill(pid, signal.SIGKILL)  # a sweep alone: its workers must not train on without it
        except ProcessLookupError:
            continue  # ended meanwhile
        if pid in sweeps:
            sweeps[pid].wait()
        kills.append(plan.pop(0))
    assert kills == ["job", "job", "claim", "job", "job"], f"only {kills} before the sweeps ended"
    for p in procs:
        p.wait(timeout=max(1.0, deadline - time.monotonic()))
    return procs


def _assert_each_config_finished_once(store: str) -> None:
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("chaos")
    runs = client.search_runs([exp.experiment_id], "", ViewType.ACTIVE_ONLY, max_results=5000)
    assert [r.info.run_name for r in runs if r.info.status == "RUNNING"] == []
    finished = [
        r for r in runs if r.data.tags.get("harness.role") == "job" and r.info.status == "FINISHED"
    ]
    per_config = Counter(r.data.tags["config_hash"] for r in finished)
    assert len(per_config) == JOBS and set(per_config.values()) == {1}, per_config
    for run in finished:
        for key in ("train/loss", "val/loss", "val/accuracy"):
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(1, EPOCHS + 1)), f"{run.info.run_name} {key}: {steps}"


@pytest.mark.slow
def test_four_sweeps_on_one_sqlite_store_under_sigkills_then_a_rerun_train_each_config_once(
    tmp_path,
):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    ensure_schema(store)  # this test polls the store while the sweeps start
    t0 = time.monotonic()
    _chaos(tmp_path, store, sweeps=4, slots=2, rng=random.Random(17))
    rerun = cli(*SWEEP, f"tracking.uri={store}", "parallel=2", "-m", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _assert_each_config_finished_once(store)
    print(f"chaos on SQLite: {time.monotonic() - t0:.0f} s")


@pytest.mark.slow
@pytest.mark.server
@needs_postgres
def test_eight_sweeps_on_a_postgres_server_under_sigkills_then_a_rerun_train_each_config_once(
    tmp_path,
    mlflow_server,  # noqa: F811
):
    url = mlflow_server("chaos").start()
    t0 = time.monotonic()
    _chaos(tmp_path, url, sweeps=8, slots=1, rng=random.Random(23))
    rerun = cli(*SWEEP, f"tracking.uri={url}", "-m", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    _assert_each_config_finished_once(url)
    print(f"chaos on the server: {time.monotonic() - t0:.0f} s")
