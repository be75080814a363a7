"""Warm worker processes: one per backend, reused across a sweep's jobs, reset every run.

Why not run jobs in the sweep's own process: Keras and torch would share one process (a
Lightning run would pay for TensorFlow and vice versa), and a SIGKILL, OOM kill or segfault
in a framework would take the whole sweep down. Why not a fresh process per job: imports
alone cost 4-5 s per process against 1-4 s of training. A worker imports its framework once
and every run resets what it could leak (seeds, Keras session and float settings,
determinism flags): the no-leak tests check that a run's metrics are bitwise identical alone
or inside a mixed sweep. A worker that dies is replaced for the next job, and the run it
left RUNNING is ended KILLED by the supervisor here.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from dataclasses import dataclass, field
from typing import Any

from harness.core.config import Config, ConfigError


@dataclass
class Job:
    spec: Config
    overrides: list[str]
    parent_run_id: str | None
    label: str = ""  # e.g. "[3/12]" for progress lines
    progress: str = "auto"  # harness.sweep.progress mode: auto (bar on a terminal), lines, off
    sweep_after_s: float | None = None  # estimated time of the jobs after this one
    gpu: str | None = None  # CUDA_VISIBLE_DEVICES for its worker (harness.sweep.gpus); None: inherited


@dataclass
class Outcome:
    status: str  # FINISHED | FAILED | KILLED | INVALID
    run_id: str | None = None
    run_name: str = ""
    result: Any = None  # RunResult when FINISHED
    error: str = ""
    traceback: str = ""
    exitcode: int | None = None
    extra: dict = field(default_factory=dict)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _serve(conn, backend: str | None = None) -> None:
    """Worker loop: run jobs until told to stop or the supervisor goes away."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    from harness.sweep.progress import EpochProgress
    from harness.run.train import run
    from harness.store import preload

    if backend is not None:
        from backends import get_backend

        try:
            get_backend(backend)  # its framework's import, once, before the first job
            preload()  # and MLflow's client and SQL store (~1.5 s), else the first run's
        except Exception:
            pass  # the first job raises it again, and records it as that run's failure
    _settle()

    while True:
        try:
            job = conn.recv()
        except (EOFError, KeyboardInterrupt):
            return
        if job is None:
            return
        bar = EpochProgress(job.label, job.spec.train.epochs, job.progress, job.sweep_after_s)

        def started(run_id: str, name: str) -> None:
            bar.started(name)
            conn.send(("started", (run_id, name)))

        try:
            try:
                result = run(
                    job.spec,
                    job.overrides,
                    log=bar.print,
                    parent_run_id=job.parent_run_id,
                    on_started=started,
                    on_metrics=lambda epoch, _metrics: bar.update(epoch),
                )
            finally:
                bar.clear()  # before the supervisor prints the job's outcome
            conn.send(("done", Outcome("FINISHED", result=result)))
        except ConfigError as exc:
            conn.send(("done", Outcome("INVALID", error=str(exc))))
        except (KeyboardInterrupt, SystemExit) as exc:
            conn.send(("done", Outcome("KILLED", error=f"interrupted ({exc!r})")))
            return
        except BaseException as exc:  # the run is already recorded FAILED with its traceback
            conn.send(
                ("done", Outcome("FAILED", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc()))
            )
        _settle()  # while the supervisor prepares the next job


def _settle() -> None:
    """Collect the last run's garbage, then freeze what is left out of the cyclic GC's reach.

    What outlives a run (modules imported on first use, MLflow's and the frameworks' caches)
    lives as long as the process. Keras' clear_session() runs a full gc.collect() every run:
    over ~10^6 framework objects that cost 0.1-0.3 s per run, over one run's garbage ~ms.
    """
    gc.collect()
    gc.freeze()


class Worker:
    """A fresh interpreter (`python -m harness.sweep.workers FD`) talking over a socket pair.

    A plain subprocess rather than multiprocessing: it works the same under any launcher
    (joblib's loky processes cannot spawn multiprocessing children) and inherits nothing.
    """

    def __init__(self, key: tuple, env: dict[str, str] | None = None) -> None:
        parent_sock, child_sock = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.sweep.workers", str(child_sock.fileno()), str(key[0])],
            pass_fds=(child_sock.fileno(),),
            env={**os.environ, **(env or {})},
        )
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.key = key

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, job: Job) -> Outcome:
        self.conn.send(job)
        run_id, name = None, ""
        while True:
            try:
                kind, payload = self.conn.recv()
            except (EOFError, ConnectionError, OSError):
                code = self._wait(5)
                why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                return Outcome(
                    "KILLED", run_id=run_id, run_name=name, error=f"worker process died ({why})", exitcode=code
                )
            if kind == "started":
                run_id, name = payload
            else:
                payload.run_id, payload.run_name = run_id, name
                return payload

    def stop(self, timeout: float = 10.0) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        if self._wait(timeout) is None:
            self.process.kill()
            self.process.wait()
        self.conn.close()

    def discard(self) -> None:
        """End a worker that holds no run (idle or still importing) without waiting for it."""
        self.process.kill()
        self.process.wait()
        self.conn.close()

    def _wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def interrupt(self) -> None:
        if self.alive():
            self.process.send_signal(signal.SIGINT)


class WorkerPool:
    """Workers keyed by (backend, device, threads, GPU): settings fixed once per process.

    parallel_jobs: how many jobs run at once on this machine; each worker then gets its
    share of the cores (HARNESS_THREADS) unless train.threads says otherwise, so two
    parallel jobs do not fight over the same cores.
    """

    def __init__(self, parallel_jobs: int = 1) -> None:
        self.workers: dict[tuple, Worker] = {}
        self.scheduler: Scheduler | None = None  # a parallel sweep's slots and their workers
        # the cores this process may use: a SLURM job's allocation, not the whole node
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.env = {"HARNESS_THREADS": str(max(1, cores // max(1, parallel_jobs)))}

    @staticmethod
    def _key(spec: Config, gpu: str | None) -> tuple:
        return (spec.backend.name, str(spec.train.device), spec.train.threads, gpu)

    def prewarm(self, spec: Config) -> None:
        """Start now the worker this job will need, so that its import overlaps other work."""
        if spec.train.device.value != "cpu":
            from harness.sweep import gpus

            if len(gpus.visible_gpus()) > 1:
                return  # the job's GPU (part of its worker's key) is leased when it starts
        key = self._key(spec, None)
        if key not in self.workers:
            self.workers[key] = Worker(key, self.env)

    def retain(self, specs: list[Config]) -> None:
        """Stop the workers that none of these jobs needs (e.g. all skipped on resume)."""
        wanted = {self._key(spec, None)[:3] for spec in specs}
        for key in [k for k in self.workers if k[:3] not in wanted]:
            self.workers.pop(key).discard()

    def discard(self) -> None:
        """End every worker now: the sweep stops before running anything."""
        if self.scheduler is not None:
            self.scheduler.discard()
        for worker in self.workers.values():
            worker.discard()
        self.workers.clear()

    def run(self, job: Job) -> Outcome:
        key = self._key(job.spec, job.gpu)
        worker = self.workers.get(key)
        if worker is None or not worker.alive():
            # a worker keeps its GPU busy (CUDA context) while idle: one GPU per backend here
            for other in [k for k in self.workers if k[:3] == key[:3] and k[3] != job.gpu]:
                self.workers.pop(other).stop()
            worker = self.workers[key] = Worker(key, self._env(job.gpu))
        outcome = worker.run(job)
        if not worker.alive() or outcome.status == "KILLED":
            worker.stop(timeout=1.0)
            self.workers.pop(key, None)
        return outcome

    def _env(self, gpu: str | None) -> dict[str, str]:
        """A worker's environment: its share of the cores, and its GPU if it leased one."""
        return self.env if gpu is None else {**self.env, "CUDA_VISIBLE_DEVICES": gpu}

    def take(self, key: tuple) -> Worker:
        """This key's idle worker (prewarmed, say), handed over to the caller, or a new one."""
        worker = self.workers.pop(key, None)
        return worker if worker is not None and worker.alive() else Worker(key, self._env(key[3]))

    def interrupt(self, timeout: float = 15.0) -> None:
        """Forward an interrupt to every worker and give each time to end its run KILLED."""
        if self.scheduler is not None:
            self.scheduler.interrupt(timeout)
        for worker in self.workers.values():
            worker.interrupt()
        for worker in self.workers.values():
            worker._wait(timeout)
        self.close()

    def close(self) -> None:
        """At the end of the sweep: the workers are idle (every run ended and flushed), and
        a clean exit of an interpreter holding TensorFlow takes ~2 s, so they are ended."""
        self.discard()


class Scheduler:
    """A sweep's jobs, `slots` at a time, each slot a thread driving its own warm worker.

    It runs ahead of Hydra's (in-process, sequential) launcher, which then collects each
    job's outcome in order (harness.sweep.run_job). Imports are what a slot must not waste
    (4-5 s per framework against 1-4 s per job), so a slot keeps its worker while jobs for
    it remain; a slot that needs a worker takes the first job whose backend no other slot
    holds (a mixed sweep imports each framework once), and starts a second worker of a
    backend another slot holds only while at least MIN_JOBS_FOR_ANOTHER jobs of it remain.
    """

    MIN_JOBS_FOR_ANOTHER = 3

    def __init__(self, pool: WorkerPool, slots: int) -> None:
        self.pool, self.slots = pool, slots
        self.pending: list[tuple[int, Job]] = []
        self.outcomes: dict[int, Outcome] = {}
        self.workers: list[Worker | None] = [None] * slots
        self.cond = threading.Condition()
        self.active = 0
        self.stopped = False

    def start(self, jobs: list[tuple[int, Job]]) -> None:
        self.pending = list(jobs)
        self.active = self.slots
        for slot in range(self.slots):
            threading.Thread(target=self._slot, args=(slot,), name=f"harness-slot-{slot}", daemon=True).start()

    def outcome(self, index: int) -> Outcome | None:
        """Job `index`'s outcome once it has one; None if no slot will run it (interrupted)."""
        with self.cond:
            while index not in self.outcomes and self.active > 0:
                self.cond.wait(0.5)  # a timeout keeps Ctrl-C deliverable to this thread
            return self.outcomes.pop(index, None)

    @staticmethod
    def _kind(job: Job) -> tuple:
        return WorkerPool._key(job.spec, None)[:3]

    def _pick(self, slot: int) -> tuple[int, Job] | None:
        mine = self.workers[slot]
        if mine is not None:
            for item in self.pending:
                if self._kind(item[1]) == mine.key[:3]:
                    return item
        held = {w.key[:3] for i, w in enumerate(self.workers) if w is not None and i != slot}
        for item in self.pending:
            if self._kind(item[1]) not in held:
                return item
        if self.pending:
            kind = self._kind(self.pending[0][1])
            if sum(self._kind(job) == kind for _, job in self.pending) >= self.MIN_JOBS_FOR_ANOTHER:
                return self.pending[0]
        return None

    def _worker(self, slot: int, job: Job) -> Worker:
        key = WorkerPool._key(job.spec, job.gpu)
        worker = self.workers[slot]
        if worker is None or worker.key != key or not worker.alive():
            if worker is not None:
                worker.discard()
            worker = self.workers[slot] = self.pool.take(key)
        return worker

    def _slot(self, slot: int) -> None:
        from harness.sweep import gpus

        item = None
        try:
            while True:
                with self.cond:
                    item = None if self.stopped else self._pick(slot)
                    if item is None:
                        return
                    self.pending.remove(item)
                index, job = item
                t0 = time.perf_counter()
                held = self.workers[slot]
                with gpus.for_job(job.spec.train.device.value, prefer=held.key[3] if held else None) as job.gpu:
                    worker = self._worker(slot, job)
                    outcome = worker.run(job)
                outcome.extra["seconds"] = time.perf_counter() - t0
                if not worker.alive() or outcome.status == "KILLED":
                    worker.stop(timeout=1.0)
                    self.workers[slot] = None
                with self.cond:
                    self.outcomes[index] = outcome
                    self.cond.notify_all()
                item = None
        except BaseException as exc:  # no job may wait forever for a slot that is gone
            if item is not None:
                with self.cond:
                    self.outcomes[item[0]] = Outcome("FAILED", error=f"{type(exc).__name__}: {exc}")
        finally:
            with self.cond:
                worker, self.workers[slot] = self.workers[slot], None
                self.active -= 1
                self.cond.notify_all()
            if worker is not None:
                worker.discard()  # idle: its slot has no job left

    def interrupt(self, timeout: float) -> None:
        """Ctrl-C: no new job starts; the running ones end KILLED."""
        with self.cond:
            self.stopped = True
            running = [w for w in self.workers if w is not None]
        for worker in running:
            worker.interrupt()
        for worker in running:
            worker._wait(timeout)

    def discard(self) -> None:
        with self.cond:
            self.stopped = True
            workers, self.workers = [w for w in self.workers if w is not None], [None] * self.slots
        for worker in workers:
            worker.discard()


_POOL: WorkerPool | None = None


def pool(parallel_jobs: int = 1) -> WorkerPool:
    global _POOL
    if _POOL is None:
        import atexit

        _POOL = WorkerPool(parallel_jobs)
        atexit.register(_POOL.close)
    return _POOL


if __name__ == "__main__":
    # import by module name so pickled Outcome/Job classes are harness.workers.*, not __main__.*
    from harness.sweep.workers import _serve as serve

    serve(Connection(int(sys.argv[1])), sys.argv[2] if len(sys.argv) > 2 else None)
