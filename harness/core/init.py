"""Initial weights, generated once per seed in NumPy and loaded into every backend.

Keras' Dense starts glorot-uniform with zero bias, torch's nn.Linear kaiming-uniform with a
uniform bias; the harness owns the starting point so both frameworks start identically.
Kernels are stored as (fan_in, fan_out), Keras' layout; torch receives the transpose.
"""

from __future__ import annotations

import numpy as np

from harness.core.config import InitScheme

Weights = list[tuple[np.ndarray, np.ndarray]]


def layer_sizes(n_features: int, hidden: list[int], n_outputs: int) -> list[int]:
    return [n_features, *hidden, n_outputs]


def initial_weights(sizes: list[int], seed: int, scheme: InitScheme) -> Weights:
    """(kernel, bias) per layer, float64; kernels uniform in +-limit, biases zero."""
    rng = np.random.default_rng([seed, 0])
    weights: Weights = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        if InitScheme(scheme) is InitScheme.glorot_uniform:
            limit = np.sqrt(6.0 / (fan_in + fan_out))
        else:  # he_uniform
            limit = np.sqrt(6.0 / fan_in)
        kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        weights.append((kernel, np.zeros(fan_out)))
    return weights
