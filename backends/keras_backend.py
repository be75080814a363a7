"""Keras 3: Sequential + Dense, compile, fit with a callback; on TensorFlow by default.

Reads like a translation of lightning_backend.py: same sections, same order, same names.
Written in `keras` and `keras.ops` only; what differs between Keras' engines (TensorFlow,
JAX, PyTorch: backends.keras_engines) is asked of ENGINE. The keras_jax and keras_torch
backends are this one with the engine chosen before Keras is first imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from backends.base import (
    EpochReporter,
    Evaluation,
    LossSettings,
    OnEpoch,
    TrainedModel,
    TrainInputs,
    evaluate_outputs,
    evaluation_inputs,
    quiet_native_stderr,
)
from harness.core.config import Activation, OptimizerName, Task
from harness.core.init import Weights

# Keras reads KERAS_BACKEND at its first import: TensorFlow unless an engine's module chose.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # read when TensorFlow is imported

with quiet_native_stderr():  # TensorFlow's C++ banners are not the user's business
    import keras
    from keras import ops

    from backends import keras_engines

ENGINE = keras_engines.current()
BACKEND_OF_ENGINE = {"tensorflow": "keras", "jax": "keras_jax", "torch": "keras_torch"}


# --- the process: device, threads ----------------------------------------------------------


def _configure_process(inputs: TrainInputs) -> dict[str, str]:
    """Device and threads, as the engine sets them (once per process)."""
    return dict(ENGINE.configure_process(inputs))


# --- the network ---------------------------------------------------------------------------


def _activate(act: Activation, x):
    return keras.activations.get(act.value)(x)


class Sequential(keras.Sequential):
    """A keras.Sequential whose metric reset, which `fit` does before every epoch, is one
    compiled call: on TensorFlow two eager variable writes cost 0.41 ms a call on 2 cores
    against 0.14 ms compiled (13% of a warm 100-epoch course run went there). Each metric
    resets itself as in Keras (Metric.reset_state): the same zeros, written at once."""

    def reset_metrics(self):
        metrics = tuple(self.metrics)
        if getattr(self, "_reset_for", None) != metrics:
            def reset() -> None:
                for metric in metrics:
                    metric.reset_state()

            object.__setattr__(self, "_reset_for", metrics)  # (not tracked by Keras)
            object.__setattr__(self, "_reset_compiled", ENGINE.compiled(reset))
        self._reset_compiled()


def _model(inputs: TrainInputs, dtype: str) -> keras.Sequential:
    layers: list = [keras.Input(shape=(inputs.data.n_features,), dtype=dtype)]
    if inputs.config.model.conv_filters:
        layers += _conv_layers(inputs)
    for units in inputs.config.model.hidden:
        layers.append(keras.layers.Dense(units, activation=inputs.hidden_activation.value))
    output = inputs.output_activation.value
    layers.append(keras.layers.Dense(inputs.data.n_outputs, activation=output))
    model = Sequential(layers)  # (named "sequential", as keras.Sequential names itself)
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


def _epoch_batches(
    inputs: TrainInputs, x: np.ndarray, y: np.ndarray, reuse: keras_engines.FitData | None
) -> keras_engines.FitData:
    """Every epoch's batches in the harness's order (no Keras shuffling), fed to `fit` as
    the engine takes them fastest (a reused model's dataset refilled where it can be)."""
    return ENGINE.epoch_batches(inputs, x, y, reuse)


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


@dataclass
class _Warm:
    """A built, compiled and traced model, kept after a run for the next one in this process.

    Build, compile, `fit`'s first trace and the evaluation's trace cost ~0.3-0.5 s a run; a
    sweep's worker trains many runs of one architecture in a row. Reused, the model gets the
    next run's own initial weights and a fresh optimizer state, and trains bitwise as a
    fresh build would (tests/test_warm_reuse.py).
    """

    key: tuple
    model: keras.Sequential
    loss: keras.losses.Loss
    optimizer: keras.optimizers.Optimizer
    outputs: Callable  # the compiled evaluation: outputs(x_eval, y_val)
    batches: keras_engines.FitData  # fit's data, which the next run may refill


_WARM: _Warm | None = None  # the last run's model, if it finished


def _warm_key(inputs: TrainInputs) -> tuple:
    """Everything the built model, its compiled `fit` and its traced functions depend on:
    architecture, dtype, loss, optimizer kind and constants, batching, data shapes, engine,
    and the functions that build them (a test that swaps one builds afresh). Not the
    learning rate (an optimizer variable), the seed, the weights, the epochs."""
    model, opt, train, data = (
        inputs.config.model, inputs.config.optimizer, inputs.config.train, inputs.data
    )
    adam = OptimizerName(opt.name) is OptimizerName.adam
    return (
        ENGINE.name, train.dtype.value, train.device.value, train.allow_tf32,
        tuple(model.hidden), inputs.hidden_activation, inputs.output_activation,
        tuple(model.conv_filters), model.kernel_size if model.conv_filters else None,
        data.image_shape, data.n_features, data.n_outputs, len(data.x_train), len(data.x_val),
        inputs.loss, OptimizerName(opt.name),
        (opt.beta_1, opt.beta_2, opt.epsilon) if adam else None,  # constants in the graph
        train.batch_size,
        _model, _conv_layers, _loss, _optimizer, _logits_and_output, _activate, ENGINE,
    )


def _reset(warm: _Warm, inputs: TrainInputs) -> None:
    """The run's own start: its initial weights, the optimizer as new (step 0, no moments,
    the run's learning rate)."""
    dtype = inputs.config.train.dtype.value
    arrays = [a.astype(dtype) for kernel, bias in inputs.weights for a in (kernel, bias)]
    warm.model.set_weights(arrays)
    optimizer = warm.optimizer
    for variable in optimizer.variables:
        if variable is optimizer._learning_rate:
            variable.assign(inputs.config.optimizer.lr)
        else:  # the iteration count and every slot (Adam's momentums and velocities)
            variable.assign(ops.zeros(variable.shape, variable.dtype))


def _evaluation(model: keras.Sequential, loss: keras.losses.Loss, inputs: TrainInputs):
    """The end-of-epoch evaluation, compiled; the data are arguments, so a reused model's
    trace serves every run of its shape."""
    head, n_train = inputs.head_after_model, len(inputs.data.x_train)

    @ENGINE.compiled
    def outputs(x_eval, y_val):
        return evaluate_outputs(
            lambda x: _logits_and_output(model, x),
            lambda out, y: loss(y, out),
            _activate,
            head,
            x_eval,
            n_train,
            y_val,
        )

    return outputs


class KerasBackend:
    name = "keras"
    engine = "tensorflow"

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        if ENGINE.name != self.engine:
            raise RuntimeError(
                f"backend={self.name} runs Keras on {self.engine}, but Keras was imported on "
                f"{ENGINE.name} in this process (KERAS_BACKEND is read once, at import); unset "
                f"KERAS_BACKEND, or use backend={BACKEND_OF_ENGINE[ENGINE.name]}"
            )
        info = _configure_process(inputs)
        global _WARM
        warm, _WARM = _WARM, None  # taken: put back only by a run that finishes
        self.warm = warm if warm is not None and warm.key == _warm_key(inputs) else None
        engine_info = ENGINE.setup(inputs, warm=self.warm is not None)  # TF32, determinism, seeds
        keras.config.set_floatx(inputs.config.train.dtype.value)
        if self.warm is None:
            del warm  # the old model goes with the session's garbage collection
            keras.backend.clear_session()  # not when reusing: it resets Keras' global state
        info.update(framework="keras", keras_version=keras.__version__, **engine_info)
        info["keras_model_reused"] = str(self.warm is not None).lower()
        return info

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        with ENGINE.placement():
            return self._train(inputs, on_epoch)

    def _train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        data = inputs.data
        dtype = inputs.config.train.dtype.value
        y_dtype = "int64" if data.task is Task.multiclass else dtype
        x_eval = ops.convert_to_tensor(evaluation_inputs(data, dtype))  # train rows, then val
        y_val = ops.convert_to_tensor(data.y_val, dtype=y_dtype)
        warm = getattr(self, "warm", None)  # setup's verdict: the last run's model fits
        self.warm = None
        x_train, y_train = data.x_train.astype(dtype), data.y_train.astype(y_dtype)
        batches = _epoch_batches(inputs, x_train, y_train, warm.batches if warm else None)
        if warm is None:
            model = _model(inputs, dtype)
            loss = _loss(inputs.loss)
            optimizer = _optimizer(inputs)
            model.compile(
                optimizer=optimizer,
                loss=loss,
                steps_per_execution=batches.steps_per_execution,  # TensorFlow: an epoch a call
                jit_compile=ENGINE.jit_compile,
            )
            outputs = _evaluation(model, loss, inputs)
            warm = _Warm(_warm_key(inputs), model, loss, optimizer, outputs, batches)
        else:
            _reset(warm, inputs)
            warm.batches = batches
        model = warm.model

        def evaluate() -> Evaluation:
            outputs = warm.outputs(x_eval, y_val)
            val_loss, *predictions = (ops.convert_to_numpy(t) for t in outputs)  # host values
            train_pred, val_pred, val_logits = predictions
            return Evaluation(float(val_loss), train_pred, val_pred, val_logits)

        reporter = EpochReporter(inputs, batches.steps, evaluate, lambda: _weights(model), on_epoch)
        model.fit(
            batches.data,
            epochs=inputs.config.train.epochs,
            steps_per_epoch=batches.steps,
            shuffle=False,
            verbose=0,
            callbacks=[*batches.callbacks, _EpochCallback(reporter)],
        )
        kept = _standalone(model) if inputs.keep_model else None  # ~20 ms: only when asked
        trained = TrainedModel(final_weights=_weights(model), model=kept, model_flavor="keras")
        global _WARM
        _WARM = warm  # for the next run in this process, if it has this one's shape
        return trained

    @contextmanager
    def forward(self, inputs: TrainInputs, x: np.ndarray) -> Iterator[Callable[[], np.ndarray]]:
        """The Sequential model's call, compiled as the engine runs it (a graph on TensorFlow)."""
        dtype = inputs.config.train.dtype.value
        with ENGINE.placement():
            model = _model(inputs, dtype)
            call = ENGINE.compiled(lambda t: model(t, training=False))
            xs = ops.convert_to_tensor(x, dtype=dtype)
            yield lambda: ops.convert_to_numpy(call(xs))  # waits for the device
