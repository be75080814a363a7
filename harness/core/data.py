"""Datasets as NumPy arrays, and the batch order every backend consumes.

Nothing is downloaded: the digits and diabetes sets ship inside scikit-learn, the roasting
set is generated from a fixed seed, and user files are read from the path given.
Targets are shaped per task so every backend and the metrics read them the same way:
binary (n, 1) of 0/1; multiclass (n,) of class ids; multilabel (n, k) of 0/1;
regression (n, 1) of floats.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.core.config import ConfigError, DataConfig, Task
from harness.core.lesson_data import as_two_classes, load_blobs, subsample_train


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
    # (height, width, channels) of each row read as an image, row by row; None: not images
    image_shape: tuple[int, int, int] | None = None

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])


# Each loader returns (x, y, task, description) for the whole set; a few build their own
# train/validation split (returned as a dict) where splitting after construction would leak.
Loader = Callable[[DataConfig, int], dict]


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
    from sklearn.model_selection import train_test_split

    x_tr, x_va, y_tr, y_va = train_test_split(
        x, y, test_size=cfg.val_fraction, random_state=seed, stratify=y if stratify else None
    )
    return {"x_train": x_tr, "y_train": y_tr, "x_val": x_va, "y_val": y_va}


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


USER_FILE_FORMAT = (
    "a .csv with a header row: feature columns (any names) and the target column 'y' "
    "(or y0, y1, ... for a multilabel task); or a .npz with arrays 'x' (n, features) and 'y'"
)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise ConfigError(
                    f"{path}: an .npz dataset needs arrays 'x' and 'y', has {f.files}; "
                    "save it with np.savez(path, x=features, y=targets)"
                )
            x, y = f["x"], f["y"]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ConfigError(f"{path}: not a readable .npz file ({exc}); expected {USER_FILE_FORMAT}") from exc
    if not np.issubdtype(x.dtype, np.number):
        raise ConfigError(f"{path}: 'x' must be numeric, got dtype {x.dtype}")
    return x.astype(np.float64), y


def _read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    try:
        frame = pd.read_csv(path)
    except Exception as exc:  # pandas raises several parser errors (empty, bad quoting, ...)
        raise ConfigError(f"{path}: not a readable CSV ({exc}); expected {USER_FILE_FORMAT}") from exc
    columns = [str(c) for c in frame.columns]
    ycols = [c for c in columns if c == "y" or (c.startswith("y") and c[1:].isdigit())]
    if not ycols:
        raise ConfigError(
            f"{path}: no target column among {columns[:10]}; name it 'y' "
            "(or y0, y1, ... for multilabel)"
        )
    xcols = [c for c in columns if c not in ycols]
    if not xcols:
        raise ConfigError(f"{path}: no feature columns, only targets {ycols}")
    try:
        x = frame[xcols].to_numpy(dtype=np.float64)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: feature columns must be numeric ({exc})") from exc
    return x, frame[ycols].to_numpy()


def _read_user_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if path.suffix == ".npz":
        return _read_npz(path)
    if path.suffix == ".csv":
        return _read_csv(path)
    raise ConfigError(f"{path}: unknown file type {path.suffix!r}; use .csv or .npz ({USER_FILE_FORMAT})")


def _label_values(y: np.ndarray) -> str:
    values = np.unique(y)
    shown = ", ".join(f"{v:g}" for v in values[:8])
    return shown + (f", ... ({len(values)} values)" if len(values) > 8 else "")


def _check_labels(y: np.ndarray, task: Task, path: Path) -> np.ndarray:
    """Targets shaped for the task, or a ConfigError saying which task they do fit."""
    y = np.asarray(y)
    if y.dtype == bool:
        y = y.astype(np.float64)
    if not np.issubdtype(y.dtype, np.number):
        raise ConfigError(
            f"{path}: targets must be numbers, got {y.dtype} (e.g. {y.reshape(-1)[0]!r}); "
            "encode classes as 0..k-1"
        )
    y = y.astype(np.float64)
    if not np.all(np.isfinite(y)):
        raise ConfigError(f"{path}: targets contain NaN or infinite values (empty cells?)")
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if task is Task.multilabel:
        if y.ndim != 2 or y.shape[1] < 2:
            raise ConfigError(
                f"{path}: a multilabel task needs 2+ target columns of 0/1 (y0, y1, ...), "
                f"got {y.shape[1:] or 'one'}; use data.task=binary for a single 0/1 column"
            )
        if not np.isin(y, [0, 1]).all():
            raise ConfigError(
                f"{path}: a multilabel task needs targets 0/1, found {_label_values(y)}"
            )
        return y
    if y.ndim != 2 or y.shape[1] != 1:
        raise ConfigError(
            f"{path}: task {task.value} needs one target column 'y', got shape {y.shape[1:]}; "
            "use data.task=multilabel for several 0/1 columns (class ids go in one column)"
        )
    if task is Task.binary:
        if not np.isin(y, [0, 1]).all():
            raise ConfigError(
                f"{path}: a binary task needs labels 0/1, found {_label_values(y)}; use "
                "data.task=multiclass for class ids 0..k-1, or regression for real values"
            )
        return y
    y = y.reshape(-1)
    if task is Task.multiclass:
        if not np.all(y == np.round(y)) or y.min() < 0:
            raise ConfigError(
                f"{path}: a multiclass task needs integer class ids 0..k-1, found "
                f"{_label_values(y)}; use data.task=regression for real-valued targets"
            )
        if len(np.unique(y)) < 2:
            raise ConfigError(
                f"{path}: a multiclass task needs at least 2 classes, found only "
                f"{_label_values(y)}"
            )
        return y.astype(np.int64)
    return y.reshape(-1, 1)


def load_user_file(cfg: DataConfig, seed: int) -> dict:
    """A .csv or .npz file (format: USER_FILE_FORMAT), checked against data.task."""
    if not cfg.path:
        raise ConfigError("data=file needs data.path=/path/to/data.csv (or .npz)")
    if cfg.task is None:
        raise ConfigError("data=file needs data.task=binary|multiclass|multilabel|regression")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"data.path={cfg.path}: no such file (relative paths start from {Path.cwd()})"
        )
    x, y = _read_user_file(path)
    if x.ndim != 2 or x.shape[1] < 1 or len(x) != len(y) or len(x) < 4:
        raise ConfigError(
            f"{path}: need x of shape (n >= 4, features) and n targets, got x {x.shape} "
            f"and y {np.shape(y)}"
        )
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{path}: features contain NaN or infinite values (empty cells?)")
    task = Task(cfg.task)
    y = _check_labels(y, task, path)
    stratify = task in (Task.binary, Task.multiclass)
    try:
        split = _split(x, y, cfg, seed, stratify)
    except ValueError as exc:  # e.g. a class with one example cannot be stratified
        raise ConfigError(
            f"{path}: cannot split {len(x)} rows into train/validation with "
            f"data.val_fraction={cfg.val_fraction} ({exc}); give each class 2+ examples"
        ) from exc
    return {**split, "task": task, "description": f"user file {path}", "standardize": True}


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


def load(cfg: DataConfig, seed: int) -> Dataset:
    """Load, split (deterministically from the seed) and scale a dataset."""
    if cfg.name not in LOADERS:
        raise ConfigError(f"data.name={cfg.name!r} is unknown; choose from {sorted(LOADERS)}")
    raw = LOADERS[cfg.name](cfg, seed)
    task = Task(raw["task"])
    if task is Task.binary and cfg.task is not None and Task(cfg.task) is Task.multiclass:
        raw, task = as_two_classes(raw), Task.multiclass  # a 2-unit softmax on 0/1 labels
    if cfg.task is not None and Task(cfg.task) is not task:
        wanted = Task(cfg.task)
        others = [n for n, t in BUILTIN_TASKS.items() if t is wanted]
        raise ConfigError(
            f"data.task={wanted.value} does not match dataset {cfg.name!r}, which is a "
            f"{task.value} task; drop data.task, or use data={'|'.join(others)} for a "
            f"{wanted.value} task (or data=file with your own labels)"
        )
    raw = subsample_train(raw, cfg.train_fraction, seed, task)
    x_tr, x_va = raw["x_train"], raw["x_val"]
    if raw.get("standardize"):
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0)
        std[std == 0] = 1.0
        x_tr, x_va = (x_tr - mean) / std, (x_va - mean) / std
    y_tr = raw["y_train"]
    if task is Task.multiclass:
        n_out = int(max(y_tr.max(), raw["y_val"].max())) + 1
    else:
        n_out = int(y_tr.shape[1])
    return Dataset(
        name=cfg.name,
        task=task,
        x_train=np.ascontiguousarray(x_tr * cfg.input_scale),
        y_train=np.ascontiguousarray(y_tr),
        x_val=np.ascontiguousarray(x_va * cfg.input_scale),
        y_val=np.ascontiguousarray(raw["y_val"]),
        n_outputs=n_out,
        description=raw["description"],
        image_shape=_image_shape(cfg, raw, x_tr.shape[1]),
    )


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
