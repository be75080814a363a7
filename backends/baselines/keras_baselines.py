"""The bench's Keras baselines, on whichever engine Keras was imported with (KERAS_BACKEND,
set by the bench before this import): textbook `fit` and the engine's fastest `fit`; on
TensorFlow also tf.data and a tf.function loop (the TensorFlow-only section at the end)."""

from __future__ import annotations

import os
import time

import numpy as np

from backends.base import quiet_native_stderr
from backends.baselines import HIDDEN, LR, digits

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
with quiet_native_stderr():
    import keras

ENGINE = keras.backend.backend()  # "tensorflow", "jax" or "torch": fixed at import


def _model(n_in: int) -> keras.Sequential:
    # a fresh session, as the harness's backend starts every run: no state (names, graphs)
    # piling up over the variants and repeats one process times
    keras.backend.clear_session()
    return keras.Sequential(
        [keras.Input((n_in,))]
        + [keras.layers.Dense(h, activation="relu") for h in HIDDEN]
        + [keras.layers.Dense(10)]
    )


def _compiled(n_in: int, **options) -> keras.Sequential:
    model = _model(n_in)
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        **options,
    )
    return model


class _Stamps(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.stamps.append(time.perf_counter())


def _fit_arrays(model: keras.Sequential, batch: int | None, epochs: int) -> list[float]:
    """fit on the in-memory NumPy arrays (Keras shuffles them every epoch)."""
    x, y = digits()
    clock = _Stamps()
    model.fit(x, y, batch_size=batch or len(x), epochs=epochs, verbose=0, callbacks=[clock])
    return clock.stamps


def _require(*engines: str) -> None:
    if ENGINE not in engines:
        raise RuntimeError(
            f"this baseline runs Keras on {' or '.join(engines)}, but Keras was imported on "
            f"{ENGINE} in this process; set KERAS_BACKEND before the first `import keras`"
        )


# --- every engine --------------------------------------------------------------------------


def textbook_fit(batch: int | None, epochs: int) -> list[float]:
    """The tutorial way: compile (defaults, an accuracy metric) + fit on NumPy arrays."""
    model = _compiled(digits()[0].shape[1], metrics=["accuracy"])
    return _fit_arrays(model, batch, epochs)


def arrays_fit(batch: int | None, epochs: int) -> list[float]:
    """fit on in-memory arrays, no metrics; compiled as the engine's default does (XLA on
    JAX, eager on PyTorch) and, where the engine allows it (not PyTorch), an epoch of steps
    per call into the compiled function. Measured fastest on JAX (vs JAX arrays as input,
    or one step a call); on PyTorch torch tensors as input were no faster."""
    x = digits()[0]
    steps = 1 if ENGINE == "torch" else -(-len(x) // (batch or len(x)))
    return _fit_arrays(_compiled(x.shape[1], steps_per_execution=steps), batch, epochs)


# --- PyTorch only --------------------------------------------------------------------------


def torch_compiled_fit(batch: int | None, epochs: int) -> list[float]:
    """arrays_fit with jit_compile=True: Keras runs its train step through torch.compile
    (inductor). Not the default on PyTorch; at batch 32 on CPU it beats eager by ~3x."""
    _require("torch")
    import torch

    # a fresh compile cache, as in a user's process: dynamo stops compiling a function (falls
    # back to eager) after 8 recompilations, and every new model is one
    torch._dynamo.reset()
    x = digits()[0]
    return _fit_arrays(_compiled(x.shape[1], jit_compile=True), batch, epochs)


# --- TensorFlow only: tf.data and tf.function (the `keras` group) --------------------------


def _tensorflow():
    _require("tensorflow")
    with quiet_native_stderr():
        import tensorflow as tf
    return tf


def dataset_fit(batch: int | None, epochs: int) -> list[float]:
    """Keras' fastest `fit` on TensorFlow: a tf.data.Dataset and steps_per_execution = one
    epoch."""
    tf = _tensorflow()
    x, y = digits()
    bs = batch or len(x)
    steps = -(-len(x) // bs)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
    ds = ds.batch(bs).repeat().prefetch(2)
    model = _compiled(x.shape[1], steps_per_execution=steps)
    clock = _Stamps()
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    return clock.stamps


def tf_function_loop(batch: int | None, epochs: int) -> list[float]:
    """A minimal hand-written loop: one tf.function step per batch."""
    tf = _tensorflow()
    x, y = digits()
    bs = batch or len(x)
    model = _model(x.shape[1])
    opt = keras.optimizers.Adam(LR)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    xt, yt = tf.constant(x), tf.constant(y)
    variables = model.trainable_variables

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))
        return loss

    rng = np.random.default_rng(0)
    stamps = []
    for _ in range(epochs):
        idx = tf.constant(rng.permutation(len(x)))
        xs, ys = tf.gather(xt, idx), tf.gather(yt, idx)
        for i in range(0, len(x), bs):
            loss = step(xs[i : i + bs], ys[i : i + bs])
        float(loss)  # wait for the epoch's last step
        stamps.append(time.perf_counter())
    return stamps
