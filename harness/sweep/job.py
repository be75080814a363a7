"""One job of a sweep, whichever launcher runs it: skip what is done, claim it, train it in a
warm worker, leave its outcome in its Hydra job folder.

The sweep callback (harness.sweep.callback) writes the plan to the sweep folder before any
job starts; every job reads it there, in whatever process its launcher runs it: the harness
launcher's slots (harness.sweep.launcher), or the task function under joblib, submitit or
SLURM (`run_task`).
"""

from __future__ import annotations

import json
import math
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.sweep import timing
from harness.sweep.workers import Job, Outcome

PLAN_FILE = "harness_sweep.json"
OUTCOME_FILE = "harness_outcome.json"
BUSY = "BUSY"  # another sweep holds a live claim on this job: try again later
ELSEWHERE = "ELSEWHERE"  # FINISHED by another sweep while this one ran
WAIT_S = 2.0  # how often a job whose claim another sweep holds looks again (task-function path)

Train = Callable[[Job, Callable[[str], None] | None], Outcome]


def log(msg: str) -> None:
    """A line of the sweep's log; a URI's credentials never reach it."""
    from harness.store.uri import redact

    print(f"[harness] {redact(msg)}", file=sys.stderr, flush=True)


@dataclass
class Plan:
    """What the sweep decided before its jobs started (the plan file in the sweep folder)."""

    parent_run_id: str | None = None
    planned: int = 0
    skip: dict[str, str] = field(default_factory=dict)  # config hash -> its FINISHED run
    jobs: list[dict] = field(default_factory=list)  # run_name, config_hash, overrides

    @property
    def names(self) -> dict[str, str]:
        return {j["config_hash"]: j["run_name"] for j in self.jobs}

    def write(self, sweep_dir: Path) -> None:
        sweep_dir.mkdir(parents=True, exist_ok=True)
        (sweep_dir / PLAN_FILE).write_text(json.dumps(self.__dict__))

    @classmethod
    def read(cls, sweep_dir: Path) -> Plan:
        path = Path(sweep_dir) / PLAN_FILE
        return cls(**json.loads(path.read_text())) if path.exists() else cls()


class JobRunner:
    """Runs the jobs of one sweep in one process: claims (one heartbeat thread), outcomes.

    A claim is taken before its job trains; what follows (its link to the job run, its
    release once the job has ended) is written by one writer thread, in order, while the slot
    goes on with its next job (tens of ms per job on SQLite). A slot's next job can be claimed
    ahead, on the same thread, while the job before it trains (`claim_ahead`): its turn then
    finds its claim taken. close() waits for those writes, and releases a claim taken ahead
    for a job that never ran (an interrupted sweep).
    """

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.claims = None  # harness.store.claims.Claims, opened by the first tracked job
        self.waiting: set[str] = set()  # hashes whose "claimed elsewhere" was said once
        self.suspect = False  # the last job failed: check the server before claiming the next
        self.writer: ThreadPoolExecutor | None = None  # a claim's link and release, in order
        self.ahead: dict[str, Future] = {}  # config hash -> its claim, taken ahead of its turn
        self.ahead_lock = threading.Lock()

    def _later(self, write: Callable[[], Any]) -> Future:
        """Run `write` on the claims' writer thread, after the writes submitted before it."""
        if self.writer is None:
            self.writer = ThreadPoolExecutor(1, thread_name_prefix="harness-claims-writer")

        def timed() -> Any:
            t0 = time.perf_counter()
            try:
                return write()
            finally:
                timing.clock.add("claim_background_s", time.perf_counter() - t0)

        return self.writer.submit(timed)

    def claim_ahead(self, job: Job) -> None:
        """Claim `job` on the writer thread now, ahead of its turn (a slot's next job, while
        the one before it trains); its turn (attempt) takes that claim instead of claiming."""
        chash = job.config_hash
        if chash in self.plan.skip or not job.spec.tracking.enabled:
            return
        name = self.plan.names.get(chash, "")
        with self.ahead_lock:  # two slots asking for one job: one claim
            if chash in self.ahead:
                return
            self.ahead[chash] = self._later(
                lambda: self._claims(job).try_claim(
                    chash, name, self.plan.parent_run_id, job.spec.tracking.resume
                )
            )

    def _claimed_ahead(self, chash: str):
        """The claim taken ahead for this job, if it was taken and is ours or settled."""
        future = self.ahead.pop(chash, None)
        if future is None:
            return None
        try:
            claim = future.result()
        except Exception:  # the store failed then: the job's turn tries again, and says why
            return None
        return None if claim.kind == "busy" else claim  # busy then: look again now

    def _claims(self, job: Job):
        if self.claims is None and job.spec.tracking.enabled:
            from harness.store import Store
            from harness.store.claims import Claims

            self.claims = Claims(
                Store(job.spec.tracking), job.spec.tracking.claim_timeout_s, log=log
            )
        return self.claims

    def attempt(self, job: Job, train: Train) -> Outcome:
        """Job's outcome, or BUSY while another sweep's live claim holds it."""
        chash = job.config_hash
        name = self.plan.names.get(chash, "")
        if chash in self.plan.skip:
            return Outcome("SKIPPED", run_id=self.plan.skip[chash], run_name=name)
        timing.clock.mark("first_job", first=True)
        if not job.spec.tracking.enabled:
            return self._train(job, train, None)
        t0 = time.perf_counter()
        try:
            claims = self._claims(job)
            if self.suspect:  # a job failed: seconds to a clear error if the server is gone
                from harness.store import check_server, resolve_uri

                check_server(resolve_uri(job.spec.tracking))
            claim = self._claimed_ahead(chash) or claims.try_claim(
                chash, name, self.plan.parent_run_id, job.spec.tracking.resume
            )
        except Exception as exc:  # a job never raises: its slot goes on with the next one
            self.suspect = True
            return Outcome("FAILED", run_name=name, error=self._why(job, exc))
        finally:
            timing.clock.add("claim_s", time.perf_counter() - t0)
        if claim.kind == "finished":
            return Outcome(ELSEWHERE, run_id=claim.run_id, run_name=name)
        if claim.kind == "busy":
            if chash not in self.waiting:
                self.waiting.add(chash)
                log(
                    f"{job.label} {name}: another sweep is training it ({claim.holder}); "
                    "back to it later"
                )
            return Outcome(BUSY, run_name=name)
        outcome = Outcome("KILLED", error="interrupted")
        try:
            outcome = self._train(
                job, train, lambda run_id: self._later(lambda: claims.link(claim.run_id, run_id))
            )
        finally:
            self._later(lambda: self._end(claims, claim.run_id, outcome, job.label))
        self.suspect = outcome.status == "FAILED"
        return outcome

    @staticmethod
    def _train(job: Job, train: Train, on_started: Callable[[str], None] | None) -> Outcome:
        """Train the job; its run's parts of the sweep's time (harness.sweep.timing)."""
        t0 = time.perf_counter()
        outcome = train(job, on_started)
        seconds = time.perf_counter() - t0
        result = outcome.result
        if outcome.status == "FINISHED" and result is not None:
            timing.clock.add_run(result.final, result.end_s)
            # the job's time in its worker's hands, less its run: the worker's start and
            # import (first job), the job's trip to the worker and the result's back
            timing.clock.add("worker_wait_s", max(0.0, seconds - result.span_s))
        return outcome

    @staticmethod
    def _why(job: Job, exc: Exception) -> str:
        """A job's error from the store: the lost server named as such, credentials redacted."""
        from harness.store import TrackingUnavailable, check_server, redact, resolve_uri

        if not isinstance(exc, TrackingUnavailable):
            try:
                check_server(resolve_uri(job.spec.tracking), timeout_s=2.0)
            except TrackingUnavailable as lost:
                exc = lost
        return redact(f"{type(exc).__name__}: {exc}")[:2000]

    def _end(self, claims, claim_id: str, outcome: Outcome, label: str) -> None:
        from harness.store import redact

        try:
            # a worker that died left its run RUNNING: end it, then free the job for others
            if (
                outcome.status == "KILLED"
                and outcome.run_id
                and claims.store.status(outcome.run_id) == "RUNNING"
            ):
                claims.store.set_terminated(outcome.run_id, "KILLED")
            claims.release(claim_id, "FINISHED" if outcome.status == "FINISHED" else "KILLED")
        except (
            Exception
        ) as exc:  # a job never raises (Hydra would stop the sweep); the claim goes stale
            log(
                f"{label} could not end run {outcome.run_id} or its claim: {redact(str(exc))[:300]}"
            )

    def close(self) -> None:
        """Every claim written and released (an interrupted sweep's too), heartbeat stopped."""
        if self.writer is not None:
            self.writer.shutdown(wait=True)
            self.writer = None
        if self.claims is not None:
            self.claims.close()


def record(outcome: Outcome, out_dir: Path, name: str) -> None:
    """The job's outcome file, which the sweep callback sums up at the end."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / OUTCOME_FILE).write_text(
        json.dumps(
            {
                "status": outcome.status,
                "run_id": outcome.run_id,
                "run_name": name,
                "error": outcome.error,
            }
        )
    )


def report(outcome: Outcome, label: str, name: str, seconds: float, left: float | None) -> float:
    """The job's line in the sweep's log; its objective for Hydra (NaN unless FINISHED)."""
    from harness.sweep.progress import duration

    if outcome.status == "SKIPPED":
        log(f"{label} skipped {name}: FINISHED already as run {outcome.run_id}")
    elif outcome.status == ELSEWHERE:
        log(f"{label} {name}: done elsewhere, by another sweep (run {outcome.run_id})")
    else:
        more = f"; ~{duration(left)} left" if left else ""
        log(f"{label} {outcome.status.lower()} {name} ({seconds:.1f} s{more})")
        if outcome.status != "FINISHED":
            log(f"{label} {name}: {outcome.error}")
    return outcome.result.objective if outcome.status == "FINISHED" else math.nan


def run_task(cfg) -> float:
    """The task function of a job under another launcher (joblib, submitit, SLURM): this
    process's warm worker trains it; a job another sweep holds is waited for."""
    from hydra.core.hydra_config import HydraConfig

    from harness.core.config import to_spec
    from harness.run.train import config_hash
    from harness.sweep.workers import pool

    hc = HydraConfig.get()
    plan = Plan.read(Path(hc.sweep.dir))
    spec = to_spec(cfg)
    chash = config_hash(spec)
    label = f"[{hc.job.num + 1}/{plan.planned or '?'}]"
    # joblib's n_jobs: the jobs this machine runs at once, which share its cores
    slots = hc.launcher.get("n_jobs") if "launcher" in hc else None
    workers = pool(slots if isinstance(slots, int) and slots > 0 else 1)
    runner = JobRunner(plan)
    job = Job(
        spec,
        list(hc.overrides.task),
        plan.parent_run_id,
        label,
        progress="lines",
        config_hash=chash,
    )
    after = max(0, plan.planned - (hc.job.num + 1))
    job.sweep_after_s = workers.time_left(after)

    def train(job: Job, on_started: Callable[[str], None] | None) -> Outcome:
        from harness.sweep import gpus

        with gpus.for_job(
            job.spec.train.device.value, log=lambda m: log(f"{label} {m}")
        ) as job.gpu:
            return workers.run(job, on_started)

    t0 = time.perf_counter()
    try:
        while (outcome := runner.attempt(job, train)).status == BUSY:
            time.sleep(WAIT_S)
    finally:
        runner.close()
    seconds = time.perf_counter() - t0
    if outcome.status not in ("SKIPPED", ELSEWHERE):
        workers.times.append(seconds)
    name = outcome.run_name or plan.names.get(chash) or " ".join(job.overrides)
    record(outcome, Path(hc.runtime.output_dir), name)
    return report(outcome, label, name, seconds, workers.time_left(after))
