"""What identifies a run and where it came from: its config hash (data digest included),
its provenance tags, its resolved config; and the checks every kind of run starts with.

Both kinds of run (training, harness.run.train; vectorization timing,
harness.run.vectorization) build on this module, so neither imports the other's internals.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import platform
import subprocess
from dataclasses import dataclass
from typing import Any

from harness.core import config as C
from harness.core import data as D
from harness.store import CONFIG_HASH_TAG, OVERRIDES_TAG

# Fields that do not change what is computed: excluded from the config hash.
NON_RESULT_FIELDS = ("tracking", "question", "parallel", "report", "stage", "arm")


@dataclass
class RunResult:
    run_name: str
    config_hash: str
    final: dict[str, float]  # last epoch's metrics, keyed as in MLflow
    epochs_run: int
    wall_s: float
    end_s: float = 0.0  # after training: the final metrics flushed, the run ended in the store
    span_s: float = 0.0  # the whole call that trained it, from entering run() to its return

    @property
    def objective(self) -> float:
        """The scalar a Hydra sweeper would minimise: the final validation loss."""
        return self.final.get("val/loss", math.nan)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_hash(spec: C.Config) -> str:
    """Hash of everything that changes results (seed included, tracking excluded).

    The data enters as its digest (a user file's bytes, a bundled set's parameters, the
    split's rows), not its path: changed bytes train again, the same bytes anywhere do not.
    """
    plain = {k: v for k, v in C.to_plain(spec).items() if k not in NON_RESULT_FIELDS}
    plain["data"] = {k: v for k, v in plain["data"].items() if k != "path"}
    plain["data"]["digest"] = D.data_digest(spec.data, spec.seed)
    blob = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD (with -dirty), once per process: two git calls per run add up over a sweep."""
    from harness.core.paths import PROJECT_ROOT as root
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(
                line.split(":", 1)[1].strip() for line in f if line.startswith("model name")
            )
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def provenance_tags(
    spec: C.Config, chash: str, overrides: list[str] | None, env: dict[str, str]
) -> dict[str, str]:
    """What every run records about where it came from: one place for every kind of run."""
    return {
        "backend": spec.backend.name,
        CONFIG_HASH_TAG: chash,
        "git_commit": git_commit(),
        OVERRIDES_TAG: " ".join(overrides or []),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "command": " ".join(["python -m harness", *(overrides or [])]),
        **env,
    }


def to_yaml(spec: C.Config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(C.to_plain(spec)))


def prepare(spec: C.Config) -> tuple[D.Dataset, C.Activation]:
    """Load the data and validate the spec against its task; raises ConfigError."""
    if spec.data.task is not None:
        # a data.task that contradicts the model is refused before any file is read
        C.validate(spec, C.Task(spec.data.task), n_outputs=2)
    data = D.load(spec.data, spec.seed)
    C.validate(spec, data.task, data.n_outputs)
    C.validate_input(spec, data.name, data.image_shape)
    return data, C.output_activation(spec, data.task)
