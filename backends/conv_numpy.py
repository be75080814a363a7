"""NumPy: the convolutional layers of the reference, forward and backward, by im2col.

A conv layer here is what Keras' Conv2D and torch's Conv2d compute with stride 1 and
'valid' padding: a cross-correlation (the kernel is not flipped) of a (kh, kw, in, out)
kernel over NHWC images, plus a bias per filter. Its output is flattened in (height,
width, channels) order, Keras' Flatten on NHWC, into the dense layers (numpy_backend.MLP,
handed in with the activations by numpy_backend: this module imports nothing of it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from harness.core.config import Activation


def im2col(a: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """(n, h, w, c) -> (n, h - kh + 1, w - kw + 1, kh * kw * c): each output pixel's window,
    flattened in the kernel's (kh, kw, in) order."""
    windows = sliding_window_view(a, (kh, kw), axis=(1, 2))  # (n, h', w', c, kh, kw)
    n, ho, wo, c = windows.shape[:4]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n, ho, wo, kh * kw * c)


def conv_forward(
    a: np.ndarray, kernel: np.ndarray, bias: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(columns, z): z[n, i, j, o] = sum over di, dj, c of a[n, i+di, j+dj, c] k[di, dj, c, o]
    plus b[o]."""
    kh, kw, c_in, c_out = kernel.shape
    cols = im2col(a, kh, kw)
    return cols, cols @ kernel.reshape(kh * kw * c_in, c_out) + bias


def conv_backward(
    cols: np.ndarray, kernel: np.ndarray, dz: np.ndarray, input_shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dJ/dkernel, dJ/dbias, dJ/dinput) from dJ/dz; col2im adds each window's share back."""
    kh, kw, c_in, c_out = kernel.shape
    n, ho, wo, _ = dz.shape
    dz_flat = dz.reshape(-1, c_out)
    d_kernel = (cols.reshape(-1, kh * kw * c_in).T @ dz_flat).reshape(kernel.shape)
    d_cols = (dz_flat @ kernel.reshape(kh * kw * c_in, c_out).T).reshape(n, ho, wo, kh, kw, c_in)
    da = np.zeros(input_shape, dtype=dz.dtype)
    for i in range(kh):
        for j in range(kw):
            da[:, i : i + ho, j : j + wo, :] += d_cols[:, :, :, i, j, :]
    return d_kernel, dz.sum(axis=(0, 1, 2)), da


@dataclass
class ConvForward:
    """The conv layers' inputs, columns, z and a, then the dense layers' Forward."""

    inputs: list[np.ndarray]
    cols: list[np.ndarray]
    zs: list[np.ndarray]
    outs: list[np.ndarray]
    dense: Any  # numpy_backend.Forward

    @property
    def logits(self) -> np.ndarray:
        return self.dense.logits

    @property
    def output(self) -> np.ndarray:
        return self.dense.output


class ConvNet:
    """Conv layers (kernels (kh, kw, in, out)), flatten, then the dense network."""

    def __init__(
        self,
        params: list[list[np.ndarray]],
        image_shape: tuple[int, int, int],
        hidden: Activation,
        dense: Any,
        activate: Callable[[Activation, np.ndarray], np.ndarray],
        activation_backward: Callable[..., np.ndarray],
    ) -> None:
        """params: every layer's [K, b] (conv first, then dense: the optimizer's order);
        dense: numpy_backend.MLP over the same arrays params[n_conv:]."""
        self.params = params  # updated in place by the optimizer
        self.image_shape = tuple(image_shape)
        self.n_conv = sum(1 for kernel, _ in params if kernel.ndim == 4)
        self.hidden, self.dense = hidden, dense
        self.activate, self.activation_backward = activate, activation_backward

    def forward(self, x: np.ndarray) -> ConvForward:
        fw = ConvForward([], [], [], [], None)
        a = x.reshape(len(x), *self.image_shape)  # rows are images stored row by row, NHWC
        for kernel, bias in self.params[: self.n_conv]:
            cols, z = conv_forward(a, kernel, bias)
            fw.inputs.append(a)
            fw.cols.append(cols)
            fw.zs.append(z)
            a = self.activate(self.hidden, z)
            fw.outs.append(a)
        fw.dense = self.dense.forward(a.reshape(len(x), -1))  # flatten (h, w, c)
        return fw

    def backward(self, fw: ConvForward, d_out: np.ndarray) -> list[list[np.ndarray]]:
        dense_grads, d_flat = self.dense.backward_to_input(fw.dense, d_out)
        grads: list[list[np.ndarray]] = []
        da = d_flat.reshape(fw.outs[-1].shape)
        for layer in reversed(range(self.n_conv)):
            dz = self.activation_backward(self.hidden, fw.zs[layer], fw.outs[layer], da)
            kernel = self.params[layer][0]
            d_kernel, d_bias, da = conv_backward(fw.cols[layer], kernel, dz, fw.inputs[layer].shape)
            grads.append([d_kernel, d_bias])
        return grads[::-1] + dense_grads
