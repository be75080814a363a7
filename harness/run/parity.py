"""Parity: does a framework compute, epoch by epoch, what the NumPy reference computes?

With `train.parity=true` a Keras or Lightning run also trains the NumPy backend in-process
on the same spec, shared weights and batches (cheap: the lesson's networks are small), and
logs per epoch `parity/loss_max_rel_diff` (train and validation loss, relative) and
`parity/param_max_abs_diff` (every weight and bias). The run passes when the worst of each
over all epochs is within the optimizer's tolerances. The verdict is the tag
`parity_verdict` (pass / fail; `reference` on the NumPy run itself) and the final metrics
`parity/worst_loss_rel_diff`, `parity/worst_param_abs_diff`, `parity/tolerance`,
`parity/param_tolerance` and `parity/pass` (1 or 0).

`python -m harness.parity` measures the whole matrix (task x output form x optimizer x
batching x float precision) on small slices of the real datasets and prints a table.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field, replace

import numpy as np

from backends.base import EpochRecord, TrainInputs
from harness.core.config import BackendConfig, Config, Device, OptimizerName, Task
from harness.core.data import Dataset
from harness.core.init import Weights

# Relative train/val loss difference allowed over a run (the bar). Gradient descent
# only accumulates float rounding; Adam divides by sqrt(v), which amplifies it.
TOLERANCE = {OptimizerName.gd: 1e-5, OptimizerName.adam: 1e-3}
# Absolute weight difference allowed. The loss alone is too forgiving: torch's own Adam
# epsilon convention moves the losses < 1e-3 but the weights by 5e-4..4e-2 in 100 epochs,
# while correct float32 translations stay below 4e-6 (measured, see the README).
PARAM_TOLERANCE = {OptimizerName.gd: 1e-5, OptimizerName.adam: 1e-4}
REFERENCE = "numpy"


def wanted(spec: Config) -> bool:
    """True when this run compares itself against the NumPy reference."""
    return bool(spec.train.parity) and spec.backend.name != REFERENCE


def tolerance(spec: Config) -> float:
    return TOLERANCE[OptimizerName(spec.optimizer.name)]


def param_tolerance(spec: Config) -> float:
    return PARAM_TOLERANCE[OptimizerName(spec.optimizer.name)]


def rel_diff(value: float, ref: float) -> float:
    """|value - ref| / |ref|; inf when either is not finite (a diverged run never passes)."""
    if not (math.isfinite(value) and math.isfinite(ref)):
        return math.inf
    return abs(value - ref) / max(abs(ref), np.finfo(np.float64).tiny)


def param_diff(weights: Weights, ref: Weights) -> float:
    """Largest |w - w_ref| over every kernel and bias entry."""
    worst = 0.0
    for (kernel, bias), (ref_kernel, ref_bias) in zip(weights, ref, strict=True):
        for a, b in ((kernel, ref_kernel), (bias, ref_bias)):
            d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
            worst = max(worst, float(d.max()) if np.all(np.isfinite(d)) else math.inf)
    return worst


@dataclass
class Reference:
    """The NumPy backend's run of the same inputs, epoch by epoch."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    weights: list[Weights] = field(default_factory=list)

    def add(self, record: EpochRecord) -> None:
        self.train_loss.append(record.train_loss)
        self.val_loss.append(record.val_loss)
        self.weights.append(record.weights)


def reference(inputs: TrainInputs) -> Reference:
    """Train the NumPy backend on the same spec, weights and batches (all epochs)."""
    from backends.numpy_backend import NumpyBackend

    # the reference is NumPy, on the CPU, whichever device the checked run trains on
    train = replace(inputs.config.train, device=Device.cpu)
    config = replace(inputs.config, backend=BackendConfig(name=REFERENCE), train=train)
    ref_inputs = replace(inputs, config=config, record_weights=True, keep_model=False)
    backend = NumpyBackend()
    backend.setup(ref_inputs)
    ref = Reference()
    with np.errstate(all="ignore"):  # a diverging reference is reported, not warned about
        backend.train(ref_inputs, ref.add)
    return ref


class ParityCheck:
    """Compares each epoch of a run with the reference and keeps the worst differences."""

    def __init__(self, inputs: TrainInputs, ref: Reference | None) -> None:
        self.ref = ref  # None: this run is the reference
        self.tolerance = tolerance(inputs.config)
        self.param_tolerance = param_tolerance(inputs.config)
        self.worst_loss = 0.0
        self.worst_param = 0.0
        self.epochs = 0

    @classmethod
    def start(cls, inputs: TrainInputs) -> ParityCheck | None:
        """None unless train.parity; on a framework backend, trains the reference first."""
        if not inputs.config.train.parity:
            return None
        return cls(inputs, reference(inputs) if wanted(inputs.config) else None)

    def compare(self, record: EpochRecord) -> dict[str, float]:
        """This epoch's parity metrics (none on the reference run itself)."""
        if self.ref is None:
            return {}
        e = record.epoch - 1
        loss = max(
            rel_diff(record.train_loss, self.ref.train_loss[e]),
            rel_diff(record.val_loss, self.ref.val_loss[e]),
        )
        metrics = {"parity/loss_max_rel_diff": loss}
        if record.weights is not None:
            param = param_diff(record.weights, self.ref.weights[e])
            metrics["parity/param_max_abs_diff"] = param
            self.worst_param = max(self.worst_param, param)
        self.worst_loss = max(self.worst_loss, loss)
        self.epochs = record.epoch
        return metrics

    @property
    def passed(self) -> bool:
        return (
            self.epochs > 0
            and self.worst_loss <= self.tolerance
            and self.worst_param <= self.param_tolerance
        )

    @property
    def verdict(self) -> str:
        if self.ref is None:
            return "reference"
        return "pass" if self.passed else "fail"

    def summary(self) -> dict[str, float]:
        """Final metrics: the worst differences over all epochs and the verdict as 1/0."""
        if self.ref is None:
            return {}
        return {
            "parity/worst_loss_rel_diff": self.worst_loss,
            "parity/worst_param_abs_diff": self.worst_param,
            "parity/tolerance": self.tolerance,
            "parity/param_tolerance": self.param_tolerance,
            "parity/pass": float(self.passed),
        }

    def tags(self) -> dict[str, str]:
        tags = {"parity_verdict": self.verdict, "parity_reference": REFERENCE}
        if self.ref is not None:
            tags["parity_tolerance"] = f"loss {self.tolerance:g}, params {self.param_tolerance:g}"
        return tags

    def describe(self) -> str:
        if self.ref is None:
            return "parity: this run is the NumPy reference"
        return (
            f"parity vs numpy: {self.verdict} over {self.epochs} epochs (worst loss rel diff "
            f"{self.worst_loss:.1e}, <= {self.tolerance:g} required; worst param abs diff "
            f"{self.worst_param:.1e}, <= {self.param_tolerance:g} required)"
        )


def overall_verdict(verdicts: list[str | None]) -> str | None:
    """A sweep's verdict from its runs' parity_verdict tags: fail if any run failed, pass
    if at least one framework run was checked and none failed, None if none was checked."""
    checked = [v for v in verdicts if v in ("pass", "fail")]
    if not checked:
        return None
    return "fail" if "fail" in checked else "pass"


# --- measuring many specs in one process (tests and the README table) ------------------

# One dataset per task; small slices keep the matrix fast without changing what is computed.
TASK_DATA = {
    Task.binary: "digits_binary",
    Task.multiclass: "digits",
    Task.multilabel: "digit_pairs",
    Task.regression: "diabetes",
}


def small_dataset(task: Task, seed: int = 0, n_train: int = 96, n_val: int = 48) -> Dataset:
    """The task's real dataset, cut to its first n_train / n_val examples (already shuffled)."""
    from harness.core.config import DataConfig
    from harness.core.data import load

    full = load(DataConfig(name=TASK_DATA[task], task=task), seed)
    return replace(
        full,
        x_train=full.x_train[:n_train],
        y_train=full.y_train[:n_train],
        x_val=full.x_val[:n_val],
        y_val=full.y_val[:n_val],
    )


def measure(spec: Config, data: Dataset, backend: str, ref: Reference | None = None) -> ParityCheck:
    """Train `backend` on spec + data with the parity check on; the check holds the result."""
    from backends import get_backend
    from harness.core.config import output_activation, validate, validate_input
    from harness.core.init import network_weights

    validate(spec, data.task, data.n_outputs)
    validate_input(spec, data.name, data.image_shape)
    inputs = TrainInputs(
        config=replace(spec, backend=BackendConfig(name=backend)),
        data=data,
        weights=network_weights(
            spec.model, data.n_features, data.n_outputs, data.image_shape, spec.seed
        ),
        output_activation=output_activation(spec, data.task),
        record_weights=True,
    )
    check = ParityCheck(inputs, ref if ref is not None else reference(inputs))
    runner = get_backend(backend)
    runner.setup(inputs)
    runner.train(inputs, check.compare)
    return check


def matrix_specs(dtype: str, epochs: int) -> list[tuple[str, Task, Config]]:
    """(label, task, spec) for every task x output form x optimizer x batching."""
    from harness.core.config import DType, OptimizerConfig

    out = []
    for task, data_name in TASK_DATA.items():
        forms = [False] if task is Task.regression else [False, True]
        for from_logits in forms:
            for opt in (OptimizerName.gd, OptimizerName.adam):
                for batch in (None, 32):
                    spec = Config()
                    spec.data.name, spec.data.task = data_name, task
                    spec.model.from_logits = from_logits
                    lr = 0.1 if opt is OptimizerName.gd else 1e-3
                    spec.optimizer = OptimizerConfig(name=opt, lr=lr)
                    spec.train.batch_size, spec.train.epochs = batch, epochs
                    spec.train.dtype, spec.train.threads, spec.train.parity = DType(dtype), 1, True
                    spec.tracking.enabled = False
                    head = (
                        "logits"
                        if from_logits
                        else ("probs" if task is not Task.regression else "linear")
                    )
                    size = "full" if batch is None else f"mb{batch}"
                    label = f"{task.value}-{head}-{opt.value}-{size}"
                    out.append((label, task, spec))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--backends", nargs="+", default=["keras", "lightning"])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--allow-tf32", action="store_true", help="GPU matmuls in TF32")
    args = parser.parse_args(argv)

    print("| dtype | task-head-optimizer-batch | " + " | ".join(
        f"{b} loss rel / param abs" for b in args.backends) + " | tolerance |")
    print("|---|---|" + "---|" * len(args.backends) + "---|")
    failed = 0
    t0 = time.perf_counter()
    for dtype in args.dtype:
        for label, task, spec in matrix_specs(dtype, args.epochs):
            spec.train.device, spec.train.allow_tf32 = Device(args.device), args.allow_tf32
            data = small_dataset(task, spec.seed)
            cells, ref = [], None
            for backend in args.backends:
                check = measure(spec, data, backend, ref)
                ref = check.ref
                failed += not check.passed
                cells.append(
                    f"{check.worst_loss:.1e} / {check.worst_param:.1e}"
                    + ("" if check.passed else " FAIL")
                )
            print(
                f"| {dtype} | {label} | " + " | ".join(cells) + f" | {tolerance(spec):g} |",
                flush=True,
            )
    print(f"\n{failed} failed; {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
