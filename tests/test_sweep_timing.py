"""Where a sweep's wall time went (harness.sweep.timing): the arithmetic on a hand-made
clock, and a real CLI sweep whose parent run carries the parts, consistent with its runs."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.sweep import timing
from tests.conftest import cli

ROLE = "tags.`harness.role`"


def test_the_parts_and_the_rest_add_up_to_the_wall_time(monkeypatch):
    clock = timing.SweepClock()
    monkeypatch.setattr(timing, "process_start", lambda: 100.0)
    clock.marks = {"plan_start": 102.0, "plan_end": 110.0, "first_job": 113.0}
    clock.add("claim_s", 0.5)
    clock.add("claim_s", 0.25)
    clock.add("claim_background_s", 4.0)  # off the slots' path: not part of the wall time
    clock.add_run({"time/in_epochs_s": 20.0, "time/outside_epochs_s": 1.5}, end_s=0.25)
    clock.add_run({"time/in_epochs_s": 10.0, "time/outside_epochs_s": 0.5}, end_s=0.25)
    got = clock.metrics(now=150.0)
    p = timing.TIME_PREFIX
    assert got[f"{p}startup_s"] == 2.0 and got[f"{p}plan_s"] == 8.0 and got[f"{p}launch_s"] == 3.0
    assert got[f"{p}claim_s"] == 0.75 and got[f"{p}in_epochs_s"] == 30.0
    assert got[f"{p}run_outside_epochs_s"] == 2.0 and got[f"{p}run_end_s"] == 0.5
    assert got[f"{p}wall_s"] == 50.0
    # 50 - (2 + 8 + 3 + 0.75 + 30 + 2 + 0.5) = 3.75
    assert got[f"{p}other_s"] == pytest.approx(3.75)


def test_with_several_slots_the_rest_is_not_computed(monkeypatch):
    clock = timing.reset(slots=2)
    monkeypatch.setattr(timing, "process_start", lambda: 0.0)
    clock.marks = {"plan_start": 1.0, "plan_end": 2.0, "first_job": 3.0}
    got = clock.metrics(now=10.0)
    assert f"{timing.TIME_PREFIX}other_s" not in got and got[f"{timing.TIME_PREFIX}slots"] == 2.0


def test_process_start_is_in_the_past_of_this_process():
    import time

    start = timing.process_start()
    assert start is not None and 0 < time.time() - start < 24 * 3600


def test_a_sweeps_parent_run_says_where_its_time_went(tmp_path):
    store = f"sqlite:///{tmp_path / 'store.db'}"
    proc = cli(
        "backend=numpy", "seed=0,1,2", "train.epochs=3", f"tracking.uri={store}", "-m",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("harness")
    (parent,) = client.search_runs([exp.experiment_id], f"{ROLE} = 'sweep'")
    jobs = client.search_runs([exp.experiment_id], f"{ROLE} = 'job'")
    t = {k.removeprefix(timing.TIME_PREFIX): v for k, v in parent.data.metrics.items()
         if k.startswith(timing.TIME_PREFIX)}
    # the runs' own measurements, summed: the parent's parts are theirs
    assert t["in_epochs_s"] == pytest.approx(sum(r.data.metrics["time/in_epochs_s"] for r in jobs))
    assert t["run_outside_epochs_s"] == pytest.approx(
        sum(r.data.metrics["time/outside_epochs_s"] for r in jobs)
    )
    for part in ("startup_s", "plan_s", "launch_s", "claim_s", "worker_wait_s", "run_end_s"):
        assert t[part] > 0, part
    assert t["slots"] == 1.0
    # the parts fit in the wall time (other_s: what no part counts) and the rest is small
    assert 0 <= t["other_s"] < 0.5 * t["wall_s"]
    # a run's time in epochs is its epochs' steps and evaluation, as logged per epoch
    run = jobs[0]
    per_epoch = [
        m.value for key in ("time/epoch_s", "time/eval_s")
        for m in client.get_metric_history(run.info.run_id, key)
    ]
    assert run.data.metrics["time/in_epochs_s"] == pytest.approx(sum(per_epoch))


def test_a_sweep_picks_the_harness_sweeper_unless_it_or_its_experiment_chooses_one():
    from harness.__main__ import with_default_launcher as defaults

    course = defaults(["harness", "+experiment=course", "-m"])
    assert "hydra/sweeper=harness" in course and "hydra/launcher=harness" in course
    # a tuned experiment chooses its own sweeper (a command-line choice would override it)
    assert not any("sweeper" in a for a in defaults(["h", "+experiment=activations_tuned", "-m"]))
    assert defaults(["h", "hydra/sweeper=basic", "-m"]).count("hydra/sweeper=basic") == 1
    assert defaults(["h", "seed=1"]) == ["h", "seed=1"]  # a single run: nothing added


def test_the_harness_sweeper_launches_the_plans_jobs_in_batches(tmp_path):
    from omegaconf import OmegaConf

    from harness.sweep.job import Plan
    from harness.sweep.planned import PlannedSweeper

    class Recorder:  # a launcher that records what it is given
        def __init__(self):
            self.calls = []

        def launch(self, batch, initial_job_idx):
            self.calls.append((batch, initial_job_idx))
            return []

    jobs = [{"overrides": [f"seed={s}"], "run_name": f"r{s}", "config_hash": f"h{s}"}
            for s in range(5)]
    Plan(jobs=jobs).write(tmp_path)
    sweeper = PlannedSweeper(max_batch_size=2)
    sweeper.config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    sweeper.launcher = Recorder()
    sweeper.sweep([])
    assert sweeper.launcher.calls == [
        ([["seed=0"], ["seed=1"]], 0), ([["seed=2"], ["seed=3"]], 2), ([["seed=4"]], 4)
    ]
    assert (tmp_path / "multirun.yaml").is_file()
    (tmp_path / "harness_sweep.json").unlink()  # no plan: a clear error, nothing launched
    with pytest.raises(RuntimeError, match="hydra/sweeper=basic"):
        PlannedSweeper(max_batch_size=None).__class__.sweep(sweeper, [])


@pytest.mark.parametrize(
    "overrides",
    [
        ["+experiment=course", "seed=range(0,2)", "data=digits"],  # 16 configurations x 2 seeds
        ["backend=keras,lightning", "seed=4,0,7", "train.epochs=3"],
        ["seed=1,abc"],  # a seed Hydra refuses: refused as Hydra refuses it
    ],
)
def test_a_job_derived_from_its_sibling_seed_is_the_job_hydra_composes(overrides):
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from harness.core.config import register_configs
    from harness.sweep.compose import Composer, compose_job, job_overrides, task_spec

    register_configs()
    conf = str(Path(__file__).resolve().parent.parent / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        # the sweep's own config, as Hydra composes it for a -m command line
        master = loader.load_configuration(
            "config", ["hydra/launcher=harness", *overrides], run_mode=RunMode.MULTIRUN
        )
        params = dict(master.hydra.sweeper.get("params") or {})
        jobs = job_overrides(params, list(master.hydra.overrides.task), loader)
        composer = Composer(loader, master)
        derived = 0
        for job in jobs:
            try:
                expected = compose_job(loader, master, job)
            except Exception as exc:
                with pytest.raises(type(exc)):
                    composer.compose(job)
                with pytest.raises(type(exc)):
                    composer.spec(job)
                continue
            before = len(composer.bases)
            spec = composer.spec(job, keep=True)  # what the plan makes, and keeps
            derived += len(composer.bases) == before  # from a sibling seed, not Hydra
            assert spec == task_spec(expected), job
            for got in (composer.compose(job), compose_job(loader, master, job)):  # (the kept)
                assert OmegaConf.to_yaml(got) == OmegaConf.to_yaml(expected), job
                assert got.hydra.sweep.dir == expected.hydra.sweep.dir
                assert OmegaConf.is_struct(got) and got.seed == expected.seed
        refused = 1 if "seed=1,abc" in overrides else 0
        assert derived == len(jobs) - refused - len(composer.bases)
        assert derived > 0 or refused  # (seed=1,abc: one job, and one Hydra refuses)


@pytest.mark.parametrize(
    "args",
    [
        ["+experiment=course"],
        ["+experiment=course", "seed=range(0,3)", "train.epochs=2"],
        ["backend=keras,lightning", "seed=4,0,7", "model.hidden=[25,15],[8]"],
    ],
)
def test_the_harness_sweeper_runs_the_jobs_of_hydras_basic_sweeper_in_its_order(args):
    """harness.sweep.compose.job_overrides (what the plan validates and the harness sweeper
    launches) against Hydra's own BasicSweeper.split_arguments, job for job."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from harness.core.config import register_configs
    from harness.sweep.compose import job_overrides

    register_configs()
    conf = str(Path(__file__).resolve().parent.parent / "conf")
    with initialize_config_dir(config_dir=conf, version_base="1.3"):
        cfg = compose("config", overrides=[a for a in args if "," not in a and "range" not in a],
                      return_hydra_config=True)
    params = {k: str(v) for k, v in (cfg.hydra.sweeper.get("params") or {}).items()}
    parsed = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in params.items()]
                                                      + args)
    hydras = [list(job) for job in BasicSweeper.split_arguments(parsed, None)[0]]
    assert job_overrides(params, args) == hydras and len(hydras) > 1
