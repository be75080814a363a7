"""Where a sweep's wall time went, measured in the sweep's own process and logged on its
parent run (metrics `sweep/time/<part>_s`), so that a slow sweep can be read, not guessed.

The parts, in the order a sequential sweep spends them:

- `startup_s`: from the process start (the kernel's record of it) to the sweep callback:
  Python, Hydra and the command line's configuration;
- `plan_s`: the sweep callback's plan: every job composed and validated, the store opened,
  the parent run created (the warm workers import their frameworks meanwhile);
- `launch_s`: from the plan to the first job handed to a slot (Hydra's own validation of
  the batch, the launcher's set-up);
- `claim_s`: the slots' claims, taken before a job trains (its link to the job run and its
  release run on a writer thread, off the slots' path: `claim_background_s`);
- `worker_wait_s`: jobs waiting for their worker (its start and framework import);
- the jobs' runs: `in_epochs_s` (every epoch's steps and evaluation), `run_outside_epochs_s`
  (each run's time/outside_epochs_s: data, set-up, build, between epochs, fit's return) and
  `run_end_s` (the run's final metric flush and its end in the store);
- `other_s`: the rest of the wall time up to the sweep's end (messages between the slot and
  its worker, Hydra's per-job bookkeeping, the end of the sweep). With several slots the
  jobs' parts add up over the slots, and `other_s` is left out.

Only the harness launcher (hydra/launcher=harness) reports the slots' parts; under another
launcher the parent run gets startup and plan.
"""

from __future__ import annotations

import os
import threading
import time

TIME_PREFIX = "sweep/time/"


def process_start() -> float | None:
    """This process's start as time.time(), from the kernel (Linux); None elsewhere."""
    try:
        with open(f"/proc/{os.getpid()}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = int(fields[19])  # starttime, field 22 of proc(5), in clock ticks after boot
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return time.time() - uptime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class SweepClock:
    """The parts of one sweep's wall time, added up from the threads that spend them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.marks: dict[str, float] = {}  # time.time() of events: plan_start, plan_end, ...
        self.parts: dict[str, float] = {}  # seconds summed over jobs
        self.slots = 1

    def mark(self, event: str, first: bool = False) -> None:
        """Note when `event` happened (the first time only, with first=True)."""
        with self.lock:
            if not (first and event in self.marks):
                self.marks[event] = time.time()

    def add(self, part: str, seconds: float) -> None:
        with self.lock:
            self.parts[part] = self.parts.get(part, 0.0) + seconds

    def add_run(self, final: dict[str, float], end_s: float) -> None:
        """A finished run's time in and outside its epochs, and its end in the store."""
        self.add("in_epochs_s", final.get("time/in_epochs_s", 0.0))
        self.add("run_outside_epochs_s", final.get("time/outside_epochs_s", 0.0))
        self.add("run_end_s", end_s)

    def metrics(self, now: float | None = None) -> dict[str, float]:
        """`sweep/time/*` for the parent run: the parts measured, wall time up to `now`."""
        now = time.time() if now is None else now
        with self.lock:
            marks, parts = dict(self.marks), dict(self.parts)
        out: dict[str, float] = {}
        start = process_start()
        if "plan_start" in marks:
            if start is not None:
                out["startup_s"] = marks["plan_start"] - start
            out["plan_s"] = marks.get("plan_end", now) - marks["plan_start"]
            if "first_job" in marks and "plan_end" in marks:
                out["launch_s"] = marks["first_job"] - marks["plan_end"]
        out.update(parts)
        if start is not None:
            out["wall_s"] = now - start
            if self.slots == 1 and "first_job" in marks:
                aside = ("wall_s", "claim_background_s")  # the wall itself; off the slots' path
                counted = sum(v for k, v in out.items() if k not in aside)
                out["other_s"] = out["wall_s"] - counted
        out["slots"] = float(self.slots)
        return {f"{TIME_PREFIX}{k}": v for k, v in out.items()}


clock = SweepClock()  # this process's sweep (one sweep per process: Hydra's multirun)


def reset(slots: int = 1) -> SweepClock:
    """A new sweep starts in this process (tests run several in one)."""
    global clock
    clock = SweepClock()
    clock.slots = max(1, slots)
    return clock
