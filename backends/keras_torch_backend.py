"""Keras 3 on PyTorch: the Keras backend (backends/keras_backend.py), its engine chosen here.

Keras reads KERAS_BACKEND once, at its first import, so this module sets it first, and a
process runs one engine: a sweep gives each backend its own worker. Against the Lightning
backend it compares the two APIs on one engine (torch).
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"
# its device is fixed at import too: the CPU (train.device's default) unless the user says cuda
os.environ.setdefault("KERAS_TORCH_DEVICE", "cpu")

from backends.keras_backend import KerasBackend  # noqa: E402


class KerasTorchBackend(KerasBackend):
    name = "keras_torch"
    engine = "torch"
