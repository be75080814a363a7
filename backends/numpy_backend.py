"""NumPy: the lesson's from-scratch network, the reference the frameworks are checked against.

Forward propagation is vectorised (`Z = A @ W + b`, then the activation, layer by layer);
backpropagation, the losses (Keras' clipping rules included) and the optimizers (Keras 3's
SGD and Adam updates, epsilon where Keras puts it) are written out by hand.
Reads like a translation of keras_backend.py: same sections, same order, same names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

from backends.base import (
    EpochReporter,
    Evaluation,
    LossSettings,
    OnEpoch,
    TrainedModel,
    TrainInputs,
    evaluate_outputs,
    evaluation_inputs,
    thread_count,
)
from backends.conv_numpy import ConvNet
from harness.core.config import Activation, ConfigError, Device, OptimizerName, Task
from harness.core.init import Weights

# --- the process: device, threads ----------------------------------------------------------


def _configure_process(inputs: TrainInputs) -> dict[str, str]:
    """Threads (BLAS, applied around training), the CPU as the only device."""
    if Device(inputs.config.train.device) is Device.gpu:
        raise ConfigError("the numpy backend runs on the CPU only; use train.device=cpu")
    threads = thread_count(inputs.config)
    return {"device": "cpu", "threads": str(threads)}


# --- the network: forward and backward propagation -----------------------------------------


def _activate(act: Activation, z: np.ndarray) -> np.ndarray:
    if act is Activation.sigmoid:
        return expit(z)  # never overflows, unlike 1 / (1 + exp(-z)) in float32
    if act is Activation.relu:
        return np.maximum(z, 0)
    if act is Activation.softmax:
        return softmax(z, axis=-1)
    return z


def _activation_backward(
    act: Activation, z: np.ndarray, a: np.ndarray, da: np.ndarray
) -> np.ndarray:
    """dJ/dz from dJ/da for a = act(z); the same formulas TensorFlow and torch use."""
    if act is Activation.sigmoid:
        return da * a * (1 - a)
    if act is Activation.relu:
        return da * (z > 0)
    if act is Activation.softmax:
        return a * (da - np.sum(da * a, axis=-1, keepdims=True))
    return da


@dataclass
class Forward:
    """What backpropagation needs from the forward pass: every layer's input, z and a."""

    inputs: list[np.ndarray]  # A_{l-1} per layer
    zs: list[np.ndarray]
    outs: list[np.ndarray]

    @property
    def logits(self) -> np.ndarray:
        """The last layer's pre-activation."""
        return self.zs[-1]

    @property
    def output(self) -> np.ndarray:
        return self.outs[-1]


class MLP:
    """The network: (W, b) per layer in Keras' layout, W of shape (fan_in, fan_out)."""

    def __init__(self, params: list[list[np.ndarray]], hidden: Activation, output: Activation):
        self.params = params  # [[W, b], ...], updated in place by the optimizer
        self.acts = [hidden] * (len(params) - 1) + [output]

    def forward(self, x: np.ndarray) -> Forward:
        fw = Forward([], [], [])
        a = x
        for (w, b), act in zip(self.params, self.acts, strict=True):
            z = a @ w + b  # one matrix product per layer: the whole batch at once
            fw.inputs.append(a)
            fw.zs.append(z)
            a = _activate(act, z)
            fw.outs.append(a)
        return fw

    def backward(self, fw: Forward, d_out: np.ndarray) -> list[list[np.ndarray]]:
        """Gradients [[dW, db], ...] from dJ/d(output), layer by layer from the last."""
        return self.backward_to_input(fw, d_out)[0]

    def backward_to_input(
        self, fw: Forward, d_out: np.ndarray
    ) -> tuple[list[list[np.ndarray]], np.ndarray]:
        """The gradients and dJ/d(input) (what layers before this network need: conv)."""
        grads: list[list[np.ndarray]] = []
        da = d_out
        for layer in reversed(range(len(self.params))):
            dz = _activation_backward(self.acts[layer], fw.zs[layer], fw.outs[layer], da)
            w = self.params[layer][0]
            grads.append([fw.inputs[layer].T @ dz, dz.sum(axis=0)])
            da = dz @ w.T
        return grads[::-1], da


def _model(inputs: TrainInputs, dtype: np.dtype) -> MLP | ConvNet:
    params = [[kernel.astype(dtype), bias.astype(dtype)] for kernel, bias in inputs.weights]
    hidden, output = inputs.hidden_activation, inputs.output_activation
    n_conv = len(inputs.config.model.conv_filters)
    if n_conv:  # conv layers first (backends.conv_numpy), then the MLP on the same arrays
        dense = MLP(params[n_conv:], hidden, output)
        shape = inputs.data.image_shape
        return ConvNet(params, shape, hidden, dense, _activate, _activation_backward)
    return MLP(params, hidden, output)


def _weights(net: MLP) -> Weights:
    return [(w.copy(), b.copy()) for w, b in net.params]


def _logits_and_output(net: MLP, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pre-activation, output) of the last layer, from one forward pass."""
    fw = net.forward(x)
    return fw.logits, fw.output


# --- the loss: value and gradient with respect to the model's output ----------------------


def _loss(settings: LossSettings) -> Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]:
    """The task's loss, called loss(output, target) -> (loss, dJ/d(output)) as Keras computes
    them, mean over the batch (and labels)."""
    eps = settings.clip_eps
    if settings.task is Task.regression:
        return _mse
    if settings.from_logits:
        return _sparse_ce_logits if settings.task is Task.multiclass else _bce_logits
    if settings.task is Task.multiclass:
        return lambda p, y: _sparse_ce_probs(p, y, eps)
    return lambda p, y: _bce_probs(p, y, eps)


def _mse(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    err = pred - y
    return float(np.mean(err * err)), 2 * err / err.size


def _bce_probs(p: np.ndarray, y: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    # Keras: clip p to [eps, 1 - eps]; the clip passes no gradient outside the bounds
    pc = np.clip(p, eps, 1 - eps)
    loss = -(y * np.log(pc) + (1 - y) * np.log(1 - pc))
    inside = (p >= eps) & (p <= 1 - eps)
    grad = (-(y / pc) + (1 - y) / (1 - pc)) * inside / y.size
    return float(np.mean(loss)), grad


def _bce_logits(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    # TensorFlow's stable form of -y log s(z) - (1-y) log(1 - s(z))
    loss = np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z)))
    return float(np.mean(loss)), (expit(z) - y) / y.size


def _sparse_ce_probs(p: np.ndarray, y: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    # Keras: softmax cross-entropy on log(clip(p)), i.e. -log pc_y + log(sum pc)
    n = len(y)
    pc = np.clip(p, eps, 1 - eps)
    total = pc.sum(axis=-1, keepdims=True)
    loss = -np.log(pc[np.arange(n), y]) + np.log(total[:, 0])
    d_pc = np.broadcast_to(1 / total, p.shape).copy()
    d_pc[np.arange(n), y] -= 1 / pc[np.arange(n), y]
    inside = (p >= eps) & (p <= 1 - eps)
    return float(np.mean(loss)), d_pc * inside / n


def _sparse_ce_logits(z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    n = len(y)
    shifted = z - z.max(axis=-1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=-1))
    loss = log_sum - shifted[np.arange(n), y]
    grad = softmax(z, axis=-1)
    grad[np.arange(n), y] -= 1
    return float(np.mean(loss)), grad / n


# --- the optimizer: Keras 3's update rules ------------------------------------------------


class GradientDescent:
    """w <- w - lr * dJ/dw."""

    def __init__(self, lr: float) -> None:
        self.lr = lr

    def step(self, params: list[list[np.ndarray]], grads: list[list[np.ndarray]]) -> None:
        for layer, layer_grads in zip(params, grads, strict=True):
            for p, g in zip(layer, layer_grads, strict=True):
                p -= g * p.dtype.type(self.lr)


class Adam:
    """Keras 3's Adam: epsilon is added to sqrt(v), the bias correction goes into the rate.

    w <- w - alpha_t m / (sqrt(v) + eps), alpha_t = lr sqrt(1 - b2^t) / (1 - b1^t).
    torch.optim.Adam adds epsilon to sqrt(v / (1 - b2^t)) instead: the same update with a
    step-dependent epsilon, eps / sqrt(1 - b2^t) (about 30x larger at step 1).
    The betas are used exactly; Keras 3 on TensorFlow rounds them through float32 in the
    bias correction even for float64 variables, which alone moves its float64 losses ~1e-5.
    """

    def __init__(self, lr: float, beta_1: float, beta_2: float, epsilon: float) -> None:
        self.lr, self.beta_1, self.beta_2, self.epsilon = lr, beta_1, beta_2, epsilon
        self.t = 0
        self.m: list[np.ndarray] = []
        self.v: list[np.ndarray] = []

    def step(self, params: list[list[np.ndarray]], grads: list[list[np.ndarray]]) -> None:
        flat_p = [p for layer in params for p in layer]
        flat_g = [g for layer in grads for g in layer]
        if not self.m:
            self.m = [np.zeros_like(p) for p in flat_p]
            self.v = [np.zeros_like(p) for p in flat_p]
        self.t += 1
        f = flat_p[0].dtype.type  # scalars in the variables' dtype, as Keras casts them
        t = f(self.t)
        alpha = f(self.lr) * np.sqrt(f(1) - f(self.beta_2) ** t) / (f(1) - f(self.beta_1) ** t)
        for p, g, m, v in zip(flat_p, flat_g, self.m, self.v, strict=True):
            m += (g - m) * (1 - self.beta_1)
            v += (g * g - v) * (1 - self.beta_2)
            p -= (m * alpha) / (np.sqrt(v) + self.epsilon)


def _optimizer(inputs: TrainInputs) -> GradientDescent | Adam:
    opt = inputs.config.optimizer
    if OptimizerName(opt.name) is OptimizerName.gd:
        return GradientDescent(opt.lr)
    return Adam(opt.lr, opt.beta_1, opt.beta_2, opt.epsilon)


# --- the backend ---------------------------------------------------------------------------


class NumpyBackend:
    name = "numpy"

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        info = _configure_process(inputs)
        self.threads = int(info["threads"])
        info.update(framework="numpy", numpy_version=np.__version__)
        return info

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=self.threads, user_api="blas"):
            return self._train(inputs, on_epoch)

    def _train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        data = inputs.data
        dtype = np.dtype(inputs.config.train.dtype.value)
        y_dtype = np.int64 if data.task is Task.multiclass else dtype
        n_train = len(data.x_train)
        x_eval = evaluation_inputs(data, dtype)  # train rows, then val: one forward pass
        x_train, y_train = x_eval[:n_train], data.y_train.astype(y_dtype)
        y_val = data.y_val.astype(y_dtype)

        net = _model(inputs, dtype)
        loss = _loss(inputs.loss)
        optimizer = _optimizer(inputs)
        steps = len(inputs.batches(0))

        def evaluate() -> Evaluation:
            return Evaluation(*evaluate_outputs(
                lambda x: _logits_and_output(net, x),
                lambda out, y: loss(out, y)[0],
                _activate,
                inputs.head_after_model,
                x_eval,
                n_train,
                y_val,
            ))

        reporter = EpochReporter(inputs, steps, evaluate, lambda: _weights(net), on_epoch)
        for epoch in range(inputs.config.train.epochs):
            reporter.begin()
            loss_sum = 0.0
            for idx in inputs.batches(epoch):
                fw = net.forward(x_train[idx])
                batch_loss, d_out = loss(fw.output, y_train[idx])
                optimizer.step(net.params, net.backward(fw, d_out))
                loss_sum += batch_loss * len(idx)  # the epoch's loss, weighted by batch size
            if not reporter.end(epoch, loss_sum / len(x_train)):
                break
        return TrainedModel(final_weights=_weights(net))

    @contextmanager
    def forward(self, inputs: TrainInputs, x: np.ndarray) -> Iterator[Callable[[], np.ndarray]]:
        """The lesson's vectorised forward propagation: Z = A @ W + b over the whole batch."""
        from threadpoolctl import threadpool_limits

        net = _model(inputs, np.dtype(inputs.config.train.dtype.value))
        xs = x.astype(net.params[0][0].dtype)
        with threadpool_limits(limits=self.threads, user_api="blas"):
            yield lambda: net.forward(xs).output
