"""Sweeps that survive and resume: real CLI processes, a real SQLite store, real signals."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.run.train import run
from harness.store import RunFailed
from tests.conftest import cli, make_spec
from tests.faults import env as faults_env

ROLE = "tags.`harness.role`"


def _runs(store: str, experiment: str, role: str = "job"):
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment}"
    return client, client.search_runs([exp.experiment_id], f"{ROLE} = '{role}'", max_results=1000)


def _history(client, run, key="train/loss") -> list[float]:
    return [
        m.value
        for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)
    ]


@pytest.mark.slow  # ~1-2 min of CLI sweeps: CI's slow suite runs it
def test_parallel_sweep_survives_a_raise_and_a_sigkill_then_resumes(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    epochs = 3
    args = [
        "backend=keras,lightning",
        "seed=0,1,2,3,4,5,6,7",
        f"train.epochs={epochs}",
        "tracking.experiment=survive",
        f"tracking.uri={store}",
        "+launcher=parallel",
        "-m",
    ]
    faults = "keras-sigmoid-probs-adam-s5@2=raise;lightning-sigmoid-probs-adam-s2@2=kill"
    first = cli(*args, cwd=tmp_path, env=faults_env(faults))
    assert first.returncode != 0
    assert "keras-sigmoid-probs-adam-s5 [FAILED]" in first.stderr
    assert "lightning-sigmoid-probs-adam-s2 [KILLED]" in first.stderr

    client, runs = _runs(store, "survive")
    by_status: dict[str, list] = {}
    for r in runs:
        by_status.setdefault(r.info.status, []).append(r)
    assert len(by_status.get("FINISHED", [])) == 14
    assert sorted(r.info.run_name for s in ("FAILED", "KILLED") for r in by_status.get(s, [])) == [
        "keras-sigmoid-probs-adam-s5",
        "lightning-sigmoid-probs-adam-s2",
    ]
    assert "RUNNING" not in by_status
    failed = next(r for r in runs if r.info.run_name == "keras-sigmoid-probs-adam-s5")
    assert "fault injected" in failed.data.tags["error"]
    assert "error/traceback.txt" in [
        a.path for a in client.list_artifacts(failed.info.run_id, "error")
    ]
    for r in by_status["FINISHED"]:
        assert len(_history(client, r)) == epochs  # complete histories, nothing lost
    _, parents = _runs(store, "survive", role="sweep")
    assert [p.info.status for p in parents] == ["FAILED"]
    assert parents[0].data.metrics["sweep/finished"] == 14
    assert parents[0].data.metrics["sweep/planned"] == 16

    second = cli(*args, cwd=tmp_path)  # same command, faults gone
    assert second.returncode == 0, second.stderr[-3000:]
    assert "14 of 16 jobs already have a FINISHED run" in second.stderr
    client, runs = _runs(store, "survive")
    finished = [r for r in runs if r.info.status == "FINISHED"]
    assert len(finished) == 16
    assert len({r.data.tags["config_hash"] for r in finished}) == 16
    _, parents = _runs(store, "survive", role="sweep")
    parent_ids = {p.info.run_id for p in parents}
    assert all(r.data.tags["mlflow.parentRunId"] in parent_ids for r in runs)
    assert sorted(p.info.status for p in parents) == ["FAILED", "FINISHED"]
    newest = max(parents, key=lambda p: p.info.start_time)
    assert newest.data.metrics["sweep/finished"] == 2 and newest.data.metrics["sweep/skipped"] == 14


def test_a_rerun_with_nothing_left_to_do_opens_no_parent_run(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    args = ("backend=numpy", "seed=0,1", "train.epochs=2", f"tracking.uri={store}", "-m")
    assert cli(*args, cwd=tmp_path).returncode == 0
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing left to do: all 2 jobs already have a FINISHED run" in again.stderr
    _, parents = _runs(store, "harness", role="sweep")
    assert [p.info.status for p in parents] == ["FINISHED"]


@pytest.mark.slow  # ~1-2 min of CLI sweeps: CI's slow suite runs it
def test_runs_are_deterministic_and_do_not_leak_between_jobs(tmp_path):
    """Same command twice: bitwise-identical histories. A run alone (first in a fresh worker)
    and the same run after other runs in the same warm worker: identical too."""
    mixed = f"sqlite:///{tmp_path / 'mixed.db'}"
    alone = f"sqlite:///{tmp_path / 'alone.db'}"
    common = ["train.epochs=4", "tracking.resume=false"]
    for _ in range(2):
        proc = cli(
            "backend=keras,lightning", "seed=0,1", *common, f"tracking.uri={mixed}", "-m",
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    proc = cli(
        "backend=lightning,keras", "seed=1", *common, f"tracking.uri={alone}", "-m", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]

    client_m, runs_m = _runs(mixed, "harness")
    client_a, runs_a = _runs(alone, "harness")
    assert len(runs_m) == 8 and len(runs_a) == 2
    for key in ("train/loss", "val/loss", "val/accuracy"):
        histories: dict[str, list[list[float]]] = {}
        for r in runs_m:
            histories.setdefault(r.info.run_name, []).append(_history(client_m, r, key))
        for name, (h1, h2) in histories.items():
            assert h1 == h2, f"{name} {key} differs between two identical commands"
        for r in runs_a:
            assert _history(client_a, r, key) == histories[r.info.run_name][0], (
                f"{r.info.run_name} {key}: alone differs from inside a mixed sweep"
            )


def test_a_diverging_run_stops_early_failed_and_never_logs_nan(store):
    spec = make_spec(
        "data=diabetes", "optimizer=gd", "optimizer.lr=50", "model.hidden_activation=relu",
        "train.epochs=30", f"tracking.uri={store}", "tracking.experiment=nan",
    )
    with pytest.raises(RunFailed, match="non-finite"):
        run(spec, log=lambda *a, **k: None)
    client, runs = _runs(store, "nan")
    (r,) = runs
    assert r.info.status == "FAILED"
    assert r.data.tags["diverged"] == "true"
    assert "non-finite" in r.data.tags["error"]
    history = client.get_metric_history(r.info.run_id, "train/loss")
    assert len(history) < 30  # stopped early
    for key in r.data.metrics:
        history = client.get_metric_history(r.info.run_id, key)
        assert all(math.isfinite(m.value) for m in history), key


def test_an_invalid_job_stops_the_sweep_before_anything_is_written(tmp_path):
    store = tmp_path / "store.db"
    proc = cli(
        "data=digits,digit_pairs", "model.output_activation=softmax", "train.epochs=1",
        f"tracking.uri=sqlite:///{store}", "-m", cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2
    assert "1 of 2 jobs are invalid; nothing was run" in proc.stderr
    assert "softmax output on a multilabel task" in proc.stderr
    assert not store.exists()


def _wait_for_running_job(
    store: str, experiment: str, proc: subprocess.Popen, timeout: float = 120, jobs: int = 1
):
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            client, runs = _runs(store, experiment)
            running = [r for r in runs if r.info.status == "RUNNING"]
            if len(running) >= jobs and all(
                client.get_metric_history(r.info.run_id, "train/loss") for r in running
            ):
                return
        except Exception:  # store or experiment not created yet
            pass
        time.sleep(0.5)
    raise AssertionError("no job started training in time")


def _start_sweep(
    tmp_path: Path, store: str, experiment: str, *args: str,
    jobs: tuple[str, ...] = ("backend=lightning", "seed=0,1"),
    epochs: int = 400,
) -> subprocess.Popen:
    # the test polls the store while the sweep runs: create its schema first, as the sweep
    # itself does before its jobs start (two processes migrating one new file would clash)
    MlflowClient(tracking_uri=store).search_experiments()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    return subprocess.Popen(
        [
            sys.executable, "-m", "harness", *jobs, f"train.epochs={epochs}",
            "tracking.flush_every_s=0.2", f"tracking.experiment={experiment}",
            f"tracking.uri={store}", *args,
            "-m",
        ],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )


@pytest.mark.parametrize("how", ["sigterm", pytest.param("ctrl-c", marks=pytest.mark.slow)])
def test_interrupt_ends_the_run_and_the_parent_killed(tmp_path, how):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    proc = _start_sweep(tmp_path, store, "interrupt")
    _wait_for_running_job(store, "interrupt", proc)
    if how == "sigterm":
        proc.send_signal(signal.SIGTERM)  # to the sweep's process only
    else:
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    proc.wait(timeout=60)
    assert proc.returncode != 0
    _, jobs = _runs(store, "interrupt")
    _, parents = _runs(store, "interrupt", role="sweep")
    assert [r.info.status for r in jobs] == ["KILLED"]
    assert [p.info.status for p in parents] == ["KILLED"]


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_interrupting_a_parallel_sweep_ends_every_running_job_killed(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    # one Keras and one Lightning job: the two slots run them at the same time
    # long enough that neither ends before the other has started (they are killed early)
    proc = _start_sweep(
        tmp_path, store, "interrupt_parallel", "+launcher=parallel",
        jobs=("backend=keras,lightning", "seed=0"),
        epochs=20000,
    )
    _wait_for_running_job(store, "interrupt_parallel", proc, jobs=2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    _, jobs = _runs(store, "interrupt_parallel")
    _, parents = _runs(store, "interrupt_parallel", role="sweep")
    assert sorted(r.data.tags["backend"] for r in jobs) == ["keras", "lightning"]
    assert [r.info.status for r in jobs] == ["KILLED", "KILLED"]
    assert [p.info.status for p in parents] == ["KILLED"]


@pytest.mark.slow
def test_runs_left_running_by_a_killed_sweep_are_marked_killed_by_the_next(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    proc = _start_sweep(tmp_path, store, "reap")
    _wait_for_running_job(store, "reap", proc)
    os.killpg(proc.pid, signal.SIGKILL)  # nothing gets to clean up
    proc.wait(timeout=30)
    _, jobs = _runs(store, "reap")
    assert [r.info.status for r in jobs] == ["RUNNING"]

    nxt = cli("backend=lightning", "seed=0", "train.epochs=2", "tracking.experiment=reap",
              f"tracking.uri={store}", "-m", cwd=tmp_path)
    assert nxt.returncode == 0, nxt.stderr[-3000:]
    assert "left RUNNING by a dead process" in nxt.stderr
    _, jobs = _runs(store, "reap")
    _, parents = _runs(store, "reap", role="sweep")
    assert sorted(r.info.status for r in jobs) == ["FINISHED", "KILLED"]
    assert sorted(p.info.status for p in parents) == ["FINISHED", "KILLED"]


def _scheduled(
    kinds: list[str],
    held: list[str | None],
    complete: bool = True,
    seconds: dict[str, list[float]] | None = None,
) -> list[str | None]:
    """What each slot picks next, in turn (Scheduler._next: a pick holds its backend), given
    the jobs' backends, the backends the slots hold, whether every job is queued yet, and
    the times of the jobs done so far per backend."""
    from harness.sweep.scheduler import Scheduler
    from harness.sweep.workers import Job, WorkerPool

    specs = {b: make_spec(f"backend={b}", "train.epochs=1") for b in {*kinds, *held} if b}
    scheduler = Scheduler(WorkerPool(len(held)), len(held))
    scheduler.pending = [(i, Job(specs[b], [], None)) for i, b in enumerate(kinds)]
    kind = {b: Scheduler._kind(Job(spec, [], None)) for b, spec in specs.items()}
    scheduler.kinds = [kind[b] if b else None for b in held]
    scheduler.complete = complete
    scheduler.seconds = {kind[b]: v for b, v in (seconds or {}).items()}
    picks = []
    for slot in range(len(held)):
        if complete:
            item = scheduler._next(slot)
        else:  # (_next would wait for the rest of the sweep)
            if (item := scheduler._pick(slot)) is not None:
                scheduler.pending.remove(item)
                scheduler.kinds[slot] = kind[item[1].spec.backend.name]
        picks.append(item[1].spec.backend.name if item else None)
    return picks


def test_parallel_slots_import_each_framework_once_where_that_is_enough():
    # a mixed sweep: the second slot takes the other framework, not a second copy of the
    # first (the first slot holds keras from its pick, before its worker is assigned)
    assert _scheduled(["keras"] * 3 + ["lightning"] * 3, [None, None]) == ["keras", "lightning"]
    # a slot keeps its framework while its jobs remain
    scheduled = _scheduled(["lightning", "keras", "keras"], ["keras", "lightning"])
    assert scheduled == ["keras", "lightning"]
    # a second worker of one framework (a 4-15 s import) only for enough jobs to pay for it
    assert _scheduled(["keras"] * 2, [None, None]) == ["keras", None]
    assert _scheduled(["keras"] * 4, [None, None]) == ["keras", "keras"]
    # ... and only once every job is queued: the rest may be another framework's
    assert _scheduled(["keras"] * 4, [None, None], complete=False) == ["keras", None]
    # once jobs have ended, by time: the jobs left must take one slot 2 x START_S (24 s)
    assert _scheduled(["keras"] * 4, ["keras", None], seconds={"keras": [2.0, 9.0, 3.0]}) == [
        "keras", None]  # 3 left x 3 s (median) = 9 s: not worth a 12 s import
    assert _scheduled(["keras"] * 4, ["keras", None], seconds={"keras": [9.0, 8.0]}) == [
        "keras", "keras"]  # 3 left x 8.5 s = 25.5 s
    # a slot whose framework has no jobs left switches once the others have work for two
    assert _scheduled(["lightning"] * 4, ["keras", "lightning"]) == ["lightning", "lightning"]
