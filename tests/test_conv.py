"""Convolutional models: the NumPy reference's conv layers against finite differences and a
direct loop, the layout conversions torch needs, and Keras and Lightning against the
reference (parity) with conv translation errors planted on purpose."""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import numpy as np
import pytest

from backends import conv_numpy as cn
from backends import numpy_backend as nb
from backends.base import LossSettings
from harness.core.config import Activation, ModelConfig, OptimizerName, Task, conv_output_shape
from harness.core.init import network_weights
from harness.run import parity
from tests.test_parity import LOSS_RTOL

EPOCHS = 100
# float32 conv runs drift apart by rounding alone: Lightning's Adam, digits 0-9, measured
# worst weight difference 2e-7 at epoch 10, 3e-5 at 50, 1.7e-4 at 100 (over the 1e-4 bar),
# while float64 agrees to 3e-16 at epoch 100, so the translation is exact. Each conv layer
# sums a bias gradient over 36 positions x the batch in each framework's own order, and Adam
# turns that rounding into steps of ~lr where a gradient is near 0. float32: 40 epochs.
EPOCHS32 = 40
CONV_TASKS = (Task.binary, Task.multiclass, Task.multilabel)  # 8x8, 8x8, 8x16 images


@cache
def dataset(task: Task):
    return parity.small_dataset(task)


def conv_specs(dtype: str, epochs: int = EPOCHS) -> list[tuple[str, Task, object]]:
    """The parity matrix's image tasks, probabilities and logits forms, as conv models."""
    out = []
    for label, task, spec in parity.matrix_specs(dtype, epochs):
        if task in CONV_TASKS:
            model = replace(spec.model, conv_filters=[4], kernel_size=3, hidden=[15],
                            hidden_activation=Activation.relu)
            out.append((f"conv-{label}", task, replace(spec, model=model)))
    return out


CONV32 = conv_specs("float32", EPOCHS32)
CONV64 = conv_specs("float64")


def _check(task, spec, epochs: int) -> dict:
    ref, results = None, {}
    for backend in ("keras", "lightning"):
        check = parity.measure(spec, dataset(task), backend, ref)
        ref = check.ref
        results[backend] = check
        opt = OptimizerName(spec.optimizer.name)
        assert check.epochs == epochs
        assert check.worst_loss <= LOSS_RTOL[opt], (backend, check.describe())
        assert check.worst_param <= parity.PARAM_TOLERANCE[opt], (backend, check.describe())
    assert ref.train_loss[-1] < ref.train_loss[0]  # it learned: agreement means something
    return results


# one entry per image task x optimizer runs by default; the whole matrix is slow
FAST = {"conv-binary-probs-gd-full", "conv-multiclass-probs-adam-mb32",
        "conv-multilabel-logits-adam-mb32", "conv-multiclass-logits-gd-mb32"}


@pytest.mark.parametrize(
    "label,task,spec",
    [p if p[0] in FAST else pytest.param(*p, marks=pytest.mark.slow) for p in CONV32],
    ids=[label for label, _, _ in CONV32],
)
def test_conv_frameworks_match_numpy_in_float32(label, task, spec):
    _check(task, spec, EPOCHS32)


class _KerasBiasCorrectionAdam(nb.Adam):
    """The reference's Adam with beta_1, beta_2 rounded through float32 in the bias
    correction only, as Keras 3 on TensorFlow does even for float64 variables."""

    def step(self, params, grads):
        exact = self.beta_1, self.beta_2
        flat_p = [p for layer in params for p in layer]
        flat_g = [g for layer in grads for g in layer]
        if not self.m:
            self.m = [np.zeros_like(p) for p in flat_p]
            self.v = [np.zeros_like(p) for p in flat_p]
        self.t += 1
        b1, b2 = (float(np.float32(b)) for b in exact)
        alpha = self.lr * np.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        for p, g, m, v in zip(flat_p, flat_g, self.m, self.v, strict=True):
            m += (g - m) * (1 - exact[0])
            v += (g * g - v) * (1 - exact[1])
            p -= (m * alpha) / (np.sqrt(v) + self.epsilon)


@pytest.mark.slow
@pytest.mark.parametrize("label,task,spec", CONV64, ids=[label for label, _, _ in CONV64])
def test_conv_frameworks_match_numpy_in_float64(label, task, spec, monkeypatch):
    # Lightning: the reference to rounding. Keras' Adam rounds its betas through float32 in
    # the bias correction; dense models stay within the tolerances anyway, conv training
    # amplifies it (measured: weights 1.7e-4 and 8e-4 apart in 100 epochs, over the 1e-4
    # bar), so Keras is held to a reference that rounds the same way: then to 1e-12.
    lightning = parity.measure(spec, dataset(task), "lightning")
    assert lightning.ref.train_loss[-1] < lightning.ref.train_loss[0]
    if OptimizerName(spec.optimizer.name) is OptimizerName.adam:
        monkeypatch.setattr(nb, "Adam", _KerasBiasCorrectionAdam)
    keras = parity.measure(spec, dataset(task), "keras")
    for check in (lightning, keras):
        assert check.epochs == EPOCHS
        assert check.worst_loss < 1e-12 and check.worst_param < 1e-12, check.describe()


def test_conv_float64_lightning_agrees_to_rounding():
    label, task, spec = next(c for c in CONV64 if c[0] == "conv-multiclass-probs-adam-mb32")
    check = parity.measure(replace(spec, train=replace(spec.train, epochs=5)), dataset(task),
                           "lightning")
    assert check.worst_loss < 1e-12 and check.worst_param < 1e-12, check.describe()


# --- broken translations are caught ------------------------------------------------------


def _planted_spec():
    label, task, spec = next(c for c in CONV32 if c[0] == "conv-multiclass-probs-adam-mb32")
    return task, replace(spec, train=replace(spec.train, epochs=5))


def test_a_flipped_kernel_is_caught(monkeypatch):
    from backends import lightning_backend as lb

    task, spec = _planted_spec()
    right = parity.measure(spec, dataset(task), "lightning")
    real = lb.to_torch
    # a true convolution instead of the cross-correlation every framework computes
    monkeypatch.setattr(lb, "to_torch", lambda k: real(k[::-1, ::-1].copy() if k.ndim == 4 else k))
    wrong = parity.measure(spec, dataset(task), "lightning", right.ref)
    assert right.verdict == "pass", right.describe()
    assert wrong.verdict == "fail"
    assert wrong.worst_loss > 1e-3


def test_flattening_torchs_nchw_order_is_caught(monkeypatch):
    from backends import conv_torch

    task, spec = _planted_spec()
    right = parity.measure(spec, dataset(task), "lightning")
    # torch's own Flatten on (n, c, h, w): channels first, not Keras' (h, w, c)
    monkeypatch.setattr(conv_torch.FlattenNHWC, "forward", lambda self, x: x.reshape(len(x), -1))
    wrong = parity.measure(spec, dataset(task), "lightning", right.ref)
    assert right.verdict == "pass", right.describe()
    assert wrong.verdict == "fail"
    assert wrong.worst_loss > 1e-3


# --- the layouts ---------------------------------------------------------------------------


def _conv_loop(a: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The definition, one output pixel at a time."""
    kh, kw, _, c_out = k.shape
    n, h, w, _ = a.shape
    z = np.zeros((n, h - kh + 1, w - kw + 1, c_out))
    for i in range(h - kh + 1):
        for j in range(w - kw + 1):
            z[:, i, j, :] = np.einsum("nabc,abco->no", a[:, i : i + kh, j : j + kw, :], k) + b
    return z


def test_im2col_conv_is_the_cross_correlation():
    rng = np.random.default_rng(0)
    a, k, b = rng.normal(size=(3, 8, 16, 2)), rng.normal(size=(3, 3, 2, 5)), rng.normal(size=5)
    _, z = cn.conv_forward(a, k, b)
    np.testing.assert_allclose(z, _conv_loop(a, k, b), rtol=1e-12, atol=1e-12)


def test_torch_conv2d_with_converted_kernels_computes_the_reference():
    import torch

    from backends.conv_torch import FlattenNHWC, ToNCHW, from_torch, to_torch

    rng = np.random.default_rng(1)
    rows = rng.normal(size=(4, 8 * 16 * 2))  # images stored row by row, channels last
    k, b = rng.normal(size=(3, 3, 2, 5)), rng.normal(size=5)
    conv = torch.nn.Conv2d(2, 5, 3, stride=1, padding=0).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(to_torch(k)))
        conv.bias.copy_(torch.from_numpy(b))
        got = FlattenNHWC()(conv(ToNCHW((8, 16, 2))(torch.from_numpy(rows)))).numpy()
    _, z = cn.conv_forward(rows.reshape(4, 8, 16, 2), k, b)
    np.testing.assert_allclose(got, z.reshape(4, -1), rtol=1e-12, atol=1e-12)
    assert conv.weight.shape == (5, 2, 3, 3)  # torch's (out, in, kh, kw)
    np.testing.assert_array_equal(from_torch(conv.weight.detach().numpy()), k)


def test_keras_conv_model_computes_the_reference_at_the_shared_weights():
    from backends import keras_backend as kb
    from backends.base import TrainInputs

    task, spec = Task.multilabel, _planted_spec()[1]
    data = dataset(task)  # 8x16 pairs: a wrong (h, w) or flatten order would show
    weights = network_weights(spec.model, data.n_features, data.n_outputs, data.image_shape, 0)
    inputs = TrainInputs(spec, data, weights, Activation.sigmoid)
    got = np.asarray(kb._model(inputs, "float32")(data.x_val[:8].astype(np.float32)))
    ref = nb._model(inputs, np.dtype(np.float32)).forward(data.x_val[:8].astype(np.float32))
    # float32 rounding only (a wrong layout moves outputs by ~0.1)
    np.testing.assert_allclose(got, ref.output, rtol=1e-5, atol=1e-6)


def test_shared_weights_have_keras_layouts_and_fans():
    model = ModelConfig(conv_filters=[4, 8], kernel_size=3, hidden=[15])
    weights = network_weights(model, 128, 10, (8, 16, 1), seed=0)
    shapes = [w.shape for w, _ in weights]
    assert shapes == [(3, 3, 1, 4), (3, 3, 4, 8), (4 * 12 * 8, 15), (15, 10)]
    assert conv_output_shape((8, 16, 1), [4, 8], 3) == (4, 12, 8)
    assert np.abs(weights[0][0]).max() <= np.sqrt(6 / (9 * 1 + 9 * 4))  # glorot, Keras' fans
    # dense-only models draw exactly what they drew before conv existed
    from harness.core.init import initial_weights, layer_sizes

    dense = network_weights(ModelConfig(), 64, 10, (8, 8, 1), seed=3)
    for (a, _), (b, _) in zip(dense, initial_weights(layer_sizes(64, [25, 15], 10), 3,
                                                     ModelConfig().init), strict=True):
        np.testing.assert_array_equal(a, b)


# --- the reference's backpropagation ------------------------------------------------------


@pytest.mark.parametrize("task,from_logits,filters", [
    (Task.multiclass, False, [3]),
    (Task.binary, True, [2, 3]),
    (Task.multilabel, False, [2]),
])
def test_numpy_conv_backprop_matches_finite_differences(task, from_logits, filters):
    rng = np.random.default_rng(0)
    data = dataset(task)
    x, y = data.x_train[:6], data.y_train[:6]
    h, w, c = conv_output_shape(data.image_shape, filters, 3)
    shapes, channels = [], 1
    for f in filters:
        shapes.append((3, 3, channels, f))
        channels = f
    shapes += [(h * w * c, 5), (5, data.n_outputs)]
    params = [[rng.normal(0, 0.5, s), rng.normal(0, 0.1, s[-1])] for s in shapes]
    heads = {Task.multiclass: Activation.softmax}
    out = Activation.linear if from_logits else heads.get(task, Activation.sigmoid)
    # sigmoid hidden units: smooth, so central differences are exact to O(h^2)
    n_conv = len(filters)
    dense = nb.MLP(params[n_conv:], Activation.sigmoid, out)
    net = cn.ConvNet(params, data.image_shape, Activation.sigmoid, dense, nb._activate,
                     nb._activation_backward)
    loss = nb._loss(LossSettings(task, from_logits, 1e-7))
    fw = net.forward(x)
    grads = net.backward(fw, loss(fw.output, y)[1])
    step = 1e-6
    for layer in range(len(params)):
        for which in (0, 1):
            p, g = params[layer][which], grads[layer][which]
            assert g.shape == p.shape
            for idx in list(np.ndindex(p.shape))[:: max(1, p.size // 12)]:
                old = p[idx]
                p[idx] = old + step
                up = loss(net.forward(x).output, y)[0]
                p[idx] = old - step
                down = loss(net.forward(x).output, y)[0]
                p[idx] = old
                np.testing.assert_allclose(g[idx], (up - down) / (2 * step), rtol=1e-5, atol=1e-9)
