"""A sweep's jobs run `slots` at a time on this machine, each slot a thread with a warm worker."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable

from harness.store.uri import redact
from harness.sweep.job import BUSY
from harness.sweep.workers import Job, Outcome, Worker, WorkerPool

# what a slot runs for a job: (job, train) -> its outcome, where train(job, on_started)
# trains it on the slot's worker; an outcome BUSY puts the job back for later
Runner = Callable[[Job, Callable[[Job, Callable[[str], None] | None], Outcome]], Outcome]


class Scheduler:
    """A sweep's jobs, `slots` at a time, each slot a thread driving its own warm worker.

    Jobs are added as the launcher composes them and run ahead of it; the launcher collects
    each job's outcome in order. Imports are what a slot must not waste (4-5 s per framework
    against 1-4 s per job), so a slot keeps its worker while jobs for it remain; a slot that
    needs a worker takes the first job whose backend no other slot holds (a mixed sweep
    imports each framework once; a slot holds a backend from the moment it picks a job of
    it). Once every job is queued, a slot starts a second worker of a backend another slot
    holds only when the jobs of it left would take the one slot at least twice a worker's
    start (START_S; before any job of it has ended: while MIN_JOBS_FOR_ANOTHER remain): the
    second worker's import must be paid back. A job that another sweep is training (BUSY)
    goes back to the queue and is tried again after RETRY_S.
    """

    MIN_JOBS_FOR_ANOTHER = 3
    START_S = 12.0  # a worker's start and framework import, 2 cores under load (4-15 s)
    RETRY_S = 1.0

    def __init__(
        self,
        pool: WorkerPool,
        slots: int,
        runner: Runner | None = None,
        ahead: Callable[[Job], None] | None = None,
    ) -> None:
        self.pool, self.slots = pool, slots
        self.runner: Runner = runner or (lambda job, train: train(job, None))
        self.ahead = ahead  # told a slot's likely next job as its current one starts training
        self.pending: list[tuple[int, Job]] = []
        self.not_before: dict[int, float] = {}  # a BUSY job's next try
        self.outcomes: dict[int, Outcome] = {}
        self.workers: list[Worker | None] = [None] * slots
        self.kinds: list[tuple | None] = [None] * slots  # the backend each slot holds
        self.seconds: dict[tuple, list[float]] = {}  # per backend: its jobs' times so far
        self.cond = threading.Condition()
        self.threads: list[threading.Thread] = []
        self.complete = False  # every job has been added
        self.active = 0
        self.stopped = False

    def add(self, index: int, job: Job) -> None:
        with self.cond:
            self.pending.append((index, job))
            self.cond.notify_all()
        if not self.threads:
            self.active = self.slots
            for slot in range(self.slots):
                thread = threading.Thread(
                    target=self._slot, args=(slot,), name=f"harness-slot-{slot}", daemon=True
                )
                self.threads.append(thread)
                thread.start()

    def start(self, jobs: list[tuple[int, Job]]) -> None:
        for index, job in jobs:
            self.add(index, job)
        self.all_added()

    def all_added(self) -> None:
        with self.cond:
            self.complete = True
            self.cond.notify_all()

    def outcome(self, index: int) -> Outcome | None:
        """Job `index`'s outcome once it has one; None if no slot will run it (interrupted)."""
        with self.cond:
            while index not in self.outcomes and (self.active > 0 or not self.threads):
                self.cond.wait(0.5)  # a timeout keeps Ctrl-C deliverable to this thread
            return self.outcomes.pop(index, None)

    @staticmethod
    def _kind(job: Job) -> tuple:
        return WorkerPool._key(job.spec, None)[:3]

    def _pick(self, slot: int) -> tuple[int, Job] | None:
        now = time.monotonic()
        ready = [item for item in self.pending if self.not_before.get(item[0], 0.0) <= now]
        mine = self.kinds[slot]
        if mine is not None:
            for item in ready:
                if self._kind(item[1]) == mine:
                    return item
        held = self._held_elsewhere(slot)
        for item in ready:
            if self._kind(item[1]) not in held:
                return item
        if ready and self.complete and self._worth_another(self._kind(ready[0][1])):
            return ready[0]
        return None

    def _worth_another(self, kind: tuple) -> bool:
        """Whether the jobs of `kind` left pay back another worker's start (START_S)."""
        left = sum(self._kind(job) == kind for _, job in self.pending)
        times = self.seconds.get(kind)
        if not times:
            return left >= self.MIN_JOBS_FOR_ANOTHER
        return left * statistics.median(times) >= 2 * self.START_S

    def _next(self, slot: int) -> tuple[int, Job] | None:
        """The slot's next job, waiting while jobs may still come (being added, or BUSY)."""
        with self.cond:
            while not self.stopped:
                item = self._pick(slot)
                if item is not None:
                    self.pending.remove(item)
                    self.kinds[slot] = self._kind(item[1])
                    return item
                if self.complete and not self.pending:
                    return None
                if self.complete and all(
                    self._kind(j) in self._held_elsewhere(slot) for _, j in self.pending
                ):
                    if not any(i in self.not_before for i, _ in self.pending):
                        return None  # the other slots hold these jobs' backend: theirs
                self.cond.wait(0.2)
            return None

    def _tell_next(self, job: Job) -> None:
        """Tell `ahead` the job this slot will likely take next: the first ready one of the
        same backend (its claim is then taken while this one trains)."""
        if self.ahead is None:
            return
        kind, now = self._kind(job), time.monotonic()
        with self.cond:
            following = next(
                (
                    j for i, j in self.pending
                    if self._kind(j) == kind and self.not_before.get(i, 0.0) <= now
                ),
                None,
            )
        if following is not None:
            self.ahead(following)

    def _held_elsewhere(self, slot: int) -> set[tuple]:
        return {k for i, k in enumerate(self.kinds) if k is not None and i != slot}

    def _train(self, slot: int, job: Job, on_started: Callable[[str], None] | None) -> Outcome:
        """Train `job` on this slot's worker (taken, or replaced for another backend or GPU)."""
        from harness.sweep import gpus

        held = self.workers[slot]
        with gpus.for_job(
            job.spec.train.device.value, prefer=held.key[3] if held else None
        ) as job.gpu:
            key = WorkerPool._key(job.spec, job.gpu)
            worker = self.workers[slot]
            if worker is None or worker.key != key or not worker.alive():
                if worker is not None:
                    worker.discard()
                worker = self.workers[slot] = self.pool.take(key)
            outcome = worker.run(job, on_started)
        if not worker.alive() or outcome.status == "KILLED":
            worker.stop(timeout=1.0)
            self.workers[slot] = None
        return outcome

    def _slot(self, slot: int) -> None:
        item = None
        try:
            while (item := self._next(slot)) is not None:
                index, job = item
                t0 = time.perf_counter()

                def train(j: Job, started: Callable[[str], None] | None) -> Outcome:
                    self._tell_next(j)  # claimed (the runner's turn), about to train
                    return self._train(slot, j, started)

                outcome = self.runner(job, train)
                with self.cond:
                    if outcome.status == BUSY:
                        self.pending.append(item)
                        self.not_before[index] = time.monotonic() + self.RETRY_S
                    else:
                        outcome.extra["seconds"] = time.perf_counter() - t0
                        self.seconds.setdefault(self._kind(job), []).append(
                            outcome.extra["seconds"]
                        )
                        self.not_before.pop(index, None)
                        self.outcomes[index] = outcome
                    self.cond.notify_all()
                item = None
        except BaseException as exc:  # no job may wait forever for a slot that is gone
            if item is not None:
                with self.cond:
                    error = redact(f"{type(exc).__name__}: {exc}")
                    self.outcomes[item[0]] = Outcome("FAILED", error=error)
        finally:
            with self.cond:
                worker, self.workers[slot] = self.workers[slot], None
                self.kinds[slot] = None
                self.active -= 1
                self.cond.notify_all()
            if worker is not None:
                worker.discard()  # idle: its slot has no job left

    def interrupt(self, timeout: float) -> None:
        """Ctrl-C: no new job starts; the running ones end KILLED, and their slots finish."""
        with self.cond:
            self.stopped = True
            running = [w for w in self.workers if w is not None]
            self.cond.notify_all()
        for worker in running:
            worker.interrupt()
        for worker in running:
            worker._wait(timeout)
        for thread in self.threads:
            thread.join(timeout)

    def discard(self) -> None:
        with self.cond:
            self.stopped = True
            workers, self.workers = [w for w in self.workers if w is not None], [None] * self.slots
            self.cond.notify_all()
        for worker in workers:
            worker.discard()
