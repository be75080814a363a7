"""Tuned sweeps through the real CLI: both stages, their tags, resume across both, bad input."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.report.tuned import chosen_rates, load_runs, tuned_sections
from tests.conftest import cli

TINY = [
    "+experiment=optimizers_tuned",
    "backend=numpy",  # one backend, no framework import: the protocol is what is tested
    "train.epochs=2",
    "hydra.sweeper.grid.gd=[0.01,0.1]",
    "hydra.sweeper.grid.adam=[0.001,0.01]",
    "hydra.sweeper.tune_seeds=[100]",
    "hydra.sweeper.eval_seeds=[0,1]",
]


def _jobs(store: str):
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("optimizers_tuned")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.role` = 'job'", max_results=1000)
    return client, exp, runs


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_a_tuned_sweep_runs_both_stages_tags_them_and_resumes_across_both(tmp_path: Path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    first = cli(*TINY, f"tracking.uri={store}", "-m", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    stage = "stage tune: 2 arms x their rates x 1 tuning seed(s) x 1 setting(s) = 4 jobs"
    assert stage in first.stderr
    assert "sweep done: 8 planned, 8 finished, 0 failed" in first.stderr

    client, exp, runs = _jobs(store)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    tune = [r for r in runs if r.data.tags.get("stage") == "tune"]
    evals = [r for r in runs if r.data.tags.get("stage") == "eval"]
    assert len(tune) == 4 and len(evals) == 4
    assert {int(r.data.params["seed"]) for r in tune} == {100}
    assert {int(r.data.params["seed"]) for r in evals} == {0, 1}
    assert {r.data.tags["arm"] for r in runs} == {"gd", "adam"}

    # every eval run is at its arm's chosen rate: the best final val/loss of its tuning runs
    best = {}
    for r in tune:
        arm, loss = r.data.tags["arm"], r.data.metrics["val/loss"]
        lr = float(r.data.params["optimizer.lr"])
        if arm not in best or loss < best[arm][1]:
            best[arm] = (lr, loss)
    for r in evals:
        assert float(r.data.params["optimizer.lr"]) == best[r.data.tags["arm"]][0]
    parents = client.search_runs([exp.experiment_id], "tags.`harness.role` = 'sweep'")
    assert len(parents) == 1
    tags = parents[0].data.tags
    assert tags["tuned.lr.gd"] == f"{best['gd'][0]:g}"
    assert tags["tuned.lr.adam"] == f"{best['adam'][0]:g}"
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)

    # an interrupted sweep, as the store sees it: one tune run and one eval run never FINISHED
    gone = {tune[0].info.run_id, evals[0].info.run_id}
    for run_id in gone:
        client.delete_run(run_id)
    second = cli(*TINY, f"tracking.uri={store}", "-m", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "sweep done: 8 planned, 2 finished, 0 failed, 0 killed, 6 skipped" in second.stderr
    _, _, after = _jobs(store)
    assert len(after) == 8
    kept = {r.info.run_id for r in after} & {r.info.run_id for r in runs}
    assert kept == {r.info.run_id for r in runs} - gone  # nothing FINISHED was trained again
    assert sorted(r.data.tags["stage"] for r in after) == ["eval"] * 4 + ["tune"] * 4
    assert len({r.data.tags["config_hash"] for r in after}) == 8

    # the report reads both stages back from the store and states the sweep's choices
    frame, parent_tags = load_runs("optimizers_tuned", store)
    assert sorted(frame["stage"]) == ["eval"] * 4 + ["tune"] * 4
    rates = chosen_rates(frame).set_index("arm")
    gd = rates.loc["gd"]
    assert gd["chosen lr"] == parent_tags["tuned.lr.gd"] == gd["evaluated at"]
    text = tuned_sections(frame, equal_settings="optimizers")
    assert "[optimizers report](../optimizers/report.md)" in text


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hydra.sweeper.eval_seeds=[0,100]"], "seeds [100] are both tuning and evaluation seeds"),
        (["hydra.sweeper.grid.gd=[]"], "hydra.sweeper.grid.gd is empty"),
        (["hydra.sweeper.grid.gd=[0.1,0.0]"], "learning rates must be positive"),
        (["hydra.sweeper.criterion.metric=val/r2"], "a multiclass run does not log it"),
        (["seed=3"], "a tuned sweep sets the arms, optimizer.lr, seed"),
    ],
)
def test_bad_tuned_input_exits_2_before_anything_is_written(tmp_path: Path, overrides, message):
    db = tmp_path / "store.db"
    proc = cli(*TINY, *overrides, f"tracking.uri=sqlite:///{db}", "-m", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not db.exists()  # no store, no parent run, no job


@pytest.mark.slow
def test_a_tuned_sweep_stopped_in_its_eval_stage_resumes_without_retraining(tmp_path: Path):
    """SIGTERM once an eval run FINISHED; the rerun trains only what did not FINISH."""
    store = f"sqlite:///{tmp_path / 'store.db'}"
    MlflowClient(tracking_uri=store).search_experiments()  # the schema, before the test polls it
    # jobs of a few seconds and 12 eval jobs: the eval stage is long enough to be stopped in
    args = [a for a in TINY if not a.startswith(("train.epochs=", "hydra.sweeper.eval_seeds="))]
    args += ["train.epochs=40", "hydra.sweeper.eval_seeds=[0,1,2,3,4,5]", f"tracking.uri={store}"]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", *args, "-m"], cwd=tmp_path, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            _, _, runs = _jobs(store)
            stages = [r.data.tags.get("stage") for r in runs if r.info.status == "FINISHED"]
            if "eval" in stages:
                break
        except Exception:  # the experiment does not exist yet
            pass
        time.sleep(0.3)
    assert proc.poll() is None, "the sweep ended before the test could stop it"
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode != 0
    _, _, runs = _jobs(store)
    done = {r.data.tags["config_hash"] for r in runs if r.info.status == "FINISHED"}
    evals_done = sum(r.data.tags["stage"] == "eval" for r in runs if r.info.status == "FINISHED")
    assert 1 <= evals_done < 12 and len(done) == 4 + evals_done

    second = cli(*args, "-m", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert f"{len(done)} skipped" in second.stderr
    _, _, after = _jobs(store)
    finished = [r.data.tags["config_hash"] for r in after if r.info.status == "FINISHED"]
    assert len(finished) == len(set(finished)) == 4 + 12  # every job FINISHED once, none twice
