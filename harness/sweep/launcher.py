"""The harness launcher: a sweep's jobs in warm worker processes, `n_jobs` at a time.

A Hydra Launcher (registered as `hydra/launcher=harness` by the plugin package
hydra_plugins.harness_launcher; every `-m` sweep uses it unless another launcher is chosen).
Hydra hands it every job of the sweep at once. It takes the warm workers the sweep callback
started while it planned, and each job's config as the plan composed it (composed again, as
Hydra's own launchers do, where the plan kept none), and queues the job in a slot scheduler
(harness.sweep.scheduler) at once: the slots (threads in this process, each driving a warm
worker per backend) claim and train the jobs while the rest are still being queued. Then,
in job order, it runs each job through Hydra's `run_job` (the job's folder, its .hydra/
files, the job callbacks, its JobReturn) with a task that collects the slot's outcome. The
jobs' task function is not called here: a harness job is the warm worker's run, which the
slot has done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from harness.sweep.compose import Kept, compose_job, take_composed, task_spec
from harness.sweep.job import ELSEWHERE, JobRunner, Plan, record, report
from harness.sweep.scheduler import Scheduler
from harness.sweep.workers import Job, Outcome, WorkerPool, take_pool


class WarmLauncher(Launcher):
    def __init__(self, n_jobs: int | None = None, **_: Any) -> None:
        self.n_jobs = n_jobs  # None: the config's `parallel` (1 unless +launcher=parallel)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    @property
    def slots(self) -> int:
        assert self.config is not None
        return max(1, int(self.n_jobs or self.config.get("parallel") or 1))

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        plan = Plan.read(sweep_dir)
        slots = self.slots
        workers = take_pool(slots)  # prewarmed by the sweep callback while it planned
        runner = JobRunner(plan)
        scheduler = Scheduler(
            workers, slots, runner=self._runner(runner, workers), ahead=runner.claim_ahead
        )
        try:
            configs = []
            for i, overrides in enumerate(job_overrides):
                idx = initial_job_idx + i
                make, job = self._compose(list(overrides), idx, plan, slots)
                if job.config_hash not in plan.skip:
                    workers.prewarm(job.spec)  # its framework imports while the rest compose
                scheduler.add(idx, job)
                configs.append((idx, make, job))
            scheduler.all_added()
            return [
                self._collect(idx, make(), job, scheduler, workers, plan)
                for idx, make, job in configs
            ]
        except BaseException:  # Ctrl-C, SIGTERM: the running jobs end KILLED, claims released
            scheduler.interrupt(timeout=15.0)
            raise
        finally:
            scheduler.discard()
            workers.close()
            runner.close()

    def _compose(
        self, overrides: list[str], idx: int, plan: Plan, slots: int
    ) -> tuple[Callable[[], DictConfig], Job]:
        """The job's harness job, and what makes its config as Hydra's launchers compose it:
        the plan's, kept in this process (its spec made, its config made when collected), or
        composed again here as Hydra's own launchers do."""
        from harness.run.train import config_hash

        assert self.hydra_context is not None and self.config is not None
        kept = take_composed(self.config, overrides)
        if kept is None:
            cfg = compose_job(self.hydra_context.config_loader, self.config, overrides)
            kept = Kept(task_spec(cfg), lambda: cfg)

        def make() -> DictConfig:
            cfg = kept.config()
            with open_dict(cfg):
                cfg.hydra.job.id = f"{cfg.hydra.job.name}_{idx}"
                cfg.hydra.job.num = idx
            return cfg

        label = f"[{idx + 1}/{plan.planned or '?'}]"
        # parallel jobs share one terminal: a bar each would overwrite the other's
        job = Job(kept.spec, overrides, plan.parent_run_id, label, "lines" if slots > 1 else "auto")
        job.config_hash = config_hash(kept.spec)
        job.jobs_after = max(0, plan.planned - (idx + 1))
        return make, job

    @staticmethod
    def _runner(runner: JobRunner, workers: WorkerPool):
        """What a slot does with a job: its sweep ETA from the jobs so far, then claim and train."""

        def run(job: Job, train) -> Outcome:
            job.sweep_after_s = workers.time_left(job.jobs_after)
            return runner.attempt(job, train)

        return run

    def _collect(
        self,
        idx: int,
        cfg: DictConfig,
        job: Job,
        scheduler: Scheduler,
        workers: WorkerPool,
        plan: Plan,
    ) -> JobReturn:
        """Hydra's run_job for job `idx`, whose task is the outcome its slot left."""
        assert self.hydra_context is not None

        def task(_: DictConfig) -> float:
            outcome = scheduler.outcome(idx) or Outcome(
                "KILLED", error="no slot ran it (interrupted)"
            )
            seconds = outcome.extra.get("seconds", 0.0)
            if outcome.status not in ("SKIPPED", ELSEWHERE):
                workers.times.append(seconds)
            name = outcome.run_name or plan.names.get(job.config_hash) or " ".join(job.overrides)
            record(outcome, Path(HydraConfig.get().runtime.output_dir), name)
            return report(outcome, job.label, name, seconds, workers.time_left(job.jobs_after))

        HydraConfig.instance().set_config(cfg)
        return run_job(
            hydra_context=self.hydra_context,
            task_function=task,
            config=cfg,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
