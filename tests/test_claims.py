"""Sweeps that share one store: claims, stale takeovers, a new store opened by many at once."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from mlflow.tracking import MlflowClient

from harness.core.config import TrackingConfig
from harness.store import PARENT_TAG, ROLE_TAG, Store
from harness.store.claims import HOST_TAG, JOB_RUN_TAG, Claims
from harness.store.migrate import ensure_schema
from tests.conftest import ROOT

SWEEP = ("+experiment=course_binary", "backend=numpy", "seed=5,6,7,8", "train.epochs=30")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _summary(stderr: str) -> dict[str, int]:
    line = re.search(r"sweep done: (.*) \(parent run", stderr)
    assert line, stderr[-3000:]
    return {k: int(v) for v, k in re.findall(r"(\d+) ([a-z ]+?)(?:,|$)", line.group(1))}


def test_two_identical_sweeps_started_together_on_a_new_store_train_each_config_once(tmp_path):
    store = f"sqlite:///{tmp_path / 'new' / 'store.db'}"  # neither the file nor its folder exist
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "harness", *SWEEP, f"tracking.uri={store}", "-m"],
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    for proc, err in zip(procs, errs, strict=True):
        assert proc.returncode == 0, err[-3000:]
        assert "alembic" not in err.lower() and "Traceback" not in err, err[-3000:]
    a, b = (_summary(err) for err in errs)
    print(f"two sweeps at once: {a} / {b}")
    for s in (a, b):  # every job of each sweep: trained here, done by the other, or skipped
        assert s["finished"] + s["done elsewhere"] + s["skipped"] == s["planned"] == 4, s
    assert a["finished"] + b["finished"] == 4, (a, b)

    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("course_binary")
    jobs = client.search_runs([exp.experiment_id], f"tags.`{ROLE_TAG}` = 'job'")
    assert [r.info.status for r in jobs] == ["FINISHED"] * 4
    assert len({r.data.tags["config_hash"] for r in jobs}) == 4
    claims = client.search_runs([exp.experiment_id], f"tags.`{ROLE_TAG}` = 'claim'")
    assert claims == []  # released claims are deleted: the experiment lists only real runs


def test_a_new_store_opened_by_several_processes_at_once_is_created_once(tmp_path):
    uri = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = (
        "import sys; from harness.store.migrate import ensure_schema; "
        "from harness.store import Store; from harness.core.config import TrackingConfig; "
        "ensure_schema(sys.argv[1]); Store(TrackingConfig(uri=sys.argv[1], experiment='x'))"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, uri], env=_env(), stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(errs)[-3000:]
    assert not any("alembic" in e.lower() or "Traceback" in e for e in errs), "\n".join(errs)[
        -3000:
    ]
    ensure_schema(uri)  # and again, on the made store: nothing to do
    assert [e.name for e in MlflowClient(tracking_uri=uri).search_experiments()].count("x") == 1


def _store(tmp_path: Path) -> Store:
    uri = f"sqlite:///{tmp_path / 'claims.db'}"
    ensure_schema(uri)
    return Store(TrackingConfig(uri=uri, experiment="claims"))


def test_a_live_claim_keeps_others_off_a_finished_run_counts_and_a_release_frees_it(tmp_path):
    store = _store(tmp_path)
    mine, theirs = Claims(store, timeout_s=60), Claims(store, timeout_s=60)
    try:
        got = mine.try_claim("h1", "run-a", None)
        assert got.kind == "claimed"
        busy = theirs.try_claim("h1", "run-a", None)
        assert busy.kind == "busy" and str(os.getpid()) in busy.holder
        mine.release(got.run_id, "KILLED")  # e.g. its worker died: the job is free again
        again = theirs.try_claim("h1", "run-a", None)
        assert again.kind == "claimed"
        job = store.client.create_run(
            store.experiment_id, tags={ROLE_TAG: "job", "config_hash": "h1"}
        )
        store.client.set_terminated(job.info.run_id, "FINISHED")
        theirs.release(again.run_id, "FINISHED")
        done = mine.try_claim("h1", "run-a", None)
        assert done.kind == "finished" and done.run_id == job.info.run_id
    finally:
        mine.close()
        theirs.close()


def test_a_claim_without_heartbeat_is_taken_over_from_any_host_and_its_run_marked_killed(tmp_path):
    store = _store(tmp_path)
    parent = store.client.create_run(store.experiment_id, tags={ROLE_TAG: "sweep"}).info.run_id
    dead = Claims(store, timeout_s=2)
    claim = dead.try_claim("h2", "run-b", parent)
    assert claim.kind == "claimed"
    job = store.client.create_run(
        store.experiment_id, tags={ROLE_TAG: "job", "config_hash": "h2", PARENT_TAG: parent}
    ).info.run_id
    dead.link(claim.run_id, job)
    # its host is another machine and its heartbeat stops: only the timeout can tell it is gone
    store.client.set_tag(claim.run_id, HOST_TAG, "another-node")
    dead.stop.set()
    said: list[str] = []
    other = Claims(store, timeout_s=2, log=said.append)
    try:
        assert other.try_claim("h2", "run-b", None).kind == "busy"  # heartbeat still fresh
        time.sleep(2.5)
        taken = other.try_claim("h2", "run-b", None)
        assert taken.kind == "claimed"
        assert store.status(job) == "KILLED"
        assert store.status(claim.run_id) == "KILLED"
        assert "took over the stale claim of another-node" in said[0] and "no heartbeat" in said[0]
        assert store.client.get_run(taken.run_id).data.tags.get(JOB_RUN_TAG) is None
    finally:
        other.close()


def _claim_runs(store: Store, status: str = "RUNNING") -> list:
    return store.client.search_runs(
        [store.experiment_id],
        f"attributes.status = '{status}' and tags.`{ROLE_TAG}` = 'claim'",
    )


def test_a_job_claimed_ahead_trains_on_that_claim_and_one_never_run_is_released(tmp_path):
    """A slot's next job is claimed while the one before trains (JobRunner.claim_ahead): its
    turn takes that claim (no second one); two slots asking for one job make one claim; a
    claim taken ahead for a job that never ran (an interrupt) is released by close()."""
    from harness.core.config import Config
    from harness.sweep.job import JobRunner, Plan
    from harness.sweep.workers import Job, Outcome

    store = _store(tmp_path)
    spec = Config()
    spec.tracking.uri, spec.tracking.experiment = store.uri, "claims"
    plan = Plan(None, 3, {}, [
        {"config_hash": h, "run_name": f"run-{h}", "overrides": []} for h in ("a", "b", "c")
    ])
    jobs = {h: Job(spec, [], None, config_hash=h) for h in ("a", "b", "c")}
    runner = JobRunner(plan)
    seen: list[tuple[str, list[str]]] = []

    def train(job, on_started):
        live = sorted(r.data.tags["config_hash"] for r in _claim_runs(store))
        seen.append((job.config_hash, live))
        return Outcome("FAILED", error="not trained here")

    try:
        assert runner.attempt(jobs["a"], train).status == "FAILED"  # claims a on its turn
        runner.claim_ahead(jobs["b"])
        runner.claim_ahead(jobs["b"])  # a second slot asks for the same job: one claim
        runner.claim_ahead(jobs["c"])  # the job after it, which will never run
        runner.ahead["b"].result()
        runner.ahead["c"].result()
        assert sorted(r.data.tags["config_hash"] for r in _claim_runs(store)) == ["b", "c"]
        assert runner.attempt(jobs["b"], train).status == "FAILED"
        assert seen[-1] == ("b", ["b", "c"])  # b trained on the claim taken ahead, no other
        assert "b" not in runner.ahead
    finally:
        runner.close()
    assert _claim_runs(store) == []  # c's claim, taken ahead and never used, released
    assert len(_claim_runs(store, "FINISHED")) == 0  # (released claims are deleted)
