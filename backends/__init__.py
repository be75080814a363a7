"""Backends by name, imported lazily: a Lightning run never imports TensorFlow and a Keras
run never imports torch (import time, memory, and a crash in one framework stays there), and
each Keras engine (keras, keras_jax, keras_torch) runs in a process of its own."""

from __future__ import annotations

import importlib

from backends.base import Backend

_REGISTRY = {
    "keras": "backends.keras_backend:KerasBackend",
    # Keras on its other engines; KERAS_BACKEND is read at import: one engine a process
    "keras_jax": "backends.keras_jax_backend:KerasJaxBackend",
    "keras_torch": "backends.keras_torch_backend:KerasTorchBackend",
    "lightning": "backends.lightning_backend:LightningBackend",
    "numpy": "backends.numpy_backend:NumpyBackend",
}


def names() -> list[str]:
    return sorted(_REGISTRY)


def get_backend(name: str) -> Backend:
    if name not in _REGISTRY:
        raise KeyError(f"unknown backend {name!r}; choose from {names()}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)()
