"""Faults to order, for tests of sweeps that must survive them.

`env(faults)` installs `inject` as an epoch hook (harness.run.hooks) in every process of a
CLI sweep; faults is "run-name@epoch=raise|kill;...": at the end of that epoch the named run
raises, or its process is SIGKILLed (as by the OOM killer or a segfault in a framework).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def env(faults: str) -> dict[str, str]:
    """The environment that breaks the named runs of a `python -m harness` sweep."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH", "")]))
    return {
        "HARNESS_EPOCH_HOOKS": "tests.faults:inject",
        "HARNESS_FAULTS": faults,
        "PYTHONPATH": path,
    }


def inject(run_name: str, epoch: int, metrics: dict[str, float]) -> None:
    for item in filter(None, os.environ.get("HARNESS_FAULTS", "").split(";")):
        target, _, action = item.partition("=")
        name, _, at = target.partition("@")
        if name != run_name or int(at or 1) != epoch:
            continue
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if action == "raise":
            raise RuntimeError(f"fault injected by HARNESS_FAULTS at epoch {epoch}")
        raise ValueError(f"HARNESS_FAULTS: unknown action {action!r} (raise or kill)")
