"""Epoch hooks: code installed from outside a run, called after each of its epochs is recorded.

Tests use them to break a chosen run on purpose (tests/faults.py). In this process, append
to EPOCH_HOOKS; in a sweep's worker processes, which inherit the environment, name them in
HARNESS_EPOCH_HOOKS ("module:function,..."), imported when a run starts.
"""

from __future__ import annotations

import functools
import importlib
import os
from collections.abc import Callable

EpochHook = Callable[[str, int, dict[str, float]], None]  # (run name, epoch, its metrics)

EPOCH_HOOKS: list[EpochHook] = []
ENV = "HARNESS_EPOCH_HOOKS"


def installed() -> list[EpochHook]:
    """The hooks for a run starting now: EPOCH_HOOKS, then those named in HARNESS_EPOCH_HOOKS."""
    named = [_load(ref.strip()) for ref in os.environ.get(ENV, "").split(",") if ref.strip()]
    return [*EPOCH_HOOKS, *named]


@functools.cache
def _load(ref: str) -> EpochHook:
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise ValueError(f"{ENV}: {ref!r} is not module:function (e.g. tests.faults:inject)")
    return getattr(importlib.import_module(module), attr)
