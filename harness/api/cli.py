"""Run a `python -m harness...` command as a subprocess and show its progress compactly:
in a Jupyter kernel one line updated in place, elsewhere the command's own `[harness]` lines."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

PREFIX = "[harness] "


def _kernel_display():
    """IPython's display function when running in a Jupyter kernel, else None."""
    ipython = sys.modules.get("IPython")  # never imported here: loaded already in a kernel
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "kernel"):
        return None
    from IPython.display import display

    return display


class Progress:
    """The latest `[harness]` line of a command, as one line that updates in a notebook."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.display = _kernel_display()
        self.handle = None
        self.last = ""

    def show(self, text: str) -> None:
        self.last = text
        if self.display is None:
            print(f"{PREFIX}{text}", file=sys.stderr, flush=True)
            return
        data = {"text/plain": f"{self.label}: {text}"}
        if self.handle is None:
            self.handle = self.display(data, raw=True, display_id=True)
        else:
            self.handle.update(data, raw=True)

    def line(self, line: str) -> None:
        # harness's own lines only: a framework's banners stay in the output, not on screen
        if line.startswith((PREFIX, "[harness.")):
            self.show(line.split("] ", 1)[-1].rstrip())


def run_cli(
    module: str, args: list[str], progress: Progress, env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
) -> tuple[int, str]:
    """`python -m MODULE ARGS`: its exit code and its output (stdout and stderr, interleaved).

    Interrupting (Ctrl-C, a notebook's stop button) interrupts the command as Ctrl-C would
    (a sweep then ends its running job and itself KILLED), waits for it, and re-raises.
    """
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=full_env, cwd=cwd,
        bufsize=1, errors="replace",
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            progress.line(line)
        code = proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        raise
    return code, "\n".join(lines)
