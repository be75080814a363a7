"""What differs between Keras 3's engines (TensorFlow, JAX, PyTorch) in the Keras backend.

Everything else in backends/keras_backend.py is written once, in `keras` and `keras.ops`.
An engine differs in its process settings (device, threads, TF32, determinism), in how the
harness's batches reach `fit`, and in how the end-of-epoch evaluation is compiled. Keras
fixes its engine when it is first imported (KERAS_BACKEND), so one process runs one engine,
and each engine imports its framework only here, when it is the one in use.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Protocol

import keras
import numpy as np

from backends.base import TrainInputs, quiet_native_stderr, thread_count
from harness.core.config import ConfigError, Device


@dataclass
class FitData:
    """What `fit` trains on, and how."""

    data: Any  # a tf.data.Dataset or a keras PyDataset
    steps: int  # per epoch
    steps_per_execution: int
    callbacks: list[keras.callbacks.Callback] = field(default_factory=list)
    # another run's batches (same shapes) into this same dataset; False where it cannot
    refill: Callable[[TrainInputs, np.ndarray, np.ndarray], bool] | None = None


class Engine(Protocol):
    name: str  # keras.backend.backend()
    jit_compile: bool  # what `compile` is given

    def configure_process(self, inputs: TrainInputs) -> dict[str, str]:
        """Device and threads, once per process; what to record."""
        ...

    def setup(self, inputs: TrainInputs, warm: bool) -> dict[str, str]:
        """TF32, determinism and seeds, every run; the engine's version to record. warm: the
        last run's compiled model is reused (its compiled functions must survive)."""
        ...

    def epoch_batches(
        self, inputs: TrainInputs, x: np.ndarray, y: np.ndarray, reuse: FitData | None = None
    ) -> FitData:
        """The harness's batches, in its order, as `fit` takes them from this engine; `reuse`
        (the last run's, same shapes) refilled with them where the engine can."""
        ...

    def compiled(self, fn: Callable) -> Callable:
        """fn (Keras calls, no gradients) as the engine runs it fastest without changing it."""
        ...

    def placement(self) -> AbstractContextManager:
        """Where the model and its batches live: the device configure_process chose."""
        ...


# --- TensorFlow ----------------------------------------------------------------------------


class TensorFlowEngine:
    name = "tensorflow"
    jit_compile = False  # XLA fusions would change float results (parity)

    def __init__(self) -> None:
        with quiet_native_stderr():
            import tensorflow as tf
        self.tf = tf
        self.configured: dict[str, str] = {}

    def configure_process(self, inputs: TrainInputs) -> dict[str, str]:
        """Threads, visible devices: settable once per process, before TensorFlow starts."""
        tf = self.tf
        if self.configured:
            return self.configured
        with quiet_native_stderr():  # "failed call to cuInit" on machines without a GPU
            gpus = tf.config.list_physical_devices("GPU")
        want = Device(inputs.config.train.device)
        if want is Device.gpu and not gpus:
            raise ConfigError("train.device=gpu, but TensorFlow sees no GPU; use train.device=cpu")
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
        self.configured.update(
            device=f"gpu:{gpus[0].name}" if use_gpu else "cpu",
            threads=str(threads),
        )
        return self.configured

    def setup(self, inputs: TrainInputs, warm: bool) -> dict[str, str]:
        self.tf.config.experimental.enable_tensor_float_32_execution(inputs.config.train.allow_tf32)
        if warm:
            # tf.random.set_seed (in keras.utils.set_random_seed) clears TensorFlow's function
            # cache: the reused model's `fit` would instantiate its graph again (~0.3 s, in
            # the first epoch). Nothing here draws from TensorFlow's global generator: the
            # initial weights are the harness's and the batches its order.
            _seed_without_tensorflow(inputs.config.seed)
        else:
            keras.utils.set_random_seed(inputs.config.seed)
        self.tf.config.experimental.enable_op_determinism()
        return {"tensorflow_version": self.tf.__version__}

    def epoch_batches(
        self, inputs: TrainInputs, x: np.ndarray, y: np.ndarray, reuse: FitData | None = None
    ) -> FitData:
        """Every epoch's batches as one tf.data dataset, one epoch per call into the graph.

        The data and the epochs' order are variables the dataset reads as it runs, so the
        next run of a reused model refills them (`reuse`) instead of building a dataset:
        building one and its first iterator cost 60-100 ms a run, a refilled one's iterator
        ~12 ms. An epoch's batches are the same either way (tests/test_warm_reuse.py).
        """
        tf = self.tf
        order = np.stack(
            [np.concatenate(inputs.batches(e)) for e in range(inputs.config.train.epochs)]
        )
        if reuse is not None and reuse.refill is not None and reuse.refill(inputs, x, y, order):
            return reuse
        steps = len(inputs.batches(0))
        feeds = (
            tf.Variable(x, trainable=False),
            tf.Variable(y, trainable=False),
            tf.Variable(order, trainable=False, shape=tf.TensorShape([None, order.shape[1]])),
        )
        xs, ys, orders = feeds
        n, batch = len(x), inputs.config.train.batch_size or len(inputs.data.x_train)

        def epoch(e):  # epoch e's rows (an endless count: fit stops after its epochs' steps)
            return orders[e % tf.shape(orders, out_type=tf.int64)[0]]

        # one gather per epoch (not per batch): the epoch's data in the harness's order,
        # batched; a full batch is the epoch itself (no per-epoch inner dataset, ~0.3 ms)
        ds = tf.data.Dataset.counter().map(epoch)
        if steps == 1:  # nothing to overlap with a step either: no prefetch thread
            ds = ds.map(lambda idx: (tf.gather(xs, idx), tf.gather(ys, idx)))
        else:
            ds = ds.flat_map(
                lambda idx: tf.data.Dataset.from_tensor_slices(
                    (tf.gather(xs, idx), tf.gather(ys, idx))
                ).batch(batch)
            ).prefetch(2)
        # No tf.data autotuning: its background model thread made `fit` stall ~1.2 s on
        # return (the iterator's teardown waits for it) in about half the runs of a worker.
        options = tf.data.Options()
        options.autotune.enabled = False

        def refill(inputs2: TrainInputs, x2: np.ndarray, y2: np.ndarray, order2) -> bool:
            same = all(
                new.shape[1:] == var.shape[1:] and new.dtype == var.dtype.as_numpy_dtype
                for new, var in zip((x2, y2, order2), feeds, strict=True)
            )
            batch2 = inputs2.config.train.batch_size or len(inputs2.data.x_train)
            if not same or len(x2) != n or batch2 != batch or len(inputs2.batches(0)) != steps:
                return False
            for new, var in zip((x2, y2, order2), feeds, strict=True):
                var.assign(new)
            return True

        return FitData(ds.with_options(options), steps, steps, refill=refill)

    def compiled(self, fn: Callable) -> Callable:
        """One graph (no per-layer Python each epoch), called as its concrete function: ~0.1
        ms a call less than tf.function's dispatch (a quarter of the evaluation's call)."""
        graph = self.tf.function(fn)
        concrete: dict[tuple, Callable] = {}  # per argument shapes and dtypes

        def call(*args):
            key = tuple((tuple(a.shape), a.dtype) for a in args)
            if key not in concrete:
                concrete[key] = graph.get_concrete_function(*args)
            return concrete[key](*args)

        return call

    def placement(self) -> AbstractContextManager:
        return nullcontext()  # configure_process left TensorFlow only the chosen device


# --- JAX and PyTorch: the harness's batches as a PyDataset ---------------------------------


class HarnessBatches(keras.utils.PyDataset):
    """Every epoch's batches in the harness's order, the epoch set by `fit`'s callback.

    Not PyDataset.on_epoch_end: `fit` reads a first batch (for shapes) and ends an epoch of
    its own before the first real one, which would shift every epoch's batches by one.
    """

    def __init__(self, inputs: TrainInputs, x: np.ndarray, y: np.ndarray) -> None:
        super().__init__()  # workers=1, no multiprocessing: batches come from this thread
        self.x, self.y = x, y
        self.epochs = [inputs.batches(e) for e in range(inputs.config.train.epochs)]
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.epochs[0])

    def __getitem__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        idx = self.epochs[self.epoch][step]
        return self.x[idx], self.y[idx]


class _FollowEpochs(keras.callbacks.Callback):
    """Tells HarnessBatches which epoch `fit` is in."""

    def __init__(self, batches: HarnessBatches) -> None:
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.epoch = epoch


def _py_dataset(
    inputs: TrainInputs, x: np.ndarray, y: np.ndarray, steps_per_execution: int = 1
) -> FitData:
    batches = HarnessBatches(inputs, x, y)
    return FitData(
        batches, len(batches), steps_per_execution, callbacks=[_FollowEpochs(batches)]
    )


def _seed_without_tensorflow(seed: int) -> None:
    """keras.utils.set_random_seed, less its import of TensorFlow (to seed it) when installed.

    Nothing here draws from Keras' own generator that matters: the initial weights are the
    harness's and the batches its order.
    """
    random.seed(seed)
    np.random.seed(seed)


class JaxEngine:
    name = "jax"
    jit_compile = True  # JAX runs through XLA: the idiomatic and the fast way

    def __init__(self) -> None:
        import jax

        self.jax = jax

    def configure_process(self, inputs: TrainInputs) -> dict[str, str]:
        want = Device(inputs.config.train.device)
        gpus = [d for d in self.jax.devices() if d.platform == "gpu"]
        if want is Device.gpu and not gpus:
            raise ConfigError("train.device=gpu, but JAX sees no GPU; use train.device=cpu")
        use_gpu = bool(gpus) and want is not Device.cpu
        self.device = "gpu:0" if use_gpu else "cpu:0"
        # XLA sizes its CPU thread pool when it starts: train.threads is not applied
        return {"device": f"gpu:{gpus[0].device_kind}" if use_gpu else "cpu", "threads": "xla"}

    def setup(self, inputs: TrainInputs, warm: bool) -> dict[str, str]:
        precision = "tensorfloat32" if inputs.config.train.allow_tf32 else "highest"
        self.jax.config.update("jax_default_matmul_precision", precision)
        _seed_without_tensorflow(inputs.config.seed)
        return {"jax_version": self.jax.__version__}

    def epoch_batches(
        self, inputs: TrainInputs, x: np.ndarray, y: np.ndarray, reuse: FitData | None = None
    ) -> FitData:
        # an epoch per call, as on TensorFlow: fit's per-step callbacks and logs were half of
        # a batch-32 step here (bench: 10.0 ms against 4.6 ms for fit with it)
        steps = len(inputs.batches(0))
        return _py_dataset(inputs, x, y, steps_per_execution=steps)

    def compiled(self, fn: Callable) -> Callable:
        return fn  # eager: a jitted closure would keep the weights it was traced with

    def placement(self) -> AbstractContextManager:
        return keras.device(self.device)


class TorchEngine:
    name = "torch"
    jit_compile = False  # torch.compile: minutes of compilation for a 25-unit network

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def configure_process(self, inputs: TrainInputs) -> dict[str, str]:
        torch = self.torch
        want = Device(inputs.config.train.device)
        # Keras on torch fixes its device at import, from KERAS_TORCH_DEVICE (which
        # backends/keras_torch_backend.py defaults to cpu); a scope cannot move it
        keras_device = os.environ.get("KERAS_TORCH_DEVICE", "cpu")
        use_gpu = keras_device.startswith("cuda")
        if want is Device.gpu and not (use_gpu and torch.cuda.is_available()):
            raise ConfigError(
                "train.device=gpu with backend=keras_torch needs a CUDA GPU and "
                f"KERAS_TORCH_DEVICE=cuda (found {keras_device!r}); or use train.device=cpu"
            )
        if want is Device.cpu and use_gpu:
            raise ConfigError(
                f"train.device=cpu, but KERAS_TORCH_DEVICE={keras_device}; unset it"
            )
        threads = thread_count(inputs.config, cap=1)  # as the Lightning backend does, and why
        torch.set_num_threads(threads)
        return {
            "device": f"gpu:{torch.cuda.get_device_name(0)}" if use_gpu else "cpu",
            "threads": str(threads),
        }

    def setup(self, inputs: TrainInputs, warm: bool) -> dict[str, str]:
        torch = self.torch
        torch.backends.cuda.matmul.allow_tf32 = inputs.config.train.allow_tf32
        torch.backends.cudnn.allow_tf32 = inputs.config.train.allow_tf32
        torch.use_deterministic_algorithms(True)
        _seed_without_tensorflow(inputs.config.seed)
        torch.manual_seed(inputs.config.seed)
        return {"torch_version": torch.__version__}

    def epoch_batches(
        self, inputs: TrainInputs, x: np.ndarray, y: np.ndarray, reuse: FitData | None = None
    ) -> FitData:
        return _py_dataset(inputs, x, y)

    def compiled(self, fn: Callable) -> Callable:
        return self.torch.no_grad()(fn)

    def placement(self) -> AbstractContextManager:
        return nullcontext()  # KERAS_TORCH_DEVICE placed everything (keras.device breaks grads)


ENGINES: dict[str, Callable[[], Engine]] = {
    "tensorflow": TensorFlowEngine,
    "jax": JaxEngine,
    "torch": TorchEngine,
}


def current() -> Engine:
    """The engine Keras was imported with in this process."""
    return ENGINES[keras.backend.backend()]()
