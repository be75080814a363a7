"""The one way into a backend, and what every backend shares: the inputs it reads, the records
it hands back, the end-of-epoch evaluation, and the clock and record of each epoch.

A backend translates these into its framework; the arithmetic written here is written once.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from harness.core.config import Activation, Config, Task
from harness.core.data import Dataset, batch_indices
from harness.core.init import Weights


@dataclass
class EpochRecord:
    """One epoch as the backend saw it; the harness turns it into metrics."""

    epoch: int  # 1-based
    train_loss: float  # mean of the epoch's batch losses, weighted by batch size
    val_loss: float
    # outputs after the head: probabilities for classification (softmax/sigmoid applied
    # after the model in the logits form), values for regression
    train_pred: np.ndarray
    val_pred: np.ndarray
    epoch_time_s: float  # training steps only, clock read after the device synchronised
    steps: int
    samples: int
    # the output layer's pre-activation on the validation set (numerics checks)
    val_logits: np.ndarray | None = None
    # (kernel (in, out), bias) per layer after this epoch, only when inputs.record_weights
    weights: Weights | None = None
    # the end-of-epoch evaluation on the training and validation sets (outputs, val loss)
    eval_time_s: float = 0.0


@dataclass
class TrainedModel:
    """What a backend returns once training ends (the epochs went to on_epoch as they ran)."""

    final_weights: Weights  # (kernel (in, out), bias) per layer, NumPy, Keras layout
    # the trained network as its framework's own object (keras.Model, torch.nn.Module) and
    # the MLflow flavour that saves it ("keras", "pytorch"); set when inputs.keep_model
    model: Any = None
    model_flavor: str | None = None


OnEpoch = Callable[[EpochRecord], bool | None]  # returning False stops training


@dataclass(frozen=True)
class LossSettings:
    """Which loss every backend's `_loss(settings)` builds: the task's, from logits or from
    probabilities clipped to [clip_eps, 1 - clip_eps] (Keras' rule, passed explicitly)."""

    task: Task
    from_logits: bool
    clip_eps: float


@dataclass
class TrainInputs:
    """Everything a backend needs, already decided by the harness."""

    config: Config  # backends read its model, optimizer, train and seed parts only
    data: Dataset
    weights: Weights
    output_activation: Activation  # resolved from the task when the config left it null
    # hand out each epoch's weights in EpochRecord.weights (parity checks; costs a copy)
    record_weights: bool = False
    # return the trained network as its framework's object (tracking.log_model)
    keep_model: bool = False

    @property
    def task(self) -> Task:
        return self.data.task

    @property
    def hidden_activation(self) -> Activation:
        return Activation(self.config.model.hidden_activation)

    @property
    def loss(self) -> LossSettings:
        model, train = self.config.model, self.config.train
        return LossSettings(self.task, model.from_logits, train.prob_clip_eps)

    @property
    def head_after_model(self) -> Activation:
        """Applied to the model's output to predict: in the lesson's logits form the model
        ends linear and sigmoid or softmax comes after it; otherwise nothing (linear)."""
        if not self.config.model.from_logits:
            return Activation.linear
        return Activation.softmax if self.task is Task.multiclass else Activation.sigmoid

    def batches(self, epoch: int) -> list[np.ndarray]:
        """Epoch `epoch` (0-based)'s batches as row indices: the harness's order everywhere."""
        train = self.config.train
        return batch_indices(len(self.data.x_train), train.batch_size, epoch, self.config.seed)


class Backend(Protocol):
    name: str

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        """Device, threads, seeds, determinism; returns what to record (versions, device)."""
        ...

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> TrainedModel:
        """Build the model from inputs.weights, train on inputs.batches, report every epoch."""
        ...

    def forward(
        self, inputs: TrainInputs, x: np.ndarray
    ) -> AbstractContextManager[Callable[[], np.ndarray]]:
        """After setup: the model built from inputs.weights as a ready-to-time forward pass
        over x, returning the outputs (after the head) as NumPy once the device is done."""
        ...


# --- the end-of-epoch evaluation -----------------------------------------------------------

T = TypeVar("T")  # a framework's tensor


@dataclass
class Evaluation:
    """The end-of-epoch evaluation as host values."""

    val_loss: float
    train_pred: np.ndarray
    val_pred: np.ndarray
    val_logits: np.ndarray


def evaluation_inputs(data: Dataset, dtype: Any) -> np.ndarray:
    """The training then the validation inputs as one array, in `dtype`: what
    evaluate_outputs runs the model on (made once per run, before the framework's tensor)."""
    return np.concatenate([data.x_train, data.x_val]).astype(dtype, copy=False)


def evaluate_outputs(
    logits_and_output: Callable[[T], tuple[T, T]],
    loss: Callable[[T, T], T],
    activate: Callable[[Activation, T], T],
    head: Activation,
    x_eval: T,
    n_train: int,
    y_val: T,
) -> tuple[T, T, T, T]:
    """(val loss, train predictions, val predictions, val logits) in the backend's tensors.

    One forward pass over x_eval (evaluation_inputs: the n_train training rows, then the
    validation rows), split after: one call into the framework, not two. logits_and_output(x)
    is the model's last pre-activation and its output; loss(output, target); activate(act,
    x) the backend's activation; head: inputs.head_after_model.
    """
    logits, out = logits_and_output(x_eval)
    val_loss = loss(out[n_train:], y_val)
    if head is not Activation.linear:
        out = activate(head, out)
    return val_loss, out[:n_train], out[n_train:], logits[n_train:]


# --- the clock and the record of an epoch ---------------------------------------------------


class EpochReporter:
    """Times each epoch and reports it to on_epoch: one arithmetic for every backend.

    begin() before the epoch's first step; end() after its last, with the epoch's loss as a
    host value (reading it waits for the device), so that the clock, read first thing in
    end(), counts the training steps and only them. The evaluation is timed apart.
    """

    def __init__(
        self,
        inputs: TrainInputs,
        steps: int,
        evaluate: Callable[[], Evaluation],
        weights: Callable[[], Weights],
        on_epoch: OnEpoch,
    ) -> None:
        self.inputs, self.steps, self.evaluate, self.weights = inputs, steps, evaluate, weights
        self.on_epoch = on_epoch
        self.started = 0.0

    def begin(self) -> None:
        self.started = time.perf_counter()

    def end(self, epoch: int, train_loss: float) -> bool:
        """Report epoch `epoch` (0-based); False: on_epoch asked to stop training."""
        elapsed = time.perf_counter() - self.started
        evaluation = self.evaluate()
        eval_time = time.perf_counter() - self.started - elapsed
        record = EpochRecord(
            epoch=epoch + 1,
            train_loss=train_loss,
            val_loss=evaluation.val_loss,
            train_pred=evaluation.train_pred,
            val_pred=evaluation.val_pred,
            epoch_time_s=elapsed,
            steps=self.steps,
            samples=len(self.inputs.data.x_train),
            val_logits=evaluation.val_logits,
            weights=self.weights() if self.inputs.record_weights else None,
            eval_time_s=eval_time,
        )
        return self.on_epoch(record) is not False


# --- process settings ----------------------------------------------------------------------


def thread_count(config: Config, cap: int | None = None) -> int:
    """train.threads, else the share of cores a parallel launcher gave this worker (else all
    cores), limited to `cap`: the framework's sensible default for these small networks."""
    if config.train.threads:
        return int(config.train.threads)
    share = os.environ.get("HARNESS_THREADS", "")
    threads = int(share) if share.isdigit() and int(share) > 0 else (os.cpu_count() or 1)
    return min(threads, cap) if cap else threads


@contextmanager
def quiet_native_stderr() -> Iterator[None]:
    """Silence what C++ libraries write straight to file descriptor 2.

    TensorFlow 2.21 prints its oneDNN and CUDA banners through absl before any log level
    applies (TF_CPP_MIN_LOG_LEVEL included). Python exceptions are unaffected: they are
    printed after the descriptor is restored.
    """
    if os.environ.get("HARNESS_VERBOSE_FRAMEWORKS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
