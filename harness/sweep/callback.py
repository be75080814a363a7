"""A sweep as a durable object: planned and validated up front, one MLflow parent run,
resumable, failures isolated and reported, interrupts recorded.

Hydra drives it: `SweepCallback.on_multirun_start` (in the launching process) enumerates
the jobs exactly as Hydra's basic sweeper will, validates every one of them before anything
is written, initialises the store once, ends runs that a killed process left RUNNING,
decides which jobs a resumed sweep skips, and opens the parent run. Each job (in whatever
process the launcher runs it) reads that plan from the sweep directory, runs in a warm
worker (harness.sweep.workers) and leaves an outcome file; `on_multirun_end` sums them up.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.core.config import Config, ConfigError, to_spec

PLAN_FILE = "harness_sweep.json"
OUTCOME_FILE = "harness_outcome.json"


@dataclass
class SweepState:
    """What the launching process knows about the sweep it is running."""

    parent_run_id: str | None = None
    tracking: Any = None
    exit_code: int = 0
    failures: list[str] = field(default_factory=list)


STATE = SweepState()


def log(msg: str) -> None:
    print(f"[harness] {msg}", file=sys.stderr, flush=True)


def _job_overrides(config: DictConfig) -> list[list[str]]:
    """The jobs' override lists, computed as Hydra's BasicSweeper computes them."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    params = [f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()]
    args = list(config.hydra.overrides.task)
    parser = OverridesParser.create(config_loader=GlobalHydra.instance().config_loader())
    return BasicSweeper.split_arguments(parser.parse_overrides(params + args), None)[0]


# Each job's composed config (Hydra's own, `hydra` node included), kept from the plan for
# the in-process launcher: composing one costs ~70 ms, and Hydra would otherwise compose
# every job twice more (its sweeper's check and its launcher).
_COMPOSED: dict[tuple[str, ...], DictConfig] = {}


def _job_spec(config: DictConfig, overrides: list[str]) -> Config:
    import copy

    from hydra.core.global_hydra import GlobalHydra

    job_cfg = GlobalHydra.instance().config_loader().load_sweep_config(config, list(overrides))
    _COMPOSED[tuple(overrides)] = job_cfg
    spec_cfg = copy.deepcopy(job_cfg)
    with open_dict(spec_cfg):
        del spec_cfg["hydra"]
    return to_spec(spec_cfg)


def plan(config: DictConfig, on_valid: Callable[[Config], None] | None = None) -> list[dict]:
    """Every job's overrides, spec and config hash; raises ConfigError listing invalid jobs.

    on_valid(spec) sees each valid job's spec as soon as it is planned.
    """
    from harness.run.train import config_hash, prepare, run_name

    jobs, invalid = [], []
    _COMPOSED.clear()
    for overrides in _job_overrides(config):
        try:
            spec = _job_spec(config, overrides)
            data, out_act = prepare(spec)
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
        raise ConfigError(f"a sweep writes to one MLflow experiment, these jobs name {sorted(targets, key=str)}")
    return jobs


class SweepCallback(Callback):
    """Registered in conf/config.yaml under hydra.callbacks."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Hydra turns a callback's exception into a warning and sweeps on: a sweep that could
        # not be planned or recorded must stop here instead (SystemExit passes through).
        try:
            self._start(config)
        except ConfigError as exc:
            _discard_workers()
            log(f"invalid sweep: {exc}")
            raise SystemExit(2) from None
        except Exception as exc:
            _discard_workers()
            log(f"cannot start the sweep: {type(exc).__name__}: {exc}")
            raise SystemExit(1) from None

    def _start(self, config: DictConfig) -> None:
        from harness.run.train import git_commit
        from harness.store import NOTE_TAG, Store, dashboard_command, redact
        from harness.sweep.workers import Job, Scheduler, pool

        # resolved first: its ${now:...} is cached in the config, and each job's config,
        # composed by the plan, copies that cache (so all of them name the same directory)
        sweep_dir = Path(config.hydra.sweep.dir)
        in_process = _in_process(config)
        parallel = max(1, int(config.get("parallel") or 1))
        workers = pool(parallel) if in_process else None
        # an in-process sweep starts each backend's worker (its framework's import, seconds)
        # as soon as the plan meets its first job: it imports while the rest is planned
        jobs = plan(config, on_valid=workers.prewarm if workers is not None else None)
        tracking = jobs[0]["spec"].tracking
        store = Store(tracking)  # creates the schema once, before any job starts
        reaped = store.reap_stale()
        if reaped:
            log(f"marked KILLED {len(reaped)} run(s) left RUNNING by a dead process: {', '.join(reaped)}")
        finished = store.finished_hashes() if tracking.resume else {}
        skip = {j["config_hash"]: finished[j["config_hash"]] for j in jobs if j["config_hash"] in finished}
        if skip:
            log(
                f"resuming: {len(skip)} of {len(jobs)} jobs already have a FINISHED run and are "
                "skipped (tracking.resume=false reruns everything)"
            )
        overrides = " ".join(config.hydra.overrides.task)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        job_list = [{k: j[k] for k in ("run_name", "config_hash", "overrides")} for j in jobs]
        name = f"sweep-{tracking.experiment}-{time.strftime('%Y%m%d-%H%M%S')}"
        parent = store.start_sweep(
            name,
            tags={
                "sweep.overrides": overrides,
                "sweep.dir": str(sweep_dir.resolve()),
                "git_commit": git_commit(),
                "command": f"python -m harness {overrides} -m",
                NOTE_TAG: f"Sweep of {len(jobs)} jobs: {overrides}",
            },
            params={
                "sweep.planned": len(jobs),
                **{f"sweep.params.{k}": v for k, v in (config.hydra.sweeper.get("params") or {}).items()},
            },
            texts={
                "multirun.yaml": OmegaConf.to_yaml(config),
                "sweep.json": json.dumps({"overrides": overrides, "jobs": job_list}, indent=1),
            },
        )
        STATE.parent_run_id, STATE.tracking = parent, tracking
        (sweep_dir / PLAN_FILE).write_text(
            json.dumps({"parent_run_id": parent, "planned": len(jobs), "skip": skip, "jobs": job_list})
        )
        log(f"sweep of {len(jobs)} jobs -> MLflow experiment '{tracking.experiment}' ({redact(store.uri)})")
        self._dashboard = dashboard_command(store.uri)
        if workers is not None:
            _reuse_planned_configs()
            todo = [(i, j) for i, j in enumerate(jobs) if j["config_hash"] not in skip]
            workers.retain([j["spec"] for _, j in todo])
            if parallel > 1:  # the jobs start now, `parallel` at a time; run_job collects them
                workers.scheduler = Scheduler(workers, parallel)
                workers.scheduler.start([
                    (i, Job(j["spec"], j["overrides"], parent, f"[{i + 1}/{len(jobs)}]", progress="lines"))
                    for i, j in todo
                ])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from harness.store import Store, redact

        if STATE.parent_run_id is None:
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        planned = json.loads((sweep_dir / PLAN_FILE).read_text())["planned"]
        outcomes = [json.loads(p.read_text()) for p in sorted(sweep_dir.glob(f"*/{OUTCOME_FILE}"))]
        counts = {"planned": planned, "finished": 0, "failed": 0, "killed": 0, "skipped": 0}
        for o in outcomes:
            key = {"FINISHED": "finished", "SKIPPED": "skipped", "KILLED": "killed"}.get(o["status"], "failed")
            counts[key] += 1
        missing = planned - len(outcomes)
        counts["failed"] += missing  # a job that left no outcome did not finish
        bad = [o for o in outcomes if o["status"] not in ("FINISHED", "SKIPPED")]
        status = "FINISHED" if not bad and not missing else "FAILED"
        report = "\n".join(f"{o['run_name']} [{o['status']}]: {o['error']}" for o in bad)
        parent, STATE.parent_run_id = STATE.parent_run_id, None  # ended, or left for the next sweep
        try:
            store = Store(STATE.tracking)
            tags = _parity_tags(store, [o["run_id"] for o in outcomes if o.get("run_id")])
            store.end_sweep(parent, status, counts, {"sweep_failures.txt": report} if bad else {}, tags)
        except Exception as exc:  # Hydra would only warn: the exit code must say it
            STATE.exit_code = 1
            log(
                f"could not record the end of the sweep (parent run {parent}) in MLflow: "
                f"{type(exc).__name__}: {redact(str(exc))[:500]}; the next sweep marks it KILLED"
            )
        log("sweep done: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f" (parent run {parent})")
        if bad or missing:
            STATE.exit_code = 1
            STATE.failures = [f"{o['run_name']} [{o['status']}]: {o['error']}" for o in bad]
            log("failed jobs (rerun the same command to retry only these):")
            for line in STATE.failures:
                log(f"  {line}")
            if missing:
                log(f"  {missing} job(s) left no outcome")
        log(f"dashboard: {self._dashboard}")


def _discard_workers() -> None:
    from harness.sweep.workers import pool

    pool().discard()


def _in_process(config: DictConfig) -> bool:
    """Whether the launcher runs the jobs in this process (Hydra's basic launcher)."""
    return str(config.hydra.launcher.get("_target_", "")).endswith("BasicLauncher")


def _reuse_planned_configs() -> None:
    """Let Hydra's in-process launcher take each job's config from the plan.

    Hydra composes every job twice after the plan (its sweeper's check, then its launcher),
    ~70 ms each. Hydra's config loader is one object in this process, shared by the sweeper
    and the launcher; its `load_sweep_config` now serves a planned job from the plan: a copy
    the first time (the sweeper's check), the planned config itself the second (the launcher),
    and composes anything else as before. Only for the basic launcher: other launchers
    pickle the loader into other processes, which compose their jobs in parallel anyway.
    """
    import copy

    from hydra.core.global_hydra import GlobalHydra

    loader = GlobalHydra.instance().config_loader()
    compose = type(loader).load_sweep_config.__get__(loader)
    served: set[tuple[str, ...]] = set()

    def load_sweep_config(master_config: DictConfig, sweep_overrides: list[str]) -> DictConfig:
        key = tuple(sweep_overrides)
        if key not in _COMPOSED:
            return compose(master_config, sweep_overrides)
        if key in served:
            return _COMPOSED.pop(key)
        served.add(key)
        return copy.deepcopy(_COMPOSED[key])

    loader.load_sweep_config = load_sweep_config


def _parity_tags(store, run_ids: list[str]) -> dict[str, str]:
    """The sweep's parity verdict from its jobs' (skipped ones included), where they have one."""
    from harness.run.parity import overall_verdict

    verdict = overall_verdict(store.tag_values(run_ids, "parity_verdict")) if run_ids else None
    if verdict is not None:
        log(f"parity verdict of the sweep: {verdict}")
    return {"parity_verdict": verdict} if verdict else {}


_TIMES: list[float] = []


def _time_left(jobs: int, parallel: int) -> float | None:
    """The mean job time so far times the jobs left, shared among the parallel slots."""
    return jobs * sum(_TIMES) / len(_TIMES) / parallel if _TIMES else None


def run_job(cfg: DictConfig) -> float:
    """The task function of one sweep job: skip if already done, else run in a warm worker."""
    import math

    from hydra.core.hydra_config import HydraConfig

    from harness.sweep import gpus
    from harness.sweep.progress import duration
    from harness.run.train import config_hash
    from harness.store import Store, redact
    from harness.sweep.workers import Job, pool

    hc = HydraConfig.get()
    plan_path = Path(hc.sweep.dir) / PLAN_FILE
    plan_data = json.loads(plan_path.read_text()) if plan_path.exists() else {}
    spec = to_spec(cfg)
    chash = config_hash(spec)
    planned = plan_data.get("planned", "?")
    label = f"[{hc.job.num + 1}/{planned}]"
    out_file = Path(hc.runtime.output_dir) / OUTCOME_FILE
    overrides = list(hc.overrides.task)
    names = {j["config_hash"]: j["run_name"] for j in plan_data.get("jobs", [])}
    if chash in plan_data.get("skip", {}):
        run_id = plan_data["skip"][chash]
        log(f"{label} skipped {names.get(chash, chash)}: FINISHED already as run {run_id}")
        out_file.write_text(
            json.dumps({"status": "SKIPPED", "run_id": run_id, "run_name": names.get(chash, ""), "error": ""})
        )
        return math.nan
    t0 = time.perf_counter()
    launcher = hc.launcher if "launcher" in hc else {}
    parallel = int(launcher.get("n_jobs") or 1) if "joblib" in str(launcher.get("_target_", "")) else 1
    if "submitit_launcher.LocalLauncher" in str(launcher.get("_target_", "")):
        parallel = len(plan_data.get("jobs", [])) - len(plan_data.get("skip", {})) or 1  # all at once
    scheduler = pool().scheduler
    if scheduler is not None:
        parallel = scheduler.slots
    after = planned - (hc.job.num + 1) if isinstance(planned, int) else 0
    # a parallel sweep's job has run (or is running) in a slot: collect it
    outcome = scheduler.outcome(hc.job.num) if scheduler is not None else None
    if outcome is not None:
        _TIMES.append(outcome.extra.get("seconds", time.perf_counter() - t0))
    else:
        job = Job(
            spec, overrides, plan_data.get("parent_run_id"), label,
            # parallel jobs share one terminal: a bar each would overwrite the other's
            progress="lines" if parallel > 1 else "auto",
            sweep_after_s=_time_left(after, parallel),
        )
        with gpus.for_job(spec.train.device.value, log=lambda msg: log(f"{label} {msg}")) as job.gpu:
            outcome = pool(parallel).run(job)
        _TIMES.append(time.perf_counter() - t0)
    if outcome.status == "KILLED" and outcome.run_id and spec.tracking.enabled:
        try:
            store = Store(spec.tracking)
            if store.status(outcome.run_id) == "RUNNING":
                store.set_terminated(outcome.run_id, "KILLED")
        except Exception as exc:  # a job never raises (Hydra would stop the sweep); the next sweep reaps it
            log(f"{label} could not mark run {outcome.run_id} KILLED: {redact(str(exc))[:300]}")
    name = outcome.run_name or names.get(chash) or " ".join(overrides)
    out_file.write_text(
        json.dumps({"status": outcome.status, "run_id": outcome.run_id, "run_name": name, "error": outcome.error})
    )
    if isinstance(planned, int):
        left = f"; ~{duration(_time_left(after, parallel))} left" if after else ""
        log(f"{label} {outcome.status.lower()} {name} ({_TIMES[-1]:.1f} s{left})")
    if outcome.status != "FINISHED":
        log(f"{label} {name}: {outcome.error}")
        return math.nan
    return outcome.result.objective


def abort(reason: str) -> None:
    """Ctrl-C or SIGTERM in the launching process: end the running job and the parent KILLED."""
    from harness.store import Store
    from harness.sweep.workers import pool

    pool().interrupt()
    if STATE.parent_run_id is None:
        return
    parent, STATE.parent_run_id = STATE.parent_run_id, None
    try:
        store = Store(STATE.tracking)
        for run_id in store.running_children(parent):
            store.set_terminated(run_id, "KILLED")
        store.set_terminated(parent, "KILLED")
    except Exception as exc:
        log(f"sweep {reason}; could not mark it KILLED in MLflow ({type(exc).__name__}); the next sweep will")
        return
    log(f"sweep {reason}: parent run {parent} and its running job marked KILLED")


def close_parent_if_open() -> None:
    if STATE.parent_run_id is None:
        return
    from harness.store import Store

    parent, STATE.parent_run_id = STATE.parent_run_id, None
    try:
        store = Store(STATE.tracking)
        if store.status(parent) == "RUNNING":
            store.set_terminated(parent, "FAILED")
            STATE.exit_code = STATE.exit_code or 1
    except Exception as exc:
        STATE.exit_code = STATE.exit_code or 1
        log(f"could not mark the sweep's parent run {parent} FAILED in MLflow ({type(exc).__name__})")
