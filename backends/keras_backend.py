"""Keras 3 on TensorFlow: Sequential + Dense, compile, fit with a callback.

Reads like a translation of lightning_backend.py: same sections, same order, same names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from backends.base import (
    EpochReporter,
    Evaluation,
    LossSettings,
    OnEpoch,
    TrainedModel,
    TrainInputs,
    evaluate_outputs,
    quiet_native_stderr,
    thread_count,
)
from harness.core.config import Activation, Device, OptimizerName, Task
from harness.core.init import Weights

# Keras reads KERAS_BACKEND at import; keep TensorFlow's C++ banners out of the user's way.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

with quiet_native_stderr():
    import keras
    import tensorflow as tf
from keras import ops  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise RuntimeError(
        f"the keras backend needs KERAS_BACKEND=tensorflow, found {keras.backend.backend()!r}"
    )


# --- the process: device, threads ----------------------------------------------------------

_DEVICE_CONFIGURED: dict[str, str] = {}


def _configure_process(inputs: TrainInputs) -> dict[str, str]:
    """Threads, visible devices: settable once per process, before TensorFlow starts."""
    if _DEVICE_CONFIGURED:
        return _DEVICE_CONFIGURED
    with quiet_native_stderr():  # "failed call to cuInit" on machines without a GPU
        gpus = tf.config.list_physical_devices("GPU")
    want = Device(inputs.config.train.device)
    if want is Device.gpu and not gpus:
        raise RuntimeError("train.device=gpu, but TensorFlow sees no GPU; use train.device=cpu")
    use_gpu = bool(gpus) and want is not Device.cpu
    if use_gpu:
        for gpu in gpus:
            tf.config.experimental.set_memory_growth(gpu, True)
        tf.config.set_visible_devices(gpus[:1], "GPU")
    else:
        tf.config.set_visible_devices([], "GPU")
    threads = thread_count(inputs.config)
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    _DEVICE_CONFIGURED.update(
        device=f"gpu:{gpus[0].name}" if use_gpu else "cpu",
        threads=str(threads),
    )
    return _DEVICE_CONFIGURED


# --- the network ---------------------------------------------------------------------------


def _activate(act: Activation, x):
    return keras.activations.get(act.value)(x)


def _model(inputs: TrainInputs, dtype: str) -> keras.Sequential:
    layers: list = [keras.Input(shape=(inputs.data.n_features,), dtype=dtype)]
    if inputs.config.model.conv_filters:
        layers += _conv_layers(inputs)
    for units in inputs.config.model.hidden:
        layers.append(keras.layers.Dense(units, activation=inputs.hidden_activation.value))
    output = inputs.output_activation.value
    layers.append(keras.layers.Dense(inputs.data.n_outputs, activation=output))
    model = keras.Sequential(layers)
    model.set_weights([a.astype(dtype) for kernel, bias in inputs.weights for a in (kernel, bias)])
    return model


def _conv_layers(inputs: TrainInputs) -> list:
    """Rows -> NHWC images, Conv2D ('valid', stride 1; kernels (kh, kw, in, out) as the
    harness stores them), then Flatten in (height, width, channels) order."""
    k, act = inputs.config.model.kernel_size, inputs.hidden_activation.value
    layers: list = [keras.layers.Reshape(inputs.data.image_shape)]
    for filters in inputs.config.model.conv_filters:
        layers.append(keras.layers.Conv2D(
            filters, k, padding="valid", data_format="channels_last", activation=act
        ))
    return [*layers, keras.layers.Flatten()]


def _weights(model: keras.Sequential) -> Weights:
    arrays = model.get_weights()
    return [(arrays[i], arrays[i + 1]) for i in range(0, len(arrays), 2)]


def _logits_and_output(model: keras.Sequential, x):
    """(pre-activation, output) of the last layer: the ops Dense.call runs, split in two."""
    for layer in model.layers[:-1]:
        x = layer(x, training=False)
    head = model.layers[-1]
    logits = ops.add(ops.matmul(x, head.kernel), head.bias)
    return logits, head.activation(logits)


def _standalone(model: keras.Sequential) -> keras.Sequential:
    """The trained network without its training state: loads anywhere, with no custom loss."""
    copy = keras.Sequential.from_config(model.get_config())  # clone_model would recompile
    copy.set_weights(model.get_weights())
    return copy


# --- the loss ------------------------------------------------------------------------------


def _loss(settings: LossSettings) -> keras.losses.Loss:
    """The task's loss, called loss(target, output) as Keras does."""
    if settings.task is Task.regression:
        return keras.losses.MeanSquaredError()
    if not settings.from_logits:
        return _ClippedCrossEntropy(settings)
    if settings.task is Task.multiclass:
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return keras.losses.BinaryCrossentropy(from_logits=True)


class _ClippedCrossEntropy(keras.losses.Loss):
    """Cross-entropy from the probabilities the model outputs, op for op as Keras' own, with
    the clip epsilon given, not read from the process-wide keras.config.epsilon().

    Keras' own probability losses are not used: inside `fit` on TensorFlow they see that the
    output came from a sigmoid/softmax op and quietly compute from its input (the logits)
    instead; the lesson (and the NumPy reference) clip and take logs of probabilities.
    """

    def __init__(self, settings: LossSettings) -> None:
        super().__init__(name="clipped_crossentropy")
        self.multiclass = settings.task is Task.multiclass
        self.eps = settings.clip_eps

    def call(self, y_true, y_pred):
        p = ops.clip(y_pred, self.eps, 1.0 - self.eps)
        if self.multiclass:  # softmax cross-entropy on log(clip(p))
            return ops.sparse_categorical_crossentropy(y_true, ops.log(p), from_logits=True)
        y_true = ops.cast(y_true, y_pred.dtype)
        bce = y_true * ops.log(p)
        bce += (1 - y_true) * ops.log(1 - p)
        return ops.mean(-bce, axis=-1)


# --- the optimizer -------------------------------------------------------------------------


def _optimizer(inputs: TrainInputs) -> keras.optimizers.Optimizer:
    opt = inputs.config.optimizer
    if OptimizerName(opt.name) is OptimizerName.gd:
        return keras.optimizers.SGD(learning_rate=opt.lr, momentum=0.0)
    return keras.optimizers.Adam(
        learning_rate=opt.lr, beta_1=opt.beta_1, beta_2=opt.beta_2, epsilon=opt.epsilon
    )


# --- the batches ---------------------------------------------------------------------------


def _epoch_batches(inputs: TrainInputs, x: tf.Tensor, y: tf.Tensor) -> tuple[tf.data.Dataset, int]:
    """Every epoch's batches in the harness's order, as one dataset (no Keras shuffling)."""
    epochs = [inputs.batches(e) for e in range(inputs.config.train.epochs)]
    steps = len(epochs[0])
    order = tf.constant(np.stack([np.concatenate(b) for b in epochs]))
    batch = inputs.config.train.batch_size or len(inputs.data.x_train)
    # one gather per epoch (not per batch): the epoch's data in the harness's order, batched;
    # a full batch is the epoch itself (no per-epoch inner dataset, ~0.3 ms an epoch)
    ds = tf.data.Dataset.from_tensor_slices(order)
    if steps == 1:  # nothing to overlap with a step either: no prefetch thread
        ds = ds.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)))
    else:
        ds = ds.flat_map(
            lambda idx: tf.data.Dataset.from_tensor_slices(
                (tf.gather(x, idx), tf.gather(y, idx))
            ).batch(batch)
        ).prefetch(2)
    # No tf.data autotuning: its background model thread made `fit` stall ~1.2 s on return
    # (the iterator's teardown waits for it) in about half the runs of a warm worker.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.with_options(options), steps


# --- the training loop's hook --------------------------------------------------------------


class _EpochCallback(keras.callbacks.Callback):
    """Hands each epoch's end to the harness's EpochReporter."""

    def __init__(self, reporter: EpochReporter) -> None:
        super().__init__()
        self.reporter = reporter

    def on_epoch_begin(self, epoch, logs=None):
        self.reporter.begin()

    def on_epoch_end(self, epoch, logs=None):
        # a host value: the epoch's steps have finished
        if not self.reporter.end(epoch, float(logs["loss"])):
            self.model.stop_training = True


# --- the backend ---------------------------------------------------------------------------


class KerasBackend:
    name = "keras"

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        info = dict(_configure_process(inputs))
        train = inputs.config.train
        tf.config.experimental.enable_tensor_float_32_execution(train.allow_tf32)
        keras.config.set_floatx(train.dtype.value)
        keras.utils.set_random_seed(inputs.config.seed)
        tf.config.experimental.enable_op_determinism()
        keras.backend.clear_session()
        info.update(
            framework="keras",
            keras_version=keras.__version__,
            tensorflow_version=tf.__version__,
        )
        return info

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        data = inputs.data
        dtype = inputs.config.train.dtype.value
        y_dtype = "int64" if data.task is Task.multiclass else dtype
        x_train = tf.constant(data.x_train, dtype=dtype)
        y_train = tf.constant(data.y_train, dtype=y_dtype)
        x_val = tf.constant(data.x_val, dtype=dtype)
        y_val = tf.constant(data.y_val, dtype=y_dtype)

        model = _model(inputs, dtype)
        loss = _loss(inputs.loss)
        batches, steps = _epoch_batches(inputs, x_train, y_train)

        @tf.function  # one graph: no per-layer Python each epoch
        def outputs():
            return evaluate_outputs(
                lambda x: _logits_and_output(model, x),
                lambda out, y: loss(y, out),
                _activate,
                inputs.head_after_model,
                x_train,
                x_val,
                y_val,
            )

        def evaluate() -> Evaluation:
            val_loss, train_pred, val_pred, val_logits = (t.numpy() for t in outputs())
            return Evaluation(float(val_loss), train_pred, val_pred, val_logits)

        reporter = EpochReporter(inputs, steps, evaluate, lambda: _weights(model), on_epoch)
        model.compile(
            optimizer=_optimizer(inputs),
            loss=loss,
            steps_per_execution=steps,  # one epoch per call into the graph
            jit_compile=False,  # XLA fusions would change float results (parity)
        )
        model.fit(
            batches,
            epochs=inputs.config.train.epochs,
            steps_per_epoch=steps,
            shuffle=False,
            verbose=0,
            callbacks=[_EpochCallback(reporter)],
        )
        kept = _standalone(model) if inputs.keep_model else None  # ~20 ms: only when asked
        return TrainedModel(final_weights=_weights(model), model=kept, model_flavor="keras")

    @contextmanager
    def forward(self, inputs: TrainInputs, x: np.ndarray) -> Iterator[Callable[[], np.ndarray]]:
        """The Sequential model called inside one tf.function (a graph: no per-layer Python)."""
        dtype = inputs.config.train.dtype.value
        model = _model(inputs, dtype)
        call = tf.function(lambda t: model(t, training=False))
        xs = tf.constant(x, dtype=dtype)
        yield lambda: call(xs).numpy()  # .numpy() waits for the device
