"""Datasets as NumPy arrays, their identity (digests), and the batch order every backend consumes.

Nothing is downloaded: the digits and diabetes sets ship inside scikit-learn, the roasting
set is generated from a fixed seed, and user files are read from the path given
(harness.core.datafile). Targets are shaped per task so every backend and the metrics read
them the same way: binary (n, 1) of 0/1; multiclass (n,) of class ids; multilabel (n, k)
of 0/1; regression (n, 1) of floats.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.core import datafile, digest
from harness.core.config import ConfigError, DataConfig, Task
from harness.core.lesson_data import as_two_classes, blobs_settings, load_blobs, subsample_train

USER_FILE_FORMAT = datafile.USER_FILE_FORMAT


@dataclass
class Dataset:
    name: str
    task: Task
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    n_outputs: int
    description: str
    label: str = ""  # what runs and MLflow call it: the set's name, or a user file's stem
    source: str = ""  # a user file's absolute path, or the bundled loader
    train_digest: str = ""  # harness.core.digest.of_rows of each split
    val_digest: str = ""
    # regression targets are trained divided by this power of ten (see target_scale);
    # losses and metrics are reported multiplied back, in the file's own units
    target_scale: float = 1.0
    # (height, width, channels) of each row read as an image, row by row; None: not images
    image_shape: tuple[int, int, int] | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def digest(self) -> str:
        """The data this run sees, both splits: part of the config hash."""
        return digest.of_split(self.train_digest, self.val_digest)


# Each loader returns a dict: the split arrays, the rows each split holds ("train_rows",
# "val_rows": indices into the source), "task", "description", and optionally "standardize".
# A few build their own split where splitting after construction would leak.
Loader = Callable[[DataConfig, int], dict]

# What generates each bundled set: its digest covers these, so a change to a loader must
# change its entry here (bump "version").
BUILTIN_PARAMS: dict[str, dict] = {
    "digits_binary": {"source": "sklearn.datasets.load_digits", "classes": [0, 1], "x": "/16"},
    "digits": {"source": "sklearn.datasets.load_digits", "x": "/16"},
    "digit_pairs": {
        "source": "sklearn.datasets.load_digits", "x": "/16", "pairs_per_image": [4, 1],
        "pair_rng": "[seed, 2]",
    },
    "roasting": {"source": "harness.core.data.roasting_raw", "n": 200, "seed": 2},
    "diabetes": {"source": "sklearn.datasets.load_diabetes(scaled=False)", "y": "/100"},
}
SPLIT_VERSION = {"version": 1, "split": "sklearn train_test_split(test_size, seed)"}


@functools.lru_cache(maxsize=1)
def _all_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn parses its gzipped CSV on every call (~30 ms): once per process here."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, y = digits.data / 16.0, digits.target
    x.flags.writeable = y.flags.writeable = False  # shared: nobody may modify it in place
    return x, y


def _digits(classes: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    x, y = _all_digits()
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], y[keep]
    return x, y


def _split(x: np.ndarray, y: np.ndarray, cfg: DataConfig, seed: int, stratify: bool) -> dict:
    """Split the rows (as scikit-learn splits arrays), keeping which rows went where."""
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(
        np.arange(len(x)), test_size=cfg.val_fraction, random_state=seed,
        stratify=y if stratify else None,
    )
    return {
        "x_train": x[tr], "y_train": y[tr], "x_val": x[va], "y_val": y[va],
        "train_rows": tr, "val_rows": va,
    }


def load_digits_binary(cfg: DataConfig, seed: int) -> dict:
    x, y = _digits([0, 1])
    return {
        **_split(x, y.reshape(-1, 1).astype(np.float64), cfg, seed, stratify=True),
        "task": Task.binary,
        "description": "scikit-learn digits 0 vs 1 (8x8 pixels / 16)",
        "image_shape": (8, 8, 1),
    }


def load_digits_multiclass(cfg: DataConfig, seed: int) -> dict:
    x, y = _digits(None)
    return {
        **_split(x, y.astype(np.int64), cfg, seed, stratify=True),
        "task": Task.multiclass,
        "description": "scikit-learn digits 0-9 (8x8 pixels / 16)",
        "image_shape": (8, 8, 1),
    }


def load_digit_pairs(cfg: DataConfig, seed: int) -> dict:
    """Two real digit images side by side (8x16), labelled with the set of digits present.

    The 1797 images are split into train/validation images first (from the seed), then
    pairs are drawn within each side, so no image appears in both. A pair of equal digits
    has one label set; otherwise two. 4 pairs per training image, 1 per validation image.
    """
    x, y = _digits(None)
    images = _split(x, y, cfg, seed, stratify=True)
    rng = np.random.default_rng([seed, 2])
    out: dict = {}
    for side, pairs_per_image in (("train", 4), ("val", 1)):
        xs, ys = images[f"x_{side}"], images[f"y_{side}"]
        n = len(xs) * pairs_per_image
        a, b = rng.integers(0, len(xs), size=n), rng.integers(0, len(xs), size=n)
        left, right = xs[a].reshape(n, 8, 8), xs[b].reshape(n, 8, 8)
        out[f"x_{side}"] = np.concatenate([left, right], axis=2).reshape(n, 128)
        hot = np.zeros((n, 10))
        hot[np.arange(n), ys[a]] = 1.0
        hot[np.arange(n), ys[b]] = 1.0
        out[f"y_{side}"] = hot
        rows = images[f"{side}_rows"]
        out[f"{side}_rows"] = np.stack([rows[a], rows[b]], axis=1)  # the two images of a pair
    out["task"] = Task.multilabel
    out["description"] = "pairs of digits side by side (8x16), multi-hot set of digits present"
    out["image_shape"] = (8, 16, 1)
    return out


def roasting_raw(n: int = 200, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """The lesson's coffee-roasting data: good only inside a temperature/duration band."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2))
    x[:, 1] = x[:, 1] * 4 + 11.5  # duration, minutes: 12-15 is best
    x[:, 0] = x[:, 0] * (285 - 150) + 150  # temperature, Celsius: 175-260 is best
    t, d = x[:, 0], x[:, 1]
    line = -3 / (260 - 175) * t + 21  # hotter roasts must be shorter
    y = ((t > 175) & (t < 260) & (d > 12) & (d < 15) & (d <= line)).astype(np.float64)
    return x, y.reshape(-1, 1)


def load_roasting(cfg: DataConfig, seed: int) -> dict:
    x, y = roasting_raw()
    return {
        **_split(x, y, cfg, seed, stratify=True),
        "task": Task.binary,
        "description": "the lesson's coffee roasting (temperature, duration), 200 points",
        "standardize": True,
    }


def load_diabetes(cfg: DataConfig, seed: int) -> dict:
    from sklearn.datasets import load_diabetes as sk_diabetes

    x, y = sk_diabetes(return_X_y=True, scaled=False)
    return {
        # disease progression (25-346) / 100: non-negative, order 1
        **_split(x, (y / 100.0).reshape(-1, 1), cfg, seed, stratify=False),
        "task": Task.regression,
        "description": "scikit-learn diabetes: 10 features, disease progression / 100 (>= 0)",
        "standardize": True,
    }


def load_user_file(cfg: DataConfig, seed: int) -> dict:
    """A .csv or .npz file (format: USER_FILE_FORMAT), checked against data.task."""
    user = datafile.read(cfg)
    task = Task(cfg.task)
    stratify = task in (Task.binary, Task.multiclass)
    try:
        split = _split(user.x, user.y, cfg, seed, stratify)
    except ValueError as exc:  # e.g. a class with one example cannot be stratified
        raise ConfigError(
            f"{user.path}: cannot split {len(user.x)} rows into train/validation with "
            f"data.val_fraction={cfg.val_fraction} ({exc}); give each class 2+ examples"
        ) from exc
    return {
        **split, "task": task, "description": f"user file {user.path}", "standardize": True,
        "source": str(user.path.resolve()), "source_digest": user.digest,
        "label": label(cfg),
    }


# the task each bundled dataset holds (a user file's task comes from data.task)
BUILTIN_TASKS: dict[str, Task] = {
    "digits_binary": Task.binary,
    "digits": Task.multiclass,
    "digit_pairs": Task.multilabel,
    "roasting": Task.binary,
    "diabetes": Task.regression,
    "blobs": Task.multiclass,
}

LOADERS: dict[str, Loader] = {
    "digits_binary": load_digits_binary,
    "digits": load_digits_multiclass,
    "digit_pairs": load_digit_pairs,
    "roasting": load_roasting,
    "diabetes": load_diabetes,
    "blobs": load_blobs,
    "file": load_user_file,
}


def target_scale(y_train: np.ndarray) -> float:
    """The power of ten regression targets are trained divided by: 1 unless the training
    split's largest |y| is 10 or more, then the one that brings it into [1, 10).

    A network that starts near 0 with the default learning rate does not reach targets in
    the hundreds (raw diabetes, 25-346: validation R^2 of -3.8); y / 100 does (as the bundled
    data=diabetes). A power of ten keeps the sign (a relu head stays valid) and reads plainly.
    """
    top = float(np.max(np.abs(y_train))) if y_train.size else 0.0
    return 10.0 ** math.floor(math.log10(top)) if top >= 10 else 1.0


def _check_task(cfg: DataConfig, task: Task) -> None:
    if cfg.task is not None and Task(cfg.task) is not task:
        wanted = Task(cfg.task)
        others = [n for n, t in BUILTIN_TASKS.items() if t is wanted]
        raise ConfigError(
            f"data.task={wanted.value} does not match dataset {cfg.name!r}, which is a "
            f"{task.value} task; drop data.task, or use data={'|'.join(others)} for a "
            f"{wanted.value} task (or data=file with your own labels)"
        )


def label(cfg: DataConfig) -> str:
    """The data's name in run names and MLflow: a user file's stem, else the set's name."""
    if cfg.name == "file" and cfg.path:
        return datafile.stem(Path(cfg.path))
    return cfg.name


# (source digest, task, val_fraction, train_fraction, seed) -> Dataset.digest: the config hash
# asks for the digest of data the plan has just loaded, without loading it again
_DIGESTS: dict[tuple, str] = {}


def _source_digest(cfg: DataConfig) -> str:
    if cfg.name == "file":
        return digest.of_bytes(datafile.resolve(cfg).read_bytes())
    if cfg.name == "blobs":  # generated from the config's centres, spread, size and state
        return digest.of_params(cfg.name, {**blobs_settings(cfg), **SPLIT_VERSION})
    return digest.of_params(cfg.name, {**BUILTIN_PARAMS[cfg.name], **SPLIT_VERSION})


def _key(cfg: DataConfig, source_digest: str, seed: int) -> tuple:
    task = None if cfg.task is None else Task(cfg.task).value
    return (source_digest, task, cfg.val_fraction, cfg.train_fraction, seed)


def load(cfg: DataConfig, seed: int) -> Dataset:
    """Load, split (deterministically from the seed) and scale a dataset."""
    if cfg.name not in LOADERS:
        raise ConfigError(f"data.name={cfg.name!r} is unknown; choose from {sorted(LOADERS)}")
    raw = LOADERS[cfg.name](cfg, seed)
    task = Task(raw["task"])
    if task is Task.binary and cfg.task is not None and Task(cfg.task) is Task.multiclass:
        raw, task = as_two_classes(raw), Task.multiclass  # a 2-unit softmax on 0/1 labels
    _check_task(cfg, task)
    raw = subsample_train(raw, cfg.train_fraction, seed, task)
    x_tr, x_va = raw["x_train"], raw["x_val"]
    if raw.get("standardize"):
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
        std[std == 0] = 1.0
        x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std
    y_tr, y_va = raw["y_train"], raw["y_val"]
    scale = target_scale(y_tr) if task is Task.regression else 1.0
    if scale != 1.0:
        y_tr, y_va = y_tr / scale, y_va / scale
    if task is Task.multiclass:
        n_out = int(max(y_tr.max(), y_va.max())) + 1
    else:
        n_out = int(y_tr.shape[1])
    source_digest = raw.get("source_digest") or _source_digest(cfg)
    data = Dataset(
        name=cfg.name,
        task=task,
        x_train=np.ascontiguousarray(x_tr * cfg.input_scale),
        y_train=np.ascontiguousarray(y_tr),
        x_val=np.ascontiguousarray(x_va * cfg.input_scale),
        y_val=np.ascontiguousarray(y_va),
        n_outputs=n_out,
        description=raw["description"],
        label=raw.get("label", cfg.name),
        source=raw.get("source", BUILTIN_PARAMS.get(cfg.name, {}).get("source", cfg.name)),
        train_digest=digest.of_rows(source_digest, raw["train_rows"]),
        val_digest=digest.of_rows(source_digest, raw["val_rows"]),
        target_scale=scale,
        image_shape=_image_shape(cfg, raw, x_tr.shape[1]),
    )
    _DIGESTS[_key(cfg, source_digest, seed)] = data.digest
    return data


def data_digest(cfg: DataConfig, seed: int) -> str:
    """Dataset.digest of what load(cfg, seed) gives; reads a user file's bytes to know it."""
    if cfg.name not in LOADERS:
        raise ConfigError(f"data.name={cfg.name!r} is unknown; choose from {sorted(LOADERS)}")
    key = _key(cfg, _source_digest(cfg), seed)
    if key not in _DIGESTS:
        load(cfg, seed)
    return _DIGESTS[key]


def _image_shape(cfg: DataConfig, raw: dict, n_features: int) -> tuple[int, int, int] | None:
    """The loader's image shape, or a user file's data.image_shape checked against its width."""
    if cfg.image_shape is None:
        return raw.get("image_shape")
    shape = [int(d) for d in cfg.image_shape]
    if len(shape) == 2:
        shape.append(1)
    if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) != n_features:
        raise ConfigError(
            f"data.image_shape={list(cfg.image_shape)} does not fit {n_features} features per "
            "row; give [height, width] or [height, width, channels] with height x width x "
            "channels = the number of feature columns"
        )
    return (shape[0], shape[1], shape[2])


def batch_indices(n: int, batch_size: int | None, epoch: int, seed: int) -> list[np.ndarray]:
    """The batches of one epoch, identical for every backend.

    Mini-batches come from a permutation drawn from (seed, epoch), so the order is the
    harness's, never a framework's; full batch (batch_size None) keeps the data order.
    The last batch may be smaller, as in Keras `fit` and a torch DataLoader.
    """
    if batch_size is None or batch_size >= n:
        return [np.arange(n)]
    perm = np.random.default_rng([seed, 1, epoch]).permutation(n)
    return [perm[i : i + batch_size] for i in range(0, n, batch_size)]
