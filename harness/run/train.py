"""One run: spec -> data -> shared weights -> backend -> tracked metrics -> result."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from harness.core import config as C
from harness.core import data as D
from harness.run import numerics
from harness.run import parity
from harness.run import vectorization
from harness.core.init import initial_weights, layer_sizes
from harness.core.metrics import task_metrics
from harness.store.tracking import RunFailed, tracked_run

# Fields that do not change what is computed: excluded from the config hash.
NON_RESULT_FIELDS = ("tracking", "question", "parallel", "stage", "arm")


@dataclass
class RunResult:
    run_name: str
    config_hash: str
    final: dict[str, float]  # last epoch's metrics, keyed as in MLflow
    epochs_run: int
    wall_s: float

    @property
    def objective(self) -> float:
        """The scalar a Hydra sweeper would minimise: the final validation loss."""
        return self.final.get("val/loss", math.nan)


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def config_hash(spec: C.Config) -> str:
    """Hash of everything that changes results (seed included, tracking excluded)."""
    plain = {k: v for k, v in C.to_plain(spec).items() if k not in NON_RESULT_FIELDS}
    blob = json.dumps(plain, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


DEFAULT_LR = {C.OptimizerName.adam: 1e-3, C.OptimizerName.gd: 0.1}


def run_name(spec: C.Config, task: C.Task, out: C.Activation) -> str:
    """Say what varies: backend-[data-]hidden-head-optimizer[-lr][-batch][-scale][-f64]-seed.

    The bracketed parts appear only when they differ from the defaults, so the lesson's
    runs keep short names (keras-sigmoid-probs-adam-s0) and no two variants share one.
    """
    if C.Mode(spec.mode) is C.Mode.vectorization:
        return vectorization.run_name(spec)
    head = "logits" if spec.model.from_logits else ("probs" if task is not C.Task.regression else out.value)
    opt = C.OptimizerName(spec.optimizer.name)
    parts = [spec.backend.name]
    if spec.data.name != "digits_binary":
        parts.append(spec.data.name)
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


@functools.lru_cache(maxsize=1)
def git_commit() -> str:
    """HEAD (with -dirty), once per process: two git calls per run add up over a sweep."""
    from harness.core.paths import PROJECT_ROOT as root
    try:
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (sha + ("-dirty" if dirty else "")) if sha else "unknown"


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def provenance_tags(
    spec: C.Config, chash: str, overrides: list[str] | None, env: dict[str, str]
) -> dict[str, str]:
    """What every run records about where it came from: one place for every kind of run."""
    return {
        "backend": spec.backend.name,
        "config_hash": chash,
        "git_commit": git_commit(),
        "hydra_overrides": " ".join(overrides or []),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "command": " ".join(["python -m harness", *(overrides or [])]),
        **env,
    }


def _to_yaml(spec: C.Config) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(OmegaConf.create(C.to_plain(spec)))


def _epoch_metrics(task: C.Task, data: D.Dataset, record) -> dict[str, float]:
    metrics = {"train/loss": record.train_loss, "val/loss": record.val_loss}
    for split, y, pred in (("train", data.y_train, record.train_pred), ("val", data.y_val, record.val_pred)):
        for key, value in task_metrics(task, y, pred).items():
            metrics[f"{split}/{key}"] = value
    metrics["time/epoch_s"] = record.epoch_time_s
    metrics["time/step_ms"] = 1000.0 * record.epoch_time_s / record.steps
    return metrics


def prepare(spec: C.Config) -> tuple[D.Dataset, C.Activation]:
    """Load the data and validate the spec against its task; raises ConfigError."""
    if spec.data.task is not None:
        # a data.task that contradicts the model is refused before any file is read
        C.validate(spec, C.Task(spec.data.task), n_outputs=2)
    data = D.load(spec.data, spec.seed)
    C.validate(spec, data.task, data.n_outputs)
    return data, C.output_activation(spec, data.task)


def _injected_fault(name: str, epoch: int) -> str | None:
    """Test aid: HARNESS_FAULTS="run-name@epoch=raise|kill;..." breaks a chosen run on purpose.

    Lets the sweep tests crash one job (an exception, or SIGKILL as from the OOM killer or
    a segfault in a framework) in a real sweep without touching any other job.
    """
    for item in filter(None, os.environ.get("HARNESS_FAULTS", "").split(";")):
        target, _, action = item.partition("=")
        run, _, at = target.partition("@")
        if run == name and int(at or 1) == epoch:
            return action
    return None


def _log_model(tracked, history, example, name: str, log) -> None:
    """tracking.log_model=true: the trained network, saved with its framework's MLflow flavour."""
    if history.model is None:
        log(f"[harness] {name}: no MLflow model flavour for this backend", file=sys.stderr)
        return
    tracked.log_model(history.model, history.model_flavor, example)


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
    from backends import get_backend
    from backends.base import TrainInputs

    data, out_act = prepare(spec)
    weights = initial_weights(
        layer_sizes(data.n_features, list(spec.model.hidden), data.n_outputs), spec.seed, spec.model.init
    )
    inputs = TrainInputs(
        spec=spec, data=data, weights=weights, output_activation=out_act,
        record_weights=parity.wanted(spec),
    )
    name = run_name(spec, data.task, out_act)
    chash = config_hash(spec)
    backend = get_backend(spec.backend.name)
    check = parity.ParityCheck.start(inputs)  # None unless train.parity; trains the reference

    t_start = time.perf_counter()
    env = backend.setup(inputs)
    tags = {"task": data.task.value, "dataset": data.name, **provenance_tags(spec, chash, overrides, env)}
    tags.update({k: v for k, v in (("stage", spec.stage), ("arm", spec.arm)) if v})
    params = flatten(C.to_plain(spec))
    params["model.output_activation"] = out_act.value  # the resolved head, not null
    params["data.n_train"], params["data.n_val"] = len(data.x_train), len(data.x_val)
    params["data.n_features"], params["data.n_outputs"] = data.n_features, data.n_outputs

    last: dict[str, float] = {}
    epoch_times: list[float] = []
    samples = 0

    with tracked_run(
        spec.tracking, name, tags, params, _to_yaml(spec), parent_run_id, on_started
    ) as tracked:
        diverged: list[str] = []

        def on_epoch(record) -> bool:
            nonlocal samples
            t0 = time.perf_counter()
            metrics = _epoch_metrics(data.task, data, record)
            metrics.update(numerics.epoch_numerics(inputs, record))
            # evaluation: the backend's forward passes and the metrics computed from them
            metrics["time/eval_s"] = record.eval_time_s + time.perf_counter() - t0
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
            fault = _injected_fault(name, record.epoch)
            if fault == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            elif fault == "raise":
                raise RuntimeError(f"fault injected by HARNESS_FAULTS at epoch {record.epoch}")
            return True

        history = backend.train(inputs, on_epoch)
        wall = time.perf_counter() - t_start
        if diverged:
            if tracked is not None:
                tracked.set_tags({"diverged": "true"})
            raise RunFailed(f"{name}: {diverged[0]}")
        steady = epoch_times[1:] or epoch_times
        summary = {
            "time/total_s": wall,
            "time/first_epoch_s": epoch_times[0],
            "time/steady_epoch_s": sorted(steady)[len(steady) // 2],
            "throughput/samples_per_s": samples * len(steady) / sum(steady) if sum(steady) > 0 else math.nan,
        }
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
                _log_model(tracked, history, example, name, log)
    final = {k: v for k, v in last.items() if k != "epoch"}
    final.update(summary)
    result = RunResult(name, chash, final, int(last.get("epoch", 0)), wall)
    shown = ", ".join(f"{k}={final[k]:.4f}" for k in ("val/loss", "val/accuracy", "val/r2") if k in final)
    log(f"[harness] {name}: {shown} ({result.epochs_run} epochs, {wall:.1f} s)", file=sys.stderr)
    return result
