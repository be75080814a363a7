"""The one way into a backend, and the framework-neutral records it hands back."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Protocol

import numpy as np

from harness.core.config import Activation, Config, Task
from harness.core.data import Dataset
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
class History:
    """What a backend returns once training ends (epochs went to on_epoch as they ran)."""

    final_weights: Weights  # (kernel (in, out), bias) per layer, NumPy, Keras layout
    # the trained network as its framework's own object (keras.Model, torch.nn.Module) and
    # the MLflow flavour that saves it ("keras", "pytorch"): tracking.log_model=true logs it
    model: Any = None
    model_flavor: str | None = None


OnEpoch = Callable[[EpochRecord], bool | None]  # returning False stops training


@dataclass
class TrainInputs:
    """Everything a backend needs, already decided by the harness."""

    spec: Config
    data: Dataset
    weights: Weights
    output_activation: Activation  # resolved from the task when the config left it null
    # hand out each epoch's weights in EpochRecord.weights (parity checks; costs a copy)
    record_weights: bool = False

    @property
    def task(self) -> Task:
        return self.data.task


class Backend(Protocol):
    name: str

    def setup(self, inputs: TrainInputs) -> dict[str, str]:
        """Device, threads, seeds, determinism; returns what to record (versions, device)."""
        ...

    def train(self, inputs: TrainInputs, on_epoch: OnEpoch) -> History:
        """Set up the framework, build the model from inputs.weights, train, report epochs."""
        ...

    def forward(self, inputs: TrainInputs, x: np.ndarray) -> ContextManager[Callable[[], np.ndarray]]:
        """After setup: the model built from inputs.weights as a ready-to-time forward pass
        over x, returning the outputs (after the head) as NumPy once the device is done."""
        ...


def thread_count(spec: Config, cap: int | None = None) -> int:
    """train.threads, else the share of cores a parallel launcher gave this worker (else all
    cores), limited to `cap`: the framework's sensible default for these small networks."""
    if spec.train.threads:
        return int(spec.train.threads)
    share = os.environ.get("HARNESS_THREADS", "")
    threads = int(share) if share.isdigit() and int(share) > 0 else (os.cpu_count() or 1)
    return min(threads, cap) if cap else threads


def probabilities_after_model(inputs: TrainInputs) -> str | None:
    """The lesson's logits form: 'sigmoid' or 'softmax' applied after the model to predict."""
    if not inputs.spec.model.from_logits:
        return None
    return "softmax" if inputs.task is Task.multiclass else "sigmoid"


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
