"""The bench's Keras baselines: textbook `fit`, Keras' fastest `fit`, a tf.function loop."""

from __future__ import annotations

import os
import time

import numpy as np

from backends.base import quiet_native_stderr
from backends.baselines import HIDDEN, LR, digits

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
with quiet_native_stderr():
    import keras
    import tensorflow as tf


def _model(n_in: int) -> keras.Sequential:
    return keras.Sequential(
        [keras.Input((n_in,))]
        + [keras.layers.Dense(h, activation="relu") for h in HIDDEN]
        + [keras.layers.Dense(10)]
    )


class _Stamps(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[float] = []

    def on_epoch_end(self, epoch, logs=None):
        self.stamps.append(time.perf_counter())


def textbook_fit(batch: int | None, epochs: int) -> list[float]:
    """The tutorial way: compile + fit on NumPy arrays."""
    x, y = digits()
    model = _model(x.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    clock = _Stamps()
    model.fit(x, y, batch_size=batch or len(x), epochs=epochs, verbose=0, callbacks=[clock])
    return clock.stamps


def dataset_fit(batch: int | None, epochs: int) -> list[float]:
    """Keras' fastest `fit`: a tf.data.Dataset and steps_per_execution = one epoch."""
    x, y = digits()
    bs = batch or len(x)
    steps = -(-len(x) // bs)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0)
    ds = ds.batch(bs).repeat().prefetch(2)
    model = _model(x.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps,
    )
    clock = _Stamps()
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    return clock.stamps


def tf_function_loop(batch: int | None, epochs: int) -> list[float]:
    """A minimal hand-written loop: one tf.function step per batch."""
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
