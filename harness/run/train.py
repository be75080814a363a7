"""One run: spec -> data -> shared weights -> backend -> tracked metrics -> result."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable

from harness.core import config as C
from harness.core import data as D
from harness.core.init import network_weights
from harness.core.metrics import task_metrics
from harness.run import hooks as epoch_hooks
from harness.run import numerics, parity, vectorization
from harness.run.identity import (  # noqa: F401  (re-exported: the run's public names)
    NON_RESULT_FIELDS,
    RunResult,
    config_hash,
    cpu_model,
    flatten,
    git_commit,
    prepare,
    provenance_tags,
    to_yaml,
)
from harness.store import RunFailed, tracked_run
from harness.store.datasets import log_datasets

DEFAULT_LR = {C.OptimizerName.adam: 1e-3, C.OptimizerName.gd: 0.1}


def run_name(spec: C.Config, task: C.Task, out: C.Activation) -> str:
    """Say what varies: backend-[data-]hidden-head-optimizer[-lr][-batch][-scale][-f64]-seed.

    The bracketed parts appear only when they differ from the defaults, so the lesson's
    runs keep short names (keras-sigmoid-probs-adam-s0) and no two variants share one.
    """
    if C.Mode(spec.mode) is C.Mode.vectorization:
        return vectorization.run_name(spec)
    head = (
        "logits"
        if spec.model.from_logits
        else ("probs" if task is not C.Task.regression else out.value)
    )
    opt = C.OptimizerName(spec.optimizer.name)
    parts = [spec.backend.name]
    if spec.data.name != "digits_binary":
        parts.append(D.label(spec.data))  # a user file's stem, never `file`
    if spec.data.train_fraction != 1.0:
        parts.append(f"frac{spec.data.train_fraction:g}")
    if spec.model.conv_filters:
        parts.append("conv" + "x".join(str(f) for f in spec.model.conv_filters))
    if task is C.Task.multiclass and D.BUILTIN_TASKS.get(spec.data.name) is C.Task.binary:
        parts.append("2class")  # binary labels as 2 classes (a 2-unit softmax)
    parts += [C.Activation(spec.model.hidden_activation).value, head, opt.value]
    if spec.optimizer.lr != DEFAULT_LR[opt]:
        parts.append(f"lr{spec.optimizer.lr:g}")
    if spec.train.batch_size != 32:
        parts.append("full" if spec.train.batch_size is None else f"b{spec.train.batch_size}")
    if spec.data.input_scale != 1.0:
        parts.append(f"x{spec.data.input_scale:g}")
    if C.DType(spec.train.dtype) is C.DType.float64:
        parts.append("f64")
    return "-".join(parts) + f"-s{spec.seed}"


def _epoch_metrics(task: C.Task, data: D.Dataset, record) -> dict[str, float]:
    s = data.target_scale  # regression trained on y / s: report in the data's own units
    metrics = {"train/loss": record.train_loss * s * s, "val/loss": record.val_loss * s * s}
    for split, y, pred in (
        ("train", data.y_train, record.train_pred),
        ("val", data.y_val, record.val_pred),
    ):
        if s != 1.0:
            y, pred = y * s, pred * s
        for key, value in task_metrics(task, y, pred).items():
            metrics[f"{split}/{key}"] = value
    metrics["time/epoch_s"] = record.epoch_time_s
    metrics["time/step_ms"] = 1000.0 * record.epoch_time_s / record.steps
    return metrics


def _log_model(tracked, trained, example, name: str, log) -> None:
    """tracking.log_model=true: the trained network, saved with its framework's MLflow flavour."""
    if trained.model is None:
        log(f"[harness] {name}: no MLflow model flavour for this backend", file=sys.stderr)
        return
    tracked.log_model(trained.model, trained.model_flavor, example)


def _outside_epochs(
    t_enter: float, t_start: float, t_setup: float, t_end: float,
    stamps: dict[str, float], in_epochs: list[float],
) -> dict[str, float]:
    """What the run spent outside its epochs (training steps and evaluation), and where.

    time/outside_epochs_s counts from entering run() (data preparation included) to the end
    of training; its parts: data and weights (prepare), the backend's setup, starting the
    MLflow run (tracking_start), model build and compile until the first epoch's steps
    (build), the work between epochs (callbacks: metrics, logging), and the framework's
    return after the last epoch (fit_end).
    """
    tracking, first = stamps["tracking"], stamps["first"]
    outside = (t_end - t_enter) - sum(in_epochs)
    parts = {
        "time/prepare_s": t_start - t_enter,
        "time/backend_setup_s": t_setup - t_start,
        "time/tracking_start_s": tracking - t_setup,
        "time/build_s": first - tracking,
        "time/fit_end_s": t_end - stamps["last"],
    }
    parts["time/between_epochs_s"] = outside - sum(parts.values())
    return {"time/outside_epochs_s": outside, **parts}


def run(
    spec: C.Config,
    overrides: list[str] | None = None,
    log=print,
    parent_run_id: str | None = None,
    on_started: Callable[[str, str], None] | None = None,
    on_metrics: Callable[[int, dict[str, float]], None] | None = None,
) -> RunResult:
    """Train one spec on its backend, streaming every epoch to MLflow.

    parent_run_id nests the run under a sweep's parent run; on_started receives the new
    run's id and name as soon as it exists (so a supervising process can end it if this one
    dies); on_metrics(epoch, metrics) sees each epoch once it is recorded (progress, benchmarks).
    """
    if C.Mode(spec.mode) is C.Mode.vectorization:  # times forward propagation, trains nothing
        return vectorization.run(spec, overrides, log, parent_run_id, on_started)
    t_enter = time.perf_counter()  # what a run costs outside its epochs is counted from here
    from backends import get_backend
    from backends.base import TrainInputs

    data, out_act = prepare(spec)
    weights = network_weights(
        spec.model, data.n_features, data.n_outputs, data.image_shape, spec.seed
    )
    inputs = TrainInputs(
        config=spec, data=data, weights=weights, output_activation=out_act,
        record_weights=parity.wanted(spec), keep_model=spec.tracking.log_model,
    )
    name = run_name(spec, data.task, out_act)
    chash = config_hash(spec)
    backend = get_backend(spec.backend.name)
    check = parity.ParityCheck.start(inputs)  # None unless train.parity; trains the reference
    hooks = epoch_hooks.installed()  # called after each epoch is recorded (tests' faults)

    t_start = time.perf_counter()
    env = backend.setup(inputs)
    t_setup = time.perf_counter()
    tags = {
        "task": data.task.value,
        "dataset": data.name,
        **provenance_tags(spec, chash, overrides, env),
    }
    tags.update({k: v for k, v in (("stage", spec.stage), ("arm", spec.arm)) if v})
    params = flatten(C.to_plain(spec))
    params["model.output_activation"] = out_act.value  # the resolved head, not null
    params["data.n_train"], params["data.n_val"] = len(data.x_train), len(data.x_val)
    params["data.n_features"], params["data.n_outputs"] = data.n_features, data.n_outputs
    params["data.digest"] = data.digest
    if data.task is C.Task.regression:
        params["data.target_scale"] = data.target_scale
    params["model.n_params"] = sum(k.size + b.size for k, b in weights)  # conv_vs_dense

    last: dict[str, float] = {}
    epoch_times: list[float] = []
    in_epochs: list[float] = []  # each epoch's training and evaluation: time in epochs
    stamps: dict[str, float] = {}  # when tracking started, the first epoch began, the last ended
    samples = 0

    with tracked_run(
        spec.tracking, name, tags, params, lambda: to_yaml(spec), parent_run_id, on_started
    ) as tracked:
        if tracked is not None:
            log_datasets(tracked, data)  # MLflow's Dataset column: training and validation
        stamps["tracking"] = time.perf_counter()
        diverged: list[str] = []

        def on_epoch(record) -> bool:
            nonlocal samples
            t0 = time.perf_counter()
            metrics = _epoch_metrics(data.task, data, record)
            metrics.update(numerics.epoch_numerics(inputs, record))
            # evaluation: the backend's forward passes and the metrics computed from them
            metrics["time/eval_s"] = record.eval_time_s + time.perf_counter() - t0
            in_epochs.append(record.epoch_time_s + metrics["time/eval_s"])
            # the first epoch began its training steps this long before its evaluation ended
            stamps.setdefault("first", time.perf_counter() - in_epochs[0])
            if check is not None:
                metrics.update(check.compare(record))
            if not (math.isfinite(record.train_loss) and math.isfinite(record.val_loss)):
                diverged.append(
                    f"loss became non-finite at epoch {record.epoch} "
                    f"(train {record.train_loss}, val {record.val_loss}); stopped early"
                )
                return False
            last.clear()
            last.update(metrics)
            last["epoch"] = record.epoch
            epoch_times.append(record.epoch_time_s)
            samples = record.samples
            if tracked is not None:
                tracked.log_metrics(metrics, step=record.epoch)
            if on_metrics is not None:
                on_metrics(record.epoch, metrics)
            for hook in hooks:
                hook(name, record.epoch, metrics)
            stamps["last"] = time.perf_counter()
            return True

        trained = backend.train(inputs, on_epoch)
        t_end = time.perf_counter()
        wall = t_end - t_start
        if diverged:
            if tracked is not None:
                tracked.set_tags({"diverged": "true"})
            raise RunFailed(f"{name}: {diverged[0]}")
        steady = epoch_times[1:] or epoch_times
        summary = {
            "time/total_s": wall,
            "time/first_epoch_s": epoch_times[0],
            "time/steady_epoch_s": sorted(steady)[len(steady) // 2],
            "throughput/samples_per_s": (
                samples * len(steady) / sum(steady) if sum(steady) > 0 else math.nan
            ),
        }
        summary.update(_outside_epochs(t_enter, t_start, t_setup, t_end, stamps, in_epochs))
        summary["time/in_epochs_s"] = sum(in_epochs)
        if check is not None:
            summary.update(check.summary())
            log(f"[harness] {name}: {check.describe()}", file=sys.stderr)
        if tracked is not None:
            # start-up and per-epoch tracking so far (the final flush and end come after)
            summary["time/tracking_s"] = tracked.seconds
            tracked.log_metrics(summary, step=len(epoch_times))
            if check is not None:
                tracked.set_tags(check.tags())
            if spec.tracking.log_model:
                example = data.x_val[:5].astype(spec.train.dtype.value)  # its input signature
                _log_model(tracked, trained, example, name, log)
    t_closed = time.perf_counter()
    final = {k: v for k, v in last.items() if k != "epoch"}
    final.update(summary)
    result = RunResult(name, chash, final, int(last.get("epoch", 0)), wall)
    result.end_s = t_closed - t_end
    shown = ", ".join(
        f"{k}={final[k]:.4f}" for k in ("val/loss", "val/accuracy", "val/r2") if k in final
    )
    log(f"[harness] {name}: {shown} ({result.epochs_run} epochs, {wall:.1f} s)", file=sys.stderr)
    result.span_s = time.perf_counter() - t_enter
    return result
