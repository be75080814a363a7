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

import functools
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
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
    jobs_after: int = 0  # how many jobs of the sweep come after this one
    gpu: str | None = (
        None  # CUDA_VISIBLE_DEVICES for its worker (harness.sweep.gpus); None: inherited
    )
    config_hash: str = ""  # what a sweep claims before the job trains (harness.store.claims)


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


def _die_with_parent(parent: int) -> None:
    """A worker whose sweep process was killed must not go on training: another sweep takes
    its job over once the claim is stale, and two runs would then finish. Linux ends it with
    its parent (PR_SET_PDEATHSIG); elsewhere a thread watches the parent process."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # died before the line above (while this one imported)
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="harness-parent-watch", daemon=True).start()


def _serve(conn, backend: str | None = None, parent: int | None = None) -> None:
    """Worker loop: run jobs until told to stop or the supervisor goes away."""
    _die_with_parent(parent or os.getppid())
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    from harness.run.train import run
    from harness.store import preload
    from harness.sweep.progress import EpochProgress

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

        def started(run_id: str, name: str, bar: EpochProgress = bar) -> None:
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
                    on_metrics=lambda epoch, _metrics, bar=bar: bar.update(epoch),
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
                (
                    "done",
                    Outcome(
                        "FAILED",
                        error=f"{type(exc).__name__}: {exc}",
                        traceback=traceback.format_exc(),
                    ),
                )
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
            [
                sys.executable,
                "-m",
                "harness.sweep.workers",
                str(child_sock.fileno()),
                str(key[0]),
                str(os.getpid()),
            ],
            pass_fds=(child_sock.fileno(),),
            env={**os.environ, **(env or {})},
        )
        child_sock.close()
        self.conn = Connection(parent_sock.detach())
        self.key = key

    def alive(self) -> bool:
        return self.process.poll() is None

    def run(self, job: Job, on_started: Callable[[str], None] | None = None) -> Outcome:
        """Train `job` here; on_started(run_id) as soon as its MLflow run exists."""
        self.conn.send(job)
        run_id, name = None, ""
        while True:
            try:
                kind, payload = self.conn.recv()
            except (EOFError, ConnectionError, OSError):
                code = self._wait(5)
                why = (
                    f"killed by signal {-code}"
                    if code is not None and code < 0
                    else f"exit code {code}"
                )
                return Outcome(
                    "KILLED",
                    run_id=run_id,
                    run_name=name,
                    error=f"worker process died ({why})",
                    exitcode=code,
                )
            if kind == "started":
                run_id, name = payload
                if on_started is not None:
                    on_started(run_id)
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

    slots: how many jobs run at once on this machine; each worker then gets its share of
    the cores (HARNESS_THREADS) unless train.threads says otherwise, so two parallel jobs do
    not fight over the same cores.
    """

    def __init__(self, slots: int = 1) -> None:
        self.slots = max(1, slots)
        self.workers: dict[tuple, Worker] = {}
        self.lock = threading.Lock()  # the launcher prewarms while its slots take
        self.times: list[float] = []  # seconds per job run so far: the sweep's time left
        # the cores this process may use: a SLURM job's allocation, not the whole node
        cores = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else (os.cpu_count() or 1)
        )
        self.env = {"HARNESS_THREADS": str(max(1, cores // self.slots))}

    @staticmethod
    def _key(spec: Config, gpu: str | None) -> tuple:
        return (spec.backend.name, str(spec.train.device), spec.train.threads, gpu)

    def time_left(self, jobs: int) -> float | None:
        """The mean job time so far times the jobs left, shared among the slots."""
        return jobs * sum(self.times) / len(self.times) / self.slots if self.times else None

    def prewarm(self, spec: Config) -> None:
        """Start now the worker this job will need, so that its import overlaps other work."""
        if spec.train.device.value != "cpu":
            from harness.sweep import gpus

            if len(gpus.visible_gpus()) > 1:
                return  # the job's GPU (part of its worker's key) is leased when it starts
        key = self._key(spec, None)
        with self.lock:
            if key not in self.workers:
                self.workers[key] = Worker(key, self.env)

    def run(self, job: Job, on_started: Callable[[str], None] | None = None) -> Outcome:
        """Run one job in this process's warm worker for its backend and GPU (job.gpu)."""
        key = self._key(job.spec, job.gpu)
        worker = self.workers.get(key)
        if worker is None or not worker.alive():
            # a worker keeps its GPU busy (CUDA context) while idle: one GPU per backend here
            for other in [k for k in self.workers if k[:3] == key[:3] and k[3] != job.gpu]:
                self.workers.pop(other).stop()
            worker = self.workers[key] = Worker(key, self._env(job.gpu))
        outcome = worker.run(job, on_started)
        if not worker.alive() or outcome.status == "KILLED":
            worker.stop(timeout=1.0)
            self.workers.pop(key, None)
        return outcome

    def _env(self, gpu: str | None) -> dict[str, str]:
        """A worker's environment: its share of the cores, and its GPU if it leased one."""
        return self.env if gpu is None else {**self.env, "CUDA_VISIBLE_DEVICES": gpu}

    def take(self, key: tuple) -> Worker:
        """This key's idle worker (prewarmed, say), handed over to the caller, or a new one."""
        with self.lock:
            worker = self.workers.pop(key, None)
        return worker if worker is not None and worker.alive() else Worker(key, self._env(key[3]))

    def interrupt(self, timeout: float = 15.0) -> None:
        """Forward an interrupt to every worker and give each time to end its run KILLED."""
        for worker in self.workers.values():
            worker.interrupt()
        for worker in self.workers.values():
            worker._wait(timeout)
        self.close()

    def close(self) -> None:
        """End every worker now. At the end of a sweep they are idle (every run ended and
        flushed), and a clean exit of an interpreter holding TensorFlow takes ~2 s."""
        for worker in self.workers.values():
            worker.discard()
        self.workers.clear()


_early: WorkerPool | None = None  # started by the sweep callback, taken by the launcher


def early_pool(slots: int) -> WorkerPool:
    """The workers the sweep callback starts while it plans, for the launcher to take."""
    global _early
    if _early is None or _early.slots != max(1, slots):
        drop_early_pool()
        _early = WorkerPool(slots)
    return _early


def take_pool(slots: int) -> WorkerPool:
    """The launcher's workers: those started early for as many slots, or a new pool."""
    global _early
    if _early is not None and _early.slots == max(1, slots):
        taken, _early = _early, None
        return taken
    drop_early_pool()
    return WorkerPool(slots)


def drop_early_pool() -> None:
    global _early
    if _early is not None:
        _early.close()
        _early = None


@functools.cache
def pool(slots: int = 1) -> WorkerPool:
    """This process's warm workers for jobs that a launcher hands to its task function, one
    at a time (joblib's loky processes, submitit's jobs): they outlive one job, so the pool
    lives as long as the process and is closed at its exit."""
    import atexit

    workers = WorkerPool(slots)
    atexit.register(workers.close)
    return workers


if __name__ == "__main__":
    # by module name: pickled Outcome/Job classes are harness.sweep.workers.*, not __main__.*
    from harness.sweep.workers import _serve as serve

    serve(Connection(int(sys.argv[1])), sys.argv[2], int(sys.argv[3]))
