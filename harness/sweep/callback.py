"""A sweep as a durable object: planned and validated up front, one MLflow parent run,
resumable, failures isolated and reported, interrupts recorded.

Hydra drives it. `SweepCallback.on_multirun_start` (in the launching process) enumerates the
jobs exactly as Hydra's basic sweeper will, validates every one of them before anything is
written, creates the store once, ends runs that a killed process left RUNNING, decides which
jobs a resumed sweep skips, opens the parent run and writes the plan (harness.sweep.job.Plan)
to the sweep folder. The launcher runs the jobs (harness.sweep.launcher, or any other Hydra
launcher through the task function); each leaves an outcome file, and `on_multirun_end` sums
them up. The callback instance holds the parent run until it is ended: FINISHED or FAILED at
the end, KILLED on Ctrl-C or SIGTERM, FAILED if Hydra itself fails mid-sweep.
"""

from __future__ import annotations

import atexit
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.global_hydra import GlobalHydra
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from harness.core.config import Config, ConfigError
from harness.sweep import timing, workers
from harness.sweep.compose import Composer, forget_composed, job_overrides
from harness.sweep.job import ELSEWHERE, OUTCOME_FILE, Plan, log
from harness.sweep.tuned import is_tuned, validation_jobs


def plan(
    config: DictConfig, on_valid: Callable[[Config], None] | None = None, keep: bool = False
) -> list[dict]:
    """Every job's overrides, spec and config hash; raises ConfigError listing invalid jobs.

    keep: keep each job's composed config for the launcher of this process (compose_job).
    """
    from harness.run.train import config_hash, prepare, run_name

    loader = GlobalHydra.instance().config_loader()
    params = dict(config.hydra.sweeper.get("params") or {})
    jobs, invalid = [], []
    # a tuned sweep (hydra/sweeper=harness_tuned) names the jobs to validate up front itself
    staged = validation_jobs(config, loader)
    if staged is None:
        staged = job_overrides(params, list(config.hydra.overrides.task), loader)
    composer = Composer(loader, config)
    for overrides in staged:
        try:
            spec = composer.spec(list(overrides), keep=keep)
            data, out_act = prepare(spec)
            if spec.tracking.claim_timeout_s <= 0:
                raise ConfigError(
                    f"tracking.claim_timeout_s={spec.tracking.claim_timeout_s:g}: a claim needs a "
                    "positive timeout (seconds without heartbeat before another sweep takes over)"
                )
        except ConfigError as exc:
            invalid.append(f"  {' '.join(overrides)}\n      {exc}")
            continue
        if on_valid is not None:
            on_valid(spec)
        jobs.append(
            {
                "overrides": list(overrides),
                "spec": spec,
                "config_hash": config_hash(spec),
                "run_name": run_name(spec, data.task, out_act),
            }
        )
    if invalid:
        raise ConfigError(
            f"{len(invalid)} of {len(invalid) + len(jobs)} jobs are invalid; nothing was run:\n"
            + "\n".join(invalid)
        )
    targets = {(j["spec"].tracking.uri, j["spec"].tracking.experiment) for j in jobs}
    if len(targets) > 1:
        raise ConfigError(
            f"a sweep writes to one MLflow experiment, these jobs name {sorted(targets, key=str)}"
        )
    return jobs


def _harness_launcher(config: DictConfig) -> bool:
    """The sweep's jobs run in this process's warm workers (hydra/launcher=harness)."""
    target = str(config.hydra.launcher.get("_target_", ""))
    return target.endswith(".HarnessLauncher")


def _slots(config: DictConfig) -> int:
    """The harness launcher's slots, as it will count them (WarmLauncher.slots)."""
    return max(1, int(config.hydra.launcher.get("n_jobs") or config.get("parallel") or 1))


class SweepCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks."""

    def __init__(self) -> None:
        self.parent_run_id: str | None = None
        self.tracking = None  # the sweep's TrackingConfig
        self.interrupted = False
        self.dashboard = ""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and sweeps on: a sweep that could
        # not be planned or recorded must stop here instead (SystemExit passes through).
        try:
            self._start(config)
        except ConfigError as exc:
            log(f"invalid sweep: {exc}")
            raise SystemExit(2) from None
        except Exception as exc:
            log(f"cannot start the sweep: {type(exc).__name__}: {exc}")
            raise SystemExit(1) from None

    def _start(self, config: DictConfig) -> None:
        # resolved first: its ${now:...} is cached in the config, and each job's config,
        # composed by the plan, copies that cache (so all of them name the same directory)
        sweep_dir = Path(config.hydra.sweep.dir)
        warm = _harness_launcher(config)
        timing.reset(_slots(config) if warm else 1).mark("plan_start")
        # the harness launcher's workers import their frameworks while the plan is made
        early = workers.early_pool(_slots(config)) if warm else None
        try:
            jobs = plan(config, on_valid=early.prewarm if early else None, keep=warm)
            self._record_start(config, sweep_dir, jobs)
            timing.clock.mark("plan_end")
        except BaseException:
            workers.drop_early_pool()
            forget_composed()
            raise

    def _record_start(self, config: DictConfig, sweep_dir: Path, jobs: list[dict]) -> None:
        from harness.run.train import git_commit
        from harness.store import Store, dashboard_command, redact, resolve_uri
        from harness.store.migrate import ensure_schema

        tracking = jobs[0]["spec"].tracking
        ensure_schema(resolve_uri(tracking))  # a new store: one sweep creates it, others wait
        store = Store(tracking)
        reaped = store.reap_stale()
        if reaped:
            log(
                f"marked KILLED {len(reaped)} run(s) left RUNNING by a dead process: "
                + ", ".join(reaped)
            )
        finished = store.finished_hashes() if tracking.resume else {}
        skip = {
            j["config_hash"]: finished[j["config_hash"]]
            for j in jobs
            if j["config_hash"] in finished
        }
        # a tuned sweep's eval jobs are known only after its tune stage: it is never done here
        if len(skip) == len(jobs) and not is_tuned(config):
            log(
                f"nothing left to do: all {len(jobs)} jobs already have a FINISHED run in "
                "experiment "
                f"'{tracking.experiment}' (tracking.resume=false reruns them)"
            )
            raise SystemExit(0)
        if skip:
            log(
                f"resuming: {len(skip)} of {len(jobs)} jobs already have a FINISHED run and are "
                "skipped (tracking.resume=false reruns everything)"
            )
        overrides = " ".join(config.hydra.overrides.task)
        job_list = [{k: j[k] for k in ("run_name", "config_hash", "overrides")} for j in jobs]
        name = f"sweep-{tracking.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
        parent = store.start_sweep(
            name,
            tags={
                "sweep.overrides": overrides,
                "sweep.dir": str(sweep_dir.resolve()),
                "git_commit": git_commit(),
                "command": f"python -m harness {overrides} -m",
                "mlflow.note.content": f"Sweep of {len(jobs)} jobs: {overrides}",
            },
            params={
                "sweep.planned": len(jobs),
                **{
                    f"sweep.params.{k}": v
                    for k, v in (config.hydra.sweeper.get("params") or {}).items()
                },
            },
            texts={
                "multirun.yaml": OmegaConf.to_yaml(config),
                "sweep.json": json.dumps({"overrides": overrides, "jobs": job_list}, indent=1),
            },
        )
        self.parent_run_id, self.tracking = parent, tracking
        self._watch_interrupts()
        atexit.register(self.close)  # Hydra failed, or an interrupt: the parent never stays RUNNING
        Plan(parent, len(jobs), skip, job_list).write(sweep_dir)
        log(
            f"sweep of {len(jobs)} jobs -> MLflow experiment '{tracking.experiment}' "
            f"({redact(store.uri)})"
        )
        self.dashboard = dashboard_command(store.uri)

    def _watch_interrupts(self) -> None:
        """Note a Ctrl-C or SIGTERM (the parent then ends KILLED), then let it act as before."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(signum)

            def noted(num, frame, previous=previous) -> None:
                self.interrupted = True
                if callable(previous):
                    previous(num, frame)
                else:
                    raise KeyboardInterrupt(f"signal {num}")

            signal.signal(signum, noted)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.store import Store, redact

        workers.drop_early_pool()  # (a launcher that was not the harness's left them)
        forget_composed()
        if self.parent_run_id is None:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        planned = Plan.read(sweep_dir).planned
        outcomes = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{OUTCOME_FILE}"))]
        counts = {
            "planned": planned,
            "finished": 0,
            "failed": 0,
            "killed": 0,
            "skipped": 0,
            "elsewhere": 0,
        }
        kinds = {
            "FINISHED": "finished",
            "SKIPPED": "skipped",
            "KILLED": "killed",
            ELSEWHERE: "elsewhere",
        }
        for o in outcomes:
            counts[kinds.get(o["status"], "failed")] += 1
        missing = planned - len(outcomes)
        counts["failed"] += missing  # a job that left no outcome did not finish
        bad = [o for o in outcomes if o["status"] not in ("FINISHED", "SKIPPED", ELSEWHERE)]
        status = "FINISHED" if not bad and not missing else "FAILED"
        report = "\n".join(f"{o['run_name']} [{o['status']}]: {o['error']}" for o in bad)
        parent, self.parent_run_id = self.parent_run_id, None
        exit_code = 1 if bad or missing else 0
        try:
            store = Store(self.tracking)
            tags = _parity_tags(store, [o["run_id"] for o in outcomes if o.get("run_id")])
            store.end_sweep(
                parent, status, counts, {"sweep_failures.txt": report} if bad else {}, tags,
                timing.clock.metrics(),
            )
        except Exception as exc:  # Hydra would only warn: the exit code must say it
            exit_code = 1
            log(
                f"could not record the end of the sweep (parent run {parent}) in MLflow: "
                f"{type(exc).__name__}: {redact(str(exc))[:500]}; the next sweep marks it KILLED"
            )
        shown = {("done elsewhere" if k == "elsewhere" else k): v for k, v in counts.items()}
        log(
            "sweep done: "
            + ", ".join(f"{v} {k}" for k, v in shown.items())
            + f" (parent run {parent})"
        )
        if bad or missing:
            log("failed jobs (rerun the same command to retry only these):")
            for o in bad:
                log(f"  {o['run_name']} [{o['status']}]: {o['error']}")
            if missing:
                log(f"  {missing} job(s) left no outcome")
        log(f"dashboard: {self.dashboard}")
        if exit_code:
            raise SystemExit(exit_code)

    def close(self) -> None:
        """The parent run, if still open: KILLED after an interrupt, else FAILED (Hydra failed)."""
        if self.parent_run_id is None:
            return
        from harness.store import Store

        parent, self.parent_run_id = self.parent_run_id, None
        status = "KILLED" if self.interrupted else "FAILED"
        try:
            store = Store(self.tracking)
            for run_id in store.running_children(parent):
                store.set_terminated(run_id, "KILLED")
            if store.status(parent) == "RUNNING":
                store.set_terminated(parent, status)
        except Exception as exc:
            log(
                f"could not mark the sweep's parent run {parent} {status} "
                f"({type(exc).__name__}); the next sweep will"
            )
            return
        log(
            f"sweep {'interrupted' if self.interrupted else 'failed'}: "
            f"parent run {parent} marked {status}"
        )


def _parity_tags(store, run_ids: list[str]) -> dict[str, str]:
    """The sweep's parity verdict from its jobs' (skipped ones included), where they have one."""
    from harness.run.parity import overall_verdict

    verdict = overall_verdict(store.tag_values(run_ids, "parity_verdict")) if run_ids else None
    if verdict is not None:
        log(f"parity verdict of the sweep: {verdict}")
    return {"parity_verdict": verdict} if verdict else {}
