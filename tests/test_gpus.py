"""GPU placement without a GPU: which ids a job may use, leases that keep running jobs apart,
and the worker that gets the leased id as CUDA_VISIBLE_DEVICES and records it on its run."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from mlflow.tracking import MlflowClient

from harness.sweep import gpus
from harness.sweep.workers import Job, WorkerPool
from tests.conftest import ROOT, make_spec


@pytest.mark.parametrize(
    "value, expected",
    [
        ("0,1,2,3", ["0", "1", "2", "3"]),
        (" 2, 3 ", ["2", "3"]),
        ("", []),  # what submitit sets for a job without GPUs
        ("-1", []),
        ("1,-1,2", ["1"]),  # CUDA ignores everything from the first invalid id
        ("GPU-8a3e,GPU-77c1", ["GPU-8a3e", "GPU-77c1"]),
    ],
)
def test_visible_gpus_follow_cuda_visible_devices(value, expected):
    assert gpus.visible_gpus({"CUDA_VISIBLE_DEVICES": value}, query=lambda: ["9"]) == expected


def test_without_cuda_visible_devices_every_gpu_of_the_node_is_a_candidate():
    assert gpus.visible_gpus({}, query=lambda: ["0", "1"]) == ["0", "1"]


def test_each_slurm_job_leases_in_its_own_namespace(tmp_path):
    # cgroups may show every job its GPU as "0": jobs of different allocations must not queue
    assert gpus.lock_dir({"SLURM_JOB_ID": "41"}) != gpus.lock_dir({"SLURM_JOB_ID": "42"})
    assert gpus.lock_dir({}).name == "node"


def test_concurrent_leases_get_different_gpus_and_a_third_waits_for_one(tmp_path):
    with gpus.lease(["0", "1"], tmp_path) as first, gpus.lease(["0", "1"], tmp_path) as second:
        assert {first, second} == {"0", "1"}
        got: list[str] = []
        waiting = threading.Thread(target=lambda: got.append(_lease_once(tmp_path)))
        waiting.start()
        time.sleep(0.5)
        assert not got, "a third job got a GPU while both were running jobs"
    waiting.join(timeout=10)
    assert got and got[0] in {"0", "1"}


def _lease_once(where) -> str:
    with gpus.lease(["0", "1"], where, poll_s=0.05) as gpu:
        return gpu


def test_a_process_gets_back_the_gpu_it_had_so_its_warm_worker_is_reused(tmp_path):
    with gpus.lease(["0", "1", "2"], tmp_path), gpus.lease(["0", "1", "2"], tmp_path) as mine:
        pass
    with gpus.lease(["0", "1", "2"], tmp_path) as again:
        assert again == mine


def test_parallel_slots_each_get_back_their_own_gpu(tmp_path):
    # two slots of one process: each prefers the GPU its warm worker is bound to
    with (
        gpus.lease(["0", "1", "2"], tmp_path, prefer="2") as a,
        gpus.lease(["0", "1", "2"], tmp_path, prefer="1") as b,
    ):
        assert (a, b) == ("2", "1")
    with gpus.lease(["0", "1", "2"], tmp_path, prefer="2") as a:
        with gpus.lease(["0", "1", "2"], tmp_path, prefer="2") as busy:  # taken: another one
            assert a == "2" and busy != "2"


def test_a_gpu_leased_by_another_process_is_not_given_out(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", (
            "import sys, pathlib; from harness.sweep import gpus\n"
            f"with gpus.lease(['1'], pathlib.Path({str(tmp_path)!r})):\n"
            "    print('held', flush=True); sys.stdin.read()"
        )],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with gpus.lease(["1", "0"], tmp_path) as gpu:
            assert gpu == "0"
    finally:
        holder.communicate("", timeout=10)  # its lease goes with it


def test_cpu_jobs_and_single_gpu_machines_are_left_alone(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    with gpus.for_job("cpu") as gpu:
        assert gpu is None
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    with gpus.for_job("gpu") as gpu:
        assert gpu is None  # nothing to choose: the worker inherits CUDA_VISIBLE_DEVICES=3


def test_the_worker_gets_the_leased_gpu_and_the_run_records_it(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = make_spec(
        "backend=numpy", "train.epochs=1", f"tracking.uri={store}", "tracking.experiment=gpus"
    )
    pool = WorkerPool()
    try:
        placed = [pool.run(Job(spec, [], None, gpu=g)) for g in ("1", "0")]
        assert [o.status for o in placed] == ["FINISHED"] * 2, [o.error for o in placed]
        # the idle GPU-1 worker was stopped
        assert len([k for k in pool.workers if k[0] == "numpy"]) == 1
    finally:
        pool.close()
    client = MlflowClient(tracking_uri=store)
    tags = [client.get_run(o.run_id).data.tags.get("cuda_visible_devices") for o in placed]
    assert tags == ["1", "0"]
