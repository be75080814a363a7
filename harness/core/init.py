"""Initial weights, generated once per seed in NumPy and loaded into every backend.

Keras' Dense starts glorot-uniform with zero bias, torch's nn.Linear kaiming-uniform with a
uniform bias; the harness owns the starting point so both frameworks start identically.
Kernels are stored as (fan_in, fan_out), Keras' layout; torch receives the transpose.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from harness.core.config import InitScheme, ModelConfig, conv_output_shape

Weights = list[tuple[np.ndarray, np.ndarray]]


def layer_sizes(n_features: int, hidden: list[int], n_outputs: int) -> list[int]:
    return [n_features, *hidden, n_outputs]


def initial_weights(sizes: list[int], seed: int, scheme: InitScheme) -> Weights:
    """(kernel, bias) per layer, float64; kernels uniform in +-limit, biases zero."""
    rng = np.random.default_rng([seed, 0])
    weights: Weights = []
    for fan_in, fan_out in pairwise(sizes):
        limit = _limit(fan_in, fan_out, scheme)
        kernel = rng.uniform(-limit, limit, size=(fan_in, fan_out))
        weights.append((kernel, np.zeros(fan_out)))
    return weights


def network_weights(
    model: ModelConfig,
    n_features: int,
    n_outputs: int,
    image_shape: tuple[int, ...] | None,
    seed: int,
) -> Weights:
    """Every layer's (kernel, bias), conv layers first: the one starting point of a run.

    Conv kernels are (kh, kw, in, out), Keras' Conv2D layout; torch gets (out, in, kh, kw).
    Their fans are Keras': kh * kw * in and kh * kw * out. A dense-only model draws exactly
    what initial_weights draws.
    """
    filters = list(model.conv_filters)
    if not filters:
        sizes = layer_sizes(n_features, list(model.hidden), n_outputs)
        return initial_weights(sizes, seed, model.init)
    assert image_shape is not None, "validate_input refuses conv models on non-images"
    rng = np.random.default_rng([seed, 0])
    k = model.kernel_size
    weights: Weights = []
    channels = image_shape[2]
    for f in filters:
        fan_in, fan_out = k * k * channels, k * k * f
        limit = _limit(fan_in, fan_out, model.init)
        weights.append((rng.uniform(-limit, limit, size=(k, k, channels, f)), np.zeros(f)))
        channels = f
    h, w, c = conv_output_shape(image_shape, filters, k)
    for fan_in, fan_out in pairwise(layer_sizes(h * w * c, list(model.hidden), n_outputs)):
        limit = _limit(fan_in, fan_out, model.init)
        weights.append((rng.uniform(-limit, limit, size=(fan_in, fan_out)), np.zeros(fan_out)))
    return weights


def _limit(fan_in: int, fan_out: int, scheme: InitScheme) -> float:
    if InitScheme(scheme) is InitScheme.glorot_uniform:
        return float(np.sqrt(6.0 / (fan_in + fan_out)))
    return float(np.sqrt(6.0 / fan_in))  # he_uniform
