"""Keras 3 on JAX: the Keras backend (backends/keras_backend.py), its engine chosen here.

Keras reads KERAS_BACKEND once, at its first import, so this module sets it first, and a
process runs one engine: a sweep gives each backend its own worker.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "jax"
import jax  # noqa: E402

# float64 runs need JAX's 64-bit types; set before any array exists, for every run alike
jax.config.update("jax_enable_x64", True)

from backends.keras_backend import KerasBackend  # noqa: E402


class KerasJaxBackend(KerasBackend):
    name = "keras_jax"
    engine = "jax"
