"""What a sweep shows while a run trains: its epochs and the time left, without flooding logs.

The worker process that trains the run draws it (epochs arrive there, through
`harness.run.run(on_metrics=...)`). On a terminal it is one line rewritten in place and
cleared before any other line is printed. In a log (stderr is not a terminal, or jobs run
in parallel and share one terminal) it is a line at most every `every_s` seconds, so runs
shorter than that add nothing. `HARNESS_QUIET=1` turns it off (CI); the per-run result
lines and the sweep's `[i/N]` lines are printed either way.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable
from typing import TextIO

QUIET_ENV = "HARNESS_QUIET"
BAR, LINES, OFF = "bar", "lines", "off"
AUTO = "auto"  # BAR on a terminal, else LINES; OFF when quiet


def quiet() -> bool:
    return os.environ.get(QUIET_ENV, "").strip().lower() not in ("", "0", "false", "no")


def resolve_mode(mode: str = AUTO, stream: TextIO | None = None) -> str:
    """AUTO -> BAR or LINES by whether the stream is a terminal; anything -> OFF when quiet."""
    if quiet():
        return OFF
    if mode != AUTO:
        return mode
    stream = stream or sys.stderr
    return BAR if stream.isatty() else LINES


def duration(seconds: float) -> str:
    """12 s, 4 min, 1.5 h: as precise as an estimate deserves."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class EpochProgress:
    """The current run's epoch progress and estimated time left, on stderr.

    label: "[3/12]" in a sweep; sweep_after_s: the estimated time of the jobs after this
    one (None when unknown), added to this run's time left to estimate the sweep's.
    """

    def __init__(
        self,
        label: str,
        epochs: int,
        mode: str = AUTO,
        sweep_after_s: float | None = None,
        stream: TextIO | None = None,
        every_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.mode = resolve_mode(mode, self.stream)
        self.label, self.epochs, self.sweep_after_s = label, epochs, sweep_after_s
        self.every_s, self.clock = every_s, clock
        self.name = ""
        self.last_shown = clock()
        # when the first epoch ended: it carries start-up (framework import, graph tracing),
        # so the pace is measured from there
        self.first_epoch_end: float | None = None
        self.first_epoch = 0
        self.drawn = False  # a bar is on screen and must be cleared before other output

    def started(self, name: str) -> None:
        self.name = name

    def update(self, epoch: int) -> None:
        """Epoch `epoch` (1-based) of `epochs` has finished."""
        if self.mode == OFF:
            return
        now = self.clock()
        if self.first_epoch_end is None:
            self.first_epoch_end, self.first_epoch = now, epoch
        if self.mode == BAR:
            if now - self.last_shown >= 0.1 or epoch == self.epochs:
                self._draw(self._bar_line(epoch, now))
                self.last_shown = now
        elif now - self.last_shown >= self.every_s and self.first_epoch < epoch < self.epochs:
            self._write(f"[harness] {self._prefix()}: {self._status(epoch, now)}\n")
            self.last_shown = now

    def print(self, *args, file: TextIO | None = None, **kwargs) -> None:
        """print(), after clearing the bar: the run's own lines pass through here."""
        self.clear()
        print(*args, file=file or sys.stdout, **kwargs)
        (file or sys.stdout).flush()

    def clear(self) -> None:
        if self.drawn:
            self._write("\r\x1b[K")
            self.drawn = False

    close = clear

    def _prefix(self) -> str:
        return " ".join(p for p in (self.label, self.name) if p)

    def _time_left(self, epoch: int, now: float) -> float | None:
        if self.first_epoch_end is None or epoch <= self.first_epoch:
            return None
        pace = (now - self.first_epoch_end) / (epoch - self.first_epoch)
        return pace * (self.epochs - epoch)

    def _status(self, epoch: int, now: float) -> str:
        text = f"epoch {epoch}/{self.epochs}"
        left = self._time_left(epoch, now)
        if left is not None:
            text += f", {'<1 s' if left < 1 else '~' + duration(left)} left"
            if self.sweep_after_s:
                text += f" (sweep ~{duration(left + self.sweep_after_s)})"
        return text

    def _bar_line(self, epoch: int, now: float) -> str:
        width = 20
        done = round(width * epoch / self.epochs)
        bar = "#" * done + "." * (width - done)
        return f"{self._prefix()} [{bar}] {self._status(epoch, now)}"

    def _draw(self, line: str) -> None:
        # a line wider than the terminal wraps, and "\r" then rewrites only its last row
        columns = shutil.get_terminal_size((100, 24)).columns
        self._write("\r\x1b[K" + line[: max(columns - 1, 10)])
        self.drawn = True

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()
