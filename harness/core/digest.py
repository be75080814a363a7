"""Dataset identity: short digests of the data a run trains and validates on.

A user file's source digest covers its bytes; a bundled set's covers the parameters that
generate it. A split's digest adds the rows it holds (indices into the source), so the same
bytes split the same way give the same digest on any machine and in any backend, and a
changed file, seed or split gives another. These digests enter the config hash (a resumed
sweep never reuses a run trained on other data) and MLflow's dataset inputs.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np

LENGTH = 16  # hex characters, as the config hash


def of(*parts: str | bytes) -> str:
    """sha256 over the parts (each length-prefixed, so parts never run into each other)."""
    h = hashlib.sha256()
    for part in parts:
        blob = part.encode() if isinstance(part, str) else part
        h.update(len(blob).to_bytes(8, "little"))
        h.update(blob)
    return h.hexdigest()[:LENGTH]


def of_bytes(raw: bytes) -> str:
    """A user file's bytes, exactly as read."""
    return of(b"file", raw)


def of_params(name: str, params: dict[str, Any]) -> str:
    """A bundled set's generator parameters (a change of loader bumps its 'version')."""
    return of(b"builtin", name, json.dumps(params, sort_keys=True, separators=(",", ":")))


def of_rows(source: str, rows: np.ndarray) -> str:
    """One split: the source's digest and the rows it takes, in the order trained on."""
    return of(b"rows", source, np.ascontiguousarray(rows, dtype="<i8").tobytes(), str(rows.shape))


def of_split(train: str, val: str) -> str:
    """The dataset a run sees: its training and validation splits together."""
    return of(b"split", train, val)
