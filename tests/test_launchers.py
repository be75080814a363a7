"""Cluster launchers: the submitit code path run for real here, the SLURM preset up to sbatch."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import cli

EPOCHS = 3
PER_EPOCH = ("train/loss", "val/loss", "train/accuracy", "val/accuracy")


def _sweep_dir(cwd: Path) -> Path:
    (plan,) = cwd.glob("results/hydra/multirun/*/*/harness_sweep.json")
    return plan.parent


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_submitit_local_sweep_runs_every_job_nested_complete_and_one_gpu_each(tmp_path):
    """Jobs pickled and run by submitit in processes of their own, as on SLURM. Two GPU slots
    (submitit gives each job CUDA_VISIBLE_DEVICES=0,1) for four jobs started at once: each job
    leases one, so no two jobs that run at the same time share one. numpy trains on the CPU
    whatever the device, so this runs on a machine without GPUs."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    proc = cli(
        "backend=numpy", "seed=0,1,2,3", f"train.epochs={EPOCHS}", "train.device=auto",
        f"tracking.uri={store}", "tracking.experiment=submitit",
        "+launcher=submitit_local", "hydra.launcher.gpus_per_node=2", "-m",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "sweep done: 4 planned, 4 finished" in proc.stderr

    sweep_dir = _sweep_dir(tmp_path)
    # submitit ran them, not Hydra's basic launcher
    assert len(list(sweep_dir.glob(".submitit/*/*_result.pkl"))) == 4
    outcomes = {
        p.parent.name: json.loads(p.read_text()) for p in sweep_dir.glob("*/harness_outcome.json")
    }
    assert sorted(outcomes) == ["0", "1", "2", "3"]  # one per hydra.job.num, in the shared dir
    assert {o["status"] for o in outcomes.values()} == {"FINISHED"}

    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("submitit")
    runs = client.search_runs([exp.experiment_id], "", max_results=100)
    jobs = [r for r in runs if r.data.tags["harness.role"] == "job"]
    (parent,) = [r for r in runs if r.data.tags["harness.role"] == "sweep"]
    assert parent.info.status == "FINISHED" and parent.data.metrics["sweep/finished"] == 4
    assert len(jobs) == 4 and {r.info.status for r in jobs} == {"FINISHED"}
    assert {r.info.run_id for r in jobs} == {o["run_id"] for o in outcomes.values()}
    assert len({r.data.tags["harness.pid"] for r in jobs}) == 4  # a worker per submitit job
    for run in jobs:
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        for key in PER_EPOCH:
            steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
            assert steps == list(range(1, EPOCHS + 1)), f"{run.info.run_name} {key}"

    gpus = {r.info.run_id: r.data.tags.get("cuda_visible_devices") for r in jobs}
    assert set(gpus.values()) <= {"0", "1"} and None not in gpus.values(), gpus
    for a in jobs:
        for b in jobs:
            overlap = a.info.start_time < b.info.end_time and b.info.start_time < a.info.end_time
            if a is not b and overlap:
                assert gpus[a.info.run_id] != gpus[b.info.run_id], (
                    "two jobs ran on one GPU at the same time"
                )


def test_slurm_preset_submits_an_array_with_the_configured_resources(tmp_path):
    """No SLURM here: a stand-in sbatch keeps the submission script submitit wrote and refuses
    the job. The script shows the preset's fields as sbatch options, and the sweep that could
    not be submitted ends FAILED instead of staying RUNNING."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    capture = tmp_path / "submission.sh"
    sbatch = bin_dir / "sbatch"
    sbatch.write_text(
        '#!/bin/sh\nfor a; do last="$a"; done\ncp "$last" "$CAPTURE"\n'
        'echo "sbatch: error: test stand-in, nothing submitted" >&2\nexit 1\n'
    )
    srun = bin_dir / "srun"  # submitit checks that it is on a SLURM login node
    srun.write_text("#!/bin/sh\nexit 1\n")
    for tool in (sbatch, srun):
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    proc = cli(
        "backend=numpy", "seed=0,1,2", "train.epochs=2", f"tracking.uri={store}",
        "tracking.experiment=slurm", "+launcher=slurm", "hydra.launcher.partition=gpu",
        "hydra.launcher.array_parallelism=2", "-m",
        cwd=tmp_path,
        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "CAPTURE": str(capture)},
    )
    assert proc.returncode != 0
    script = capture.read_text()
    for option in (
        "--partition=gpu", "--gpus-per-task=1", "--cpus-per-task=4", "--time=60", "--mem=16GB",
        "--ntasks-per-node=1", "--nodes=1", "--array=0-2%2", "--job-name=harness-slurm",
    ):
        assert f"#SBATCH {option}\n" in script, f"{option} not in:\n{script}"

    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("slurm")
    (parent,) = client.search_runs([exp.experiment_id], "", max_results=10)
    assert parent.data.tags["harness.role"] == "sweep" and parent.info.status == "FAILED"


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_joblib_runs_the_jobs_in_its_own_processes_each_with_a_warm_worker(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    proc = cli(
        "backend=numpy", "seed=0,1", "train.epochs=2", f"tracking.uri={store}",
        "tracking.experiment=joblib", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "-m",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "sweep done: 2 planned, 2 finished" in proc.stderr
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("joblib")
    jobs = client.search_runs([exp.experiment_id], "tags.`harness.role` = 'job'")
    assert sorted(r.info.status for r in jobs) == ["FINISHED", "FINISHED"]


def test_the_harness_launcher_is_a_hydra_plugin_and_nothing_patches_hydra():
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    from harness.sweep.workers import WorkerPool, pool

    names = [f"{c.__module__}.{c.__name__}" for c in Plugins.instance().discover(Launcher)]
    assert "hydra_plugins.harness_launcher.harness_launcher.HarnessLauncher" in names
    cores = len(os.sched_getaffinity(0))
    assert pool(2) is pool(2) and pool(1) is not pool(2)  # one pool per size, and the size holds
    assert pool(2).env["HARNESS_THREADS"] == str(max(1, cores // 2))
    assert WorkerPool(3).slots == 3
    root = Path(__file__).resolve().parents[1]
    for folder in ("harness", "hydra_plugins"):
        for path in (root / folder).rglob("*.py"):
            text = path.read_text()
            assert "hydra._internal" not in text and "load_sweep_config" not in text, path
