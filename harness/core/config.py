"""The framework-neutral run spec: dataclasses registered in Hydra's ConfigStore.

The YAML files under ``conf/`` are validated against these classes, so a typo in a key or a
wrong type in an override fails before anything runs. ``validate`` then refuses
combinations that make no sense (before any data is loaded or any run is written).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, get_type_hints

from hydra.core.config_store import ConfigStore


class Task(str, Enum):
    binary = "binary"
    multiclass = "multiclass"
    multilabel = "multilabel"
    regression = "regression"


class Activation(str, Enum):
    sigmoid = "sigmoid"
    relu = "relu"
    linear = "linear"
    softmax = "softmax"


class OptimizerName(str, Enum):
    gd = "gd"
    adam = "adam"


class DType(str, Enum):
    float32 = "float32"
    float64 = "float64"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


class InitScheme(str, Enum):
    glorot_uniform = "glorot_uniform"
    he_uniform = "he_uniform"


class Mode(str, Enum):
    train = "train"
    # time forward propagation instead of training (harness.run.vectorization)
    vectorization = "vectorization"


@dataclass
class BackendConfig:
    name: str = "keras"


@dataclass
class DataConfig:
    name: str = "digits_binary"
    # None: the dataset's own task (a user file must say which task it holds)
    task: Task | None = None
    val_fraction: float = 0.2
    # user datasets: a .csv or .npz file (format in the README)
    path: str | None = None
    # multiplies the inputs after scaling; >1 gives large logits (numerics stress test)
    input_scale: float = 1.0
    # train on this fraction of the training split (stratified, from the seed); validation
    # is untouched (the data_size experiment's learning curves)
    train_fraction: float = 1.0
    # a user file's images: [height, width] or [height, width, channels], pixels stored
    # row by row (channels last); needed by model=conv. Bundled images know their shape.
    image_shape: list[int] | None = None
    # data=blobs (scikit-learn make_blobs): points, centres, spread and generator seed;
    # null: the lab's values (2000, [[-5, 2], [-2, -2], [1, 2], [5, -2]], 1.0, 30)
    n_samples: int | None = None
    centers: list[list[float]] | None = None
    cluster_std: float | None = None
    random_state: int | None = None


@dataclass
class ModelConfig:
    hidden: list[int] = field(default_factory=lambda: [25, 15])
    hidden_activation: Activation = Activation.sigmoid
    # None: sigmoid for binary/multilabel, softmax for multiclass, linear for regression
    output_activation: Activation | None = None
    # as in Keras: the loss receives logits (a linear output) instead of probabilities
    from_logits: bool = False
    init: InitScheme = InitScheme.glorot_uniform
    # filters per convolutional layer before the dense ones (model=conv); empty: dense only.
    # Every conv layer: kernel_size x kernel_size, stride 1, 'valid' padding (no zeros
    # added), the hidden activation, no pooling; its output is flattened (height, width,
    # channels) into the first dense layer.
    conv_filters: list[int] = field(default_factory=list)
    kernel_size: int = 3


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    beta_1: float = 0.9
    beta_2: float = 0.999
    # Keras' default; torch's is 1e-8. Written explicitly into both frameworks.
    epsilon: float = 1e-7


@dataclass
class TrainConfig:
    epochs: int = 100
    # None: full batch (one step per epoch)
    batch_size: int | None = 32
    device: Device = Device.cpu
    dtype: DType = DType.float32
    # probabilities are clipped to [eps, 1 - eps] in cross-entropy (Keras' rule, both backends)
    prob_clip_eps: float = 1e-7
    # TensorFloat-32 matmuls on GPUs that have them; off keeps float32 exact
    allow_tf32: bool = False
    # intra-op threads; None: Keras all cores (its share in parallel sweeps), torch 1
    threads: int | None = None
    # also train the NumPy reference in-process and log parity/* against it (harness.run.parity)
    parity: bool = False


@dataclass
class TrackingConfig:
    # None: $MLFLOW_TRACKING_URI if set, else sqlite under results/
    uri: str | None = None
    # the MLflow experiment of runs without +experiment=NAME (not MLflow's own "Default")
    experiment: str = "harness"
    enabled: bool = True
    # seconds between flushes of buffered metrics to the store
    flush_every_s: float = 1.0
    log_model: bool = False
    # a sweep skips jobs whose config hash already has a FINISHED run; false reruns all
    resume: bool = True
    # a sweep's claim on a job (harness.store.claims) whose heartbeat is older than this is
    # stale, from any host: another sweep takes the job over and marks the old run KILLED
    claim_timeout_s: float = 120.0


@dataclass
class ReportConfig:
    # equivalence margins of the report's verdicts by the metric's last name segment
    # (accuracy, loss, r2, epochs_to_threshold): a number is absolute, "5%" relative to the
    # baseline's mean; a metric left out keeps harness.report.verdicts' default
    margins: dict[str, str] = field(default_factory=dict)


@dataclass
class Config:
    backend: BackendConfig = field(default_factory=BackendConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    seed: int = 0
    # the question an experiment answers (set by conf/experiment/*.yaml)
    question: str = ""
    # train: fit the model (default); vectorization: time its forward propagation
    mode: Mode = Mode.train
    # jobs a sweep runs at once in this process's warm workers (+launcher=parallel sets 2)
    parallel: int = 1
    # how harness.report judges this experiment (not part of a run's identity)
    report: ReportConfig = field(default_factory=ReportConfig)
    # a tuned sweep's stage (tune | eval) and arm, set by its sweeper (harness.sweep.tuned):
    # tagged on the run, not part of what it computes
    stage: str = ""
    arm: str = ""


def register_configs() -> None:
    """Register the schema so every YAML in conf/ is type-checked against it."""
    # one schema at the root types every group merged into it; no per-group schema
    # entries, so they never show up among a group's choices in error messages
    ConfigStore.instance().store(name="config_schema", node=Config)


class ConfigError(ValueError):
    """A combination of options that cannot be trained; raised before anything is written."""


def _unknown_keys(node: Any, schema: type, prefix: str = "") -> list[str]:
    from dataclasses import fields, is_dataclass

    known = {f.name for f in fields(schema)}
    hints = get_type_hints(schema)
    unknown = []
    for key, value in node.items():
        if key not in known:
            unknown.append(f"{prefix}{key}")
        elif isinstance(value, dict) and is_dataclass(hints.get(key)):
            unknown += _unknown_keys(value, hints[key], f"{prefix}{key}.")
    return unknown


def to_spec(cfg: Any) -> Config:
    """A composed DictConfig -> the Config dataclass, refusing keys the schema lacks.

    Hydra's `+key=value` adds keys even to a typed config; they would be silently ignored,
    so they are refused here (e.g. `+train.epoch=3`).
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import InterpolationResolutionError

    unknown = _unknown_keys(OmegaConf.to_container(cfg, resolve=False), Config)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {unknown}; `python -m harness --help` lists the keys"
        )
    try:
        return OmegaConf.to_object(cfg)
    except InterpolationResolutionError as exc:  # e.g. tracking=server without its URI
        msg = str(exc).split("\n")[0]
        if "MLFLOW_TRACKING_URI" in msg:
            uri = "tracking.uri=http://HOST:PORT or MLFLOW_TRACKING_URI"
            msg = f"tracking=server needs the server: {uri}"
        raise ConfigError(msg) from None


DEFAULT_OUTPUT = {
    Task.binary: Activation.sigmoid,
    Task.multilabel: Activation.sigmoid,
    Task.multiclass: Activation.softmax,
    Task.regression: Activation.linear,
}


def output_activation(spec: Config, task: Task) -> Activation:
    """The output layer's activation: the configured one, or the task's default."""
    if spec.model.output_activation is not None:
        return Activation(spec.model.output_activation)
    if spec.model.from_logits and task is not Task.regression:
        return Activation.linear
    return DEFAULT_OUTPUT[task]


def _check_ranges(spec: Config) -> None:
    """Sizes, budgets and rates that are out of range whatever the task."""
    if Activation(spec.model.hidden_activation) is Activation.softmax:
        raise ConfigError(
            "model.hidden_activation=softmax is not a hidden-layer activation; "
            "use sigmoid, relu or linear."
        )
    if any(h <= 0 for h in spec.model.hidden):
        raise ConfigError(f"model.hidden={list(spec.model.hidden)}: layer sizes must be positive.")
    if spec.train.epochs < 1:
        raise ConfigError(f"train.epochs={spec.train.epochs}: must be at least 1.")
    if spec.parallel < 1:
        raise ConfigError(f"parallel={spec.parallel}: a sweep runs at least 1 job at a time.")
    if spec.train.batch_size is not None and spec.train.batch_size < 1:
        raise ConfigError(
            f"train.batch_size={spec.train.batch_size}: must be >= 1, or null for full batch."
        )
    if not 0.0 < spec.data.val_fraction < 1.0:
        raise ConfigError(f"data.val_fraction={spec.data.val_fraction}: must be in (0, 1).")
    if not 0.0 < spec.data.train_fraction <= 1.0:
        raise ConfigError(
            f"data.train_fraction={spec.data.train_fraction}: must be in (0, 1] (the share of "
            "the training split to train on; 1 trains on all of it)."
        )
    if any(f <= 0 for f in spec.model.conv_filters) or spec.model.kernel_size < 1:
        raise ConfigError(
            f"model.conv_filters={list(spec.model.conv_filters)}, model.kernel_size="
            f"{spec.model.kernel_size}: filter counts and the kernel size must be positive."
        )
    if spec.data.input_scale <= 0:
        raise ConfigError(f"data.input_scale={spec.data.input_scale}: must be positive.")
    opt = spec.optimizer
    if opt.lr <= 0:
        raise ConfigError(f"optimizer.lr={opt.lr}: must be positive.")
    if not (0.0 <= opt.beta_1 < 1.0 and 0.0 <= opt.beta_2 < 1.0):
        raise ConfigError(
            f"optimizer.beta_1={opt.beta_1}, optimizer.beta_2={opt.beta_2}: Adam's moment "
            "decay rates must be in [0, 1) (defaults 0.9 and 0.999)."
        )
    if opt.epsilon <= 0:
        default = "Keras' default 1e-7"
        raise ConfigError(f"optimizer.epsilon={opt.epsilon}: must be positive ({default}).")
    if not 0.0 <= spec.train.prob_clip_eps < 0.5:
        raise ConfigError(
            f"train.prob_clip_eps={spec.train.prob_clip_eps}: must be in [0, 0.5) "
            "(Keras' default 1e-7; 0 turns clipping off)."
        )


def _check_regression_head(spec: Config, out: Activation) -> None:
    if spec.model.from_logits:
        raise ConfigError(
            "model.from_logits=true asks for a classification loss (cross-entropy on "
            "logits), but the task is regression (mean squared error); set "
            "model.from_logits=false."
        )
    if out not in (Activation.linear, Activation.relu):
        raise ConfigError(
            f"a {out.value} output on a regression task squashes the prediction into a "
            "probability's range, as for a classification loss; use "
            "model.output_activation=linear (any sign) or relu (non-negative targets)."
        )


def _check_classification_head(spec: Config, task: Task, out: Activation, n_outputs: int) -> None:
    logits = spec.model.from_logits
    if task is Task.multilabel and out is Activation.softmax:
        raise ConfigError(
            "a softmax output on a multilabel task makes the labels compete for one unit of "
            "probability; use model.output_activation=sigmoid (independent labels), or a "
            "linear output with model.from_logits=true."
        )
    if task is Task.multiclass and n_outputs < 2:
        raise ConfigError(
            f"a multiclass task needs one output unit per class, got {n_outputs}; "
            "use data.task=binary (one sigmoid unit) for two classes, or give 2+ classes."
        )
    if logits and out in (Activation.sigmoid, Activation.softmax):
        raise ConfigError(
            f"model.output_activation={out.value} with model.from_logits=true applies the "
            f"{out.value} twice (once in the layer, once in the loss); use "
            "model.output_activation=linear with from_logits=true (the logits form), or "
            "from_logits=false (the probabilities form)."
        )
    if not logits and out in (Activation.linear, Activation.relu):
        raise ConfigError(
            f"a {out.value} output with model.from_logits=false feeds unbounded values to a "
            "cross-entropy that expects probabilities; set model.from_logits=true (the "
            "logits form) or use a sigmoid/softmax output."
        )
    if out is Activation.relu:
        raise ConfigError(
            "a relu output clips the logits at 0, so no probability can fall below 0.5 "
            "(sigmoid) or be told apart (softmax); a classification head uses "
            "model.output_activation=linear with from_logits=true, or null (the task's "
            "default) with from_logits=false."
        )
    if task is Task.binary and out is Activation.softmax:
        raise ConfigError(
            "a softmax over a single output unit is always 1; a binary task uses "
            "model.output_activation=sigmoid (or linear with from_logits=true), or "
            "data.task=multiclass to encode its labels as 2 classes for a 2-unit softmax."
        )
    if task is Task.multiclass and out is Activation.sigmoid:
        raise ConfigError(
            "a sigmoid output on a multiclass task does not give a distribution over "
            "classes; use model.output_activation=softmax (or linear with from_logits=true)."
        )


def validate(spec: Config, task: Task, n_outputs: int) -> None:
    """Refuse combinations that make no sense, saying why and what to use instead.

    Called before any data file is trusted and before anything is written to MLflow.
    """
    _check_ranges(spec)
    out = output_activation(spec, task)
    if task is Task.regression:
        _check_regression_head(spec, out)
    else:
        _check_classification_head(spec, task, out, n_outputs)


def conv_output_shape(
    image_shape: tuple[int, ...], filters: list[int], kernel_size: int
) -> tuple[int, int, int]:
    """(height, width, channels) after the conv layers: each 'valid' k x k layer, stride 1,
    takes k - 1 rows and columns off."""
    h, w, c = image_shape
    for f in filters:
        h, w, c = h - kernel_size + 1, w - kernel_size + 1, f
    return h, w, c


def validate_input(spec: Config, data_name: str, image_shape: tuple[int, ...] | None) -> None:
    """Refuse a conv model on data that is not an image, or a kernel larger than its image."""
    filters = list(spec.model.conv_filters)
    if not filters:
        return
    if Mode(spec.mode) is Mode.vectorization:
        raise ConfigError(
            "mode=vectorization times the lesson's dense layers (a loop over neurons vs one "
            "matrix product); it has no conv layers: use a dense model (model=mlp)."
        )
    if image_shape is None:
        raise ConfigError(
            f"model=conv needs images, but data.name={data_name} is a table of features "
            "with no image shape; use data=digits, digits_binary or digit_pairs, or "
            "data=file with data.image_shape=[height, width], or a dense model (model=mlp)."
        )
    k = spec.model.kernel_size
    h, w, _ = image_shape
    for layer in range(len(filters)):
        if k > h or k > w:
            raise ConfigError(
                f"model.kernel_size={k} is larger than the {h}x{w} input of conv layer "
                f"{layer + 1} (image {image_shape[0]}x{image_shape[1]}, 'valid' padding "
                f"shrinks it by {k - 1} per layer); use a smaller kernel or fewer conv layers."
            )
        h, w = h - k + 1, w - k + 1


def to_plain(obj: Any) -> Any:
    """Enums -> their values, dataclasses -> dicts (for params, hashes and YAML)."""
    from dataclasses import asdict, is_dataclass

    if is_dataclass(obj):
        return to_plain(asdict(obj))
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, Enum):
        return obj.value
    return obj
