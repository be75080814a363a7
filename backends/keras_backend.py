"""Keras 3 on TensorFlow: Sequential + Dense, compile, fit with a callback.

Reads like a translation of lightning_backend.py: same sections, same order.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np

from backends.base import (
    EpochRecord,
    History,
    OnEpoch,
    TrainInputs,
    probabilities_after_model,
    quiet_native_stderr,
    thread_count,
)
from harness.core.config import Activation, Device, OptimizerName, Task
from harness.core.data import batch_indices
from harness.core.init import Weights

# Keras reads KERAS_BACKEND at import; keep TensorFlow's C++ banners out of the user's way.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

with quiet_native_stderr():
    import tensorflow as tf
    import keras

if keras.backend.backend() != "tensorflow":
    raise RuntimeError(
        f"the keras backend needs KERAS_BACKEND=tensorflow, found {keras.backend.backend()!r}"
    )


_DEVICE_CONFIGURED: dict[str, str] = {}


def _configure_process(inputs: TrainInputs) -> dict[str, str]:
    """Threads, visible devices, TF32: settable once per process, before TF starts."""
    train = inputs.spec.train
    if _DEVICE_CONFIGURED:
        return _DEVICE_CONFIGURED
    with quiet_native_stderr():  # "failed call to cuInit" on machines without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    want = Device(train.device)
    if want is Device.gpu and not gpus:
        raise RuntimeError("train.device=gpu, but TensorFlow sees no GPU; use train.device=cpu")
    use_gpu = bool(gpus) and want is not Device.cpu
    if use_gpu:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpus[:1], "GPU")
    else:
        tf.config.set_visible_devices([], "GPU")
    threads = thread_count(inputs.spec)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _DEVICE_CONFIGURED.update(
        device=f"gpu:{gpus[0].name}" if use_gpu else "cpu",
        threads=str(threads),
    )
    return _DEVICE_CONFIGURED


def _loss(task: Task, from_logits: bool) -> keras.losses.Loss:
    if task is Task.regression:
        return keras.losses.MeanSquaredError()
    if task is Task.multiclass:
        base = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    else:
        base = keras.losses.BinaryCrossentropy(from_logits=from_logits)
    if from_logits:
        return base
    return _FromProbabilities(base)


class _FromProbabilities(keras.losses.Loss):
    """Cross-entropy computed from the probabilities the model outputs.

    Inside `fit`, Keras on TensorFlow sees that the output came from a sigmoid/softmax op
    and quietly computes the loss from the pre-activation logits instead. The identity op
    hides that op, so the probability form really clips and takes logs of probabilities,
    as the lesson (and torch's BCELoss) does.
    """

    def __init__(self, base: keras.losses.Loss) -> None:
        super().__init__(name=base.name, reduction=base.reduction)
        self.base = base

    def call(self, y_true, y_pred):
        return self.base.call(y_true, tf.identity(y_pred))


def _optimizer(inputs: TrainInputs) -> keras.optimizers.Optimizer:
    opt = inputs.spec.optimizer
    if OptimizerName(opt.name) is OptimizerName.gd:
        return keras.optimizers.SGD(learning_rate=opt.lr, momentum=0.0)
    return keras.optimizers.Adam(
        learning_rate=opt.lr, beta_1=opt.beta_1, beta_2=opt.beta_2, epsilon=opt.epsilon
    )


def _model(inputs: TrainInputs, dtype: str) -> keras.Sequential:
    spec = inputs.spec.model
    layers: list = [keras.Input(shape=(inputs.data.n_features,), dtype=dtype)]
    for units in spec.hidden:
        layers.append(keras.layers.Dense(units, activation=Activation(spec.hidden_activation).value))
    layers.append(keras.layers.Dense(inputs.data.n_outputs, activation=inputs.output_activation.value))
    model = keras.Sequential(layers)
    model.set_weights([a.astype(dtype) for kernel, bias in inputs.weights for a in (kernel, bias)])
    return model


def _weights(model: keras.Sequential) -> Weights:
    arrays = model.get_weights()
    return [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)]


def _standalone(model: keras.Sequential) -> keras.Sequential:
    """The trained network without its training state: loads anywhere, with no custom loss."""
    copy = keras.Sequential.from_config(model.get_config())  # clone_model would recompile
    copy.set_weights(model.get_weights())
    return copy


def _forward_with_logits(model: keras.Sequential, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(pre-activation, output) of the last layer: the ops Dense.call runs, split in two."""
    for layer in model.layers[:-1]:
        x = layer(x, training=False)
    head = model.layers[-1]
    logits = keras.ops.add(keras.ops.matmul(x, head.kernel), head.bias)
    return logits, head.activation(logits)


def _epoch_dataset(inputs: TrainInputs, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.data.Dataset, int]:
    """Every epoch's batches in the harness's order, as one dataset (no Keras shuffling)."""
    spec = inputs.spec
    n = len(inputs.data.x_train)
    epochs = [batch_indices(n, spec.train.batch_size, e, spec.seed) for e in range(spec.train.epochs)]
    steps = len(epochs[0])
    order = tf.constant(np.stack([np.concatenate(b) for b in epochs]))
    batch = spec.train.batch_size or n
    # one gather per epoch (not per batch): the epoch's data in the harness's order, batched;
    # a full batch is the epoch itself (no per-epoch inner dataset, ~0.3 ms an epoch)
    ds = tf.data.Dataset.from_tensor_slices(order)
    if steps == 1:  # nothing to overlap with a step either: no prefetch thread
        ds = ds.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)))
    else:
        ds = ds.flat_map(
            lambda idx: tf.data.Dataset.from_tensor_slices((tf.gather(x, idx), tf.gather(y, idx))).batch(batch)
        ).prefetch(2)
    # No tf.data autotuning: its background model thread made `fit` stall ~1.2 s on return
    # (the iterator's teardown waits for it) in about half the runs of a warm worker.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options), steps


class _EpochCallback(keras.callbacks.Callback):
    """Times each epoch, evaluates on train and validation sets, reports to the harness."""

    def __init__(self, inputs: TrainInputs, evaluate, steps: int, on_epoch: OnEpoch) -> None:
        super().__init__()
        self.inputs, self.evaluate, self.steps, self.on_epoch = inputs, evaluate, steps, on_epoch
        self.t0 = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.t0 = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        train_loss = float(logs["loss"])  # a host value: the epoch's steps have finished
        elapsed = time.perf_counter() - self.t0
        val_loss, train_pred, val_pred, val_logits = (t.numpy() for t in self.evaluate())  # host values
        eval_time = time.perf_counter() - self.t0 - elapsed
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=train_loss,
            val_loss=float(val_loss),
            train_pred=train_pred,
            val_pred=val_pred,
            epoch_time_s=elapsed,
            steps=self.steps,
            samples=len(self.inputs.data.x_train),
            val_logits=val_logits,
            weights=_weights(self.model) if self.inputs.record_weights else None,
            eval_time_s=eval_time,
        )
        if self.on_epoch(record) is False:
            self.model.stop_training = True


class KerasBackend:
    name = "keras"

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        info = dict(_configure_process(inputs))
        train = inputs.spec.train
        tf.config.experimental.enable_tensor_float_32_execution(train.allow_tf32)
        keras.config.set_floatx(train.dtype.value)
        keras.config.set_epsilon(train.prob_clip_eps)
        keras.utils.set_random_seed(inputs.spec.seed)
        tf.config.experimental.enable_op_determinism()
        keras.backend.clear_session()
        info.update(
            framework="keras",
            keras_version=keras.__version__,
            tensorflow_version=tf.__version__,
        )
        return info

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> History:
        spec, data = inputs.spec, inputs.data
        dtype = spec.train.dtype.value
        y_dtype = "int64" if data.task is Task.multiclass else dtype
        x_train = tf.constant(data.x_train, dtype=dtype)
        y_train = tf.constant(data.y_train, dtype=y_dtype)
        x_val = tf.constant(data.x_val, dtype=dtype)
        y_val = tf.constant(data.y_val, dtype=y_dtype)

        model = _model(inputs, dtype)
        loss = _loss(data.task, spec.model.from_logits)
        dataset, steps = _epoch_dataset(inputs, x_train, y_train)
        model.compile(
            optimizer=_optimizer(inputs),
            loss=loss,
            steps_per_execution=steps,  # one epoch per call into the graph
            jit_compile=False,  # XLA fusions would change float results (parity)
        )
        post = probabilities_after_model(inputs)

        @tf.function
        def evaluate():
            train_out = model(x_train, training=False)
            val_logits, val_out = _forward_with_logits(model, x_val)
            val_loss = loss(y_val, val_out)
            if post == "sigmoid":
                train_out, val_out = tf.sigmoid(train_out), tf.sigmoid(val_out)
            elif post == "softmax":
                train_out, val_out = tf.nn.softmax(train_out), tf.nn.softmax(val_out)
            return val_loss, train_out, val_out, val_logits

        model.fit(
            dataset,
            epochs=spec.train.epochs,
            steps_per_epoch=steps,
            shuffle=False,
            verbose=0,
            callbacks=[_EpochCallback(inputs, evaluate, steps, on_epoch)],
        )
        standalone = _standalone(model) if spec.tracking.log_model else None  # ~20 ms: only when logged
        return History(final_weights=_weights(model), model=standalone, model_flavor="keras")

    @contextmanager
    def forward(self, inputs: TrainInputs, x: np.ndarray) -> Iterator[Callable[[], np.ndarray]]:
        """The Sequential model called inside one tf.function (a graph: no per-layer Python)."""
        dtype = inputs.spec.train.dtype.value
        model = _model(inputs, dtype)
        call = tf.function(lambda t: model(t, training=False))
        xs = tf.constant(x, dtype=dtype)
        yield lambda: call(xs).numpy()  # .numpy() waits for the device
