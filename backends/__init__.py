"""Backends by name, imported lazily: a Lightning run never imports TensorFlow and a Keras
run never imports torch (import time, memory, and a crash in one framework stays there)."""

from __future__ import annotations

import importlib

from backends.base import Backend

_REGISTRY = {
    "keras": "backends.keras_backend:KerasBackend",
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
