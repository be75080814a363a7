"""The bench's baselines: the plainest and the fastest ways to drive each framework, timed
against the harness's own backend on the same data and model (`python -m harness.bench`).

This module declares them as data and imports no framework; each framework's loops live in
`<framework>_baselines.py`, imported only when one of them runs (in that framework's own
process). Keras' three engines share `keras_baselines.py`: a group per engine (named as the
harness's backend on it), each its own process with KERAS_BACKEND set before Keras is
imported. A variant's role, not its name, is what the bench's ratios look up.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np

# The bench's network: digits 0-9, Dense 64-25-15-10 ReLU, logits, Adam 1e-3.
HIDDEN = [25, 15]
LR = 1e-3

# A training that returns the clock after every epoch: (batch size or None for full, epochs)
Stamps = Callable[[int | None, int], list[float]]


class Role(Enum):
    harness = "harness"  # the harness's backend, its per-epoch evaluation taken out
    harness_with_evaluation = "harness_with_evaluation"  # the same epochs, evaluation kept
    fastest_fit = "fastest_fit"  # the fastest idiomatic fit configuration (torch: eager)
    hand_written = "hand_written"  # a minimal hand-written loop
    textbook = "textbook"  # the tutorial way
    compiled_fit = "compiled_fit"  # fit with a compiler the engine leaves off by default


# Keras 3's engines: the bench's group (the harness's backend on it) -> KERAS_BACKEND
KERAS_ENGINES = {"keras": "tensorflow", "keras_jax": "jax", "keras_torch": "torch"}


HARNESS_ROLES = (Role.harness, Role.harness_with_evaluation)


@dataclass(frozen=True)
class Variant:
    """One way to train the bench's network, timed against the others of its framework."""

    framework: str  # "keras", "keras_jax", ...: the variants timed together in one process
    role: Role
    name: str  # as the table shows it
    function: str = ""  # its function in <framework>_baselines.py; the harness has none

    @property
    def module(self) -> str:
        loops = "keras" if self.framework in KERAS_ENGINES else self.framework
        return f"backends.baselines.{loops}_baselines"

    def train(self, batch: int | None, epochs: int) -> list[float]:
        """Train once (imports the framework); the clock after every epoch."""
        prepare_process(self.framework)
        module = importlib.import_module(self.module)
        if self.framework in KERAS_ENGINES and module.ENGINE != KERAS_ENGINES[self.framework]:
            raise RuntimeError(
                f"{self.name}: Keras was imported on {module.ENGINE} in this process, not on "
                f"{KERAS_ENGINES[self.framework]}; time each group in a process of its own"
            )
        stamps: Stamps = getattr(module, self.function)
        return stamps(batch, epochs)


def prepare_process(framework: str) -> None:
    """Before a group's first import: Keras' engine, read once when Keras is first imported,
    and its device: the CPU (train.device's default, what the harness's runs use) unless the
    environment says otherwise, for the baselines as for the harness."""
    if framework in KERAS_ENGINES:
        os.environ["KERAS_BACKEND"] = KERAS_ENGINES[framework]
    if framework == "keras_jax":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")  # read when JAX starts
    if framework == "keras_torch":
        os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")  # read when Keras is imported


def harness_variants(framework: str) -> tuple[Variant, Variant]:
    """The harness's backend, timed without and with its per-epoch evaluation."""
    return (
        Variant(framework, Role.harness, f"harness {framework}"),
        Variant(
            framework, Role.harness_with_evaluation, f"harness {framework} + per-epoch evaluation"
        ),
    )


# (framework, role, the table's name, function): in the order they are timed and tabled
BASELINES: tuple[Variant, ...] = (
    Variant("keras", Role.fastest_fit, "keras fit, tf.data + steps_per_execution",
            "dataset_fit"),
    Variant("keras", Role.hand_written, "hand-written tf.function loop", "tf_function_loop"),
    Variant("keras", Role.textbook, "textbook keras fit (NumPy arrays)", "textbook_fit"),
    Variant("keras_jax", Role.fastest_fit, "keras fit on jax, arrays + steps_per_execution",
            "arrays_fit"),
    Variant("keras_jax", Role.textbook, "textbook keras fit on jax (NumPy arrays)",
            "textbook_fit"),
    # on PyTorch, Keras refuses steps_per_execution > 1 and compiles only when asked
    Variant("keras_torch", Role.fastest_fit, "keras fit on torch, arrays (eager)", "arrays_fit"),
    Variant("keras_torch", Role.compiled_fit, "keras fit on torch, arrays + jit_compile "
            "(torch.compile)", "torch_compiled_fit"),
    Variant("keras_torch", Role.textbook, "textbook keras fit on torch (NumPy arrays)",
            "textbook_fit"),
    Variant("lightning", Role.fastest_fit, "lightning lightest (in-memory, no logging)",
            "lightest_fit"),
    Variant("lightning", Role.hand_written, "hand-written pytorch loop", "torch_loop"),
    Variant("lightning", Role.textbook, "textbook lightning (DataLoader + self.log)",
            "textbook_fit"),
)
FRAMEWORKS: tuple[str, ...] = tuple(dict.fromkeys(v.framework for v in BASELINES))


def variants(framework: str) -> tuple[Variant, ...]:
    """Every variant of a framework, in the order they are timed and tabled."""
    return (*harness_variants(framework), *(v for v in BASELINES if v.framework == framework))


def digits() -> tuple[np.ndarray, np.ndarray]:
    """The bench's data: the first 80% of scikit-learn's digits, scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    d = load_digits()
    n_train = int(len(d.target) * 0.8)
    return (d.data[:n_train] / 16.0).astype(np.float32), d.target[:n_train].astype(np.int64)
