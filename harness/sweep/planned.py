"""The harness's default sweeper: the jobs of Hydra's basic sweeper, launched as the plan
validated them, without composing each a second time.

Before any job runs, Hydra's basic sweeper composes every job of a batch once to validate it
(`validate_batch_is_legal`), and the harness sweep callback has just composed and validated
each of them (harness.sweep.callback.plan: the composition, the typed config, the data and
every range check). Composing a job costs ~150 ms on a 2-core machine: a 320-job sweep spent
tens of seconds composing each job a second time before its first job started. This
sweeper launches the plan's jobs (the basic sweeper's jobs, in its order:
harness.sweep.compose.job_overrides; tests/test_sweep_timing.py holds them equal) in batches
of `max_batch_size` (null: all at once), as the basic sweeper does, and saves the sweep's
multirun.yaml as it does. Written on Hydra's public Sweeper interface, as the tuned sweeper
(harness.sweep.tuned) is.

`python -m harness ... -m` picks it unless the command line or the experiment chooses a
sweeper (harness.__main__.with_default_launcher); `hydra/sweeper=basic` gives Hydra's own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from harness.sweep.job import Plan


class LaunchingSweeper(Sweeper):
    """A sweeper that hands its jobs to the sweep's configured launcher (this one and the
    tuned sweeper): Hydra's Sweeper.setup, as its own sweepers do it."""

    def __init__(self) -> None:
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher: Any = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )


class PlannedSweeper(LaunchingSweeper):
    def __init__(self, max_batch_size: int | None = None, params: Any = None) -> None:
        super().__init__()
        self.max_batch_size = max_batch_size  # params: the plan read them (job_overrides)

    def sweep(self, arguments: list[str]) -> Any:
        assert self.config is not None
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        plan = Plan.read(sweep_dir)
        if not plan.jobs:
            raise RuntimeError(
                "hydra/sweeper=harness launches the jobs the harness sweep callback planned "
                "(hydra.callbacks.harness_sweep in conf/config.yaml); without it, use "
                "hydra/sweeper=basic"
            )
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        jobs = [list(job["overrides"]) for job in plan.jobs]
        size = self.max_batch_size or len(jobs)
        returns = []
        for start in range(0, len(jobs), size):
            results = self.launcher.launch(jobs[start : start + size], initial_job_idx=start)
            for result in results:
                _ = result.return_value  # a job that raised stops the sweep, as in Hydra's
            returns.append(results)
        return returns
