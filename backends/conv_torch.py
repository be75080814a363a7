"""torch: the convolutional layers of the Lightning model, and the layout conversions.

torch convolves NCHW images with (out, in, kh, kw) kernels; the harness stores images as
rows read NHWC and kernels as (kh, kw, in, out) (Keras' layout). Both conversions are
written here, once: the input goes NHWC -> NCHW before the first conv, and the last conv's
output goes back NCHW -> NHWC before flattening, so the first dense kernel sees the
(height, width, channels) order that Keras' Flatten and the NumPy reference use.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


class ToNCHW(nn.Module):
    """Rows (n, h * w * c), pixels stored row by row with channels last -> (n, c, h, w)."""

    def __init__(self, image_shape: tuple[int, int, int]) -> None:
        super().__init__()
        self.image_shape = tuple(image_shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), *self.image_shape).permute(0, 3, 1, 2)


class FlattenNHWC(nn.Module):
    """(n, c, h, w) -> (n, h * w * c) in (height, width, channels) order, as Keras' Flatten."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1).reshape(len(x), -1)


def conv_layers(
    image_shape: tuple[int, int, int],
    filters: list[int],
    kernel_size: int,
    activation: Callable[[], nn.Module],
) -> list[nn.Module]:
    """Conv2d layers with stride 1 and 'valid' padding (padding=0), between the conversions."""
    layers: list[nn.Module] = [ToNCHW(image_shape)]
    channels = image_shape[2]
    for f in filters:
        layers += [nn.Conv2d(channels, f, kernel_size, stride=1, padding=0), activation()]
        channels = f
    return [*layers, FlattenNHWC()]


def to_torch(kernel: np.ndarray) -> np.ndarray:
    """A harness kernel in torch's layout: dense (in, out) -> (out, in); conv (kh, kw, in,
    out) -> (out, in, kh, kw)."""
    axes = (1, 0) if kernel.ndim == 2 else (3, 2, 0, 1)
    return np.ascontiguousarray(kernel.transpose(axes))


def from_torch(weight: np.ndarray) -> np.ndarray:
    """The inverse of to_torch."""
    axes = (1, 0) if weight.ndim == 2 else (2, 3, 1, 0)
    return np.ascontiguousarray(weight.transpose(axes))
