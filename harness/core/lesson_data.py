"""The course labs' data and the data-size options: make_blobs, a share of the training
split, and binary labels encoded as 2 classes (for a 2-unit softmax).

Kept apart from harness.core.data, which owns the bundled sets, user files and loading.
"""

from __future__ import annotations

import numpy as np

from harness.core.config import ConfigError, DataConfig, Task

# the softmax and multiclass labs' make_blobs settings
LAB_CENTERS = [[-5.0, 2.0], [-2.0, -2.0], [1.0, 2.0], [5.0, -2.0]]
LAB_N_SAMPLES = 2000
LAB_CLUSTER_STD = 1.0
LAB_RANDOM_STATE = 30


def blobs_settings(cfg: DataConfig) -> dict:
    """make_blobs' arguments: the config's, the lab's where it left them null."""
    return {
        "n_samples": LAB_N_SAMPLES if cfg.n_samples is None else int(cfg.n_samples),
        "centers": [list(map(float, c)) for c in (cfg.centers or LAB_CENTERS)],
        "cluster_std": LAB_CLUSTER_STD if cfg.cluster_std is None else float(cfg.cluster_std),
        "random_state": LAB_RANDOM_STATE if cfg.random_state is None else int(cfg.random_state),
    }


def load_blobs(cfg: DataConfig, seed: int) -> dict:
    """The labs' 2-D points around 4 centres, class = centre; the split comes from the seed,
    the points from data.random_state (the lab's 30), so every seed sees the same points."""
    from sklearn.datasets import make_blobs
    from sklearn.model_selection import train_test_split

    args = blobs_settings(cfg)
    if args["n_samples"] < 2 * len(args["centers"]) or args["cluster_std"] <= 0:
        raise ConfigError(
            f"data=blobs: n_samples={args['n_samples']} must be at least 2 per centre "
            f"({len(args['centers'])} centres) and cluster_std={args['cluster_std']} positive"
        )
    if len({len(c) for c in args["centers"]}) != 1:
        raise ConfigError(f"data.centers={args['centers']}: every centre needs the same dimension")
    x, y = make_blobs(**args)
    y = y.astype(np.int64)
    tr, va = train_test_split(
        np.arange(len(x)), test_size=cfg.val_fraction, random_state=seed, stratify=y
    )
    return {
        "x_train": x[tr],
        "y_train": y[tr],
        "x_val": x[va],
        "y_val": y[va],
        "train_rows": tr,
        "val_rows": va,
        "source": "sklearn.datasets.make_blobs",
        "task": Task.multiclass,
        "description": (
            f"make_blobs({args['n_samples']} points, centres {args['centers']}, "
            f"cluster_std {args['cluster_std']:g}, random_state {args['random_state']})"
        ),
    }


def subsample_train(raw: dict, fraction: float, seed: int, task: Task) -> dict:
    """Keep `fraction` of the training split (stratified for classes, from the seed)."""
    if fraction >= 1.0:
        return raw
    from sklearn.model_selection import train_test_split

    x, y = raw["x_train"], raw["y_train"]
    keep = max(1, int(round(fraction * len(x))))
    stratify = y if task in (Task.binary, Task.multiclass) else None
    try:
        kept, _ = train_test_split(
            np.arange(len(x)), train_size=keep, random_state=seed, stratify=stratify
        )
    except ValueError as exc:  # fewer kept examples than classes
        raise ConfigError(
            f"data.train_fraction={fraction} keeps {keep} of {len(x)} training examples, too "
            f"few to stratify ({exc}); use a larger fraction"
        ) from exc
    # the kept rows, also as rows of the source: the training split's digest covers them
    return {**raw, "x_train": x[kept], "y_train": y[kept], "train_rows": raw["train_rows"][kept]}


def as_two_classes(raw: dict) -> dict:
    """Binary 0/1 labels (n, 1) -> class ids (n,) of a 2-class multiclass task."""
    return {
        **raw,
        "y_train": raw["y_train"].reshape(-1).astype(np.int64),
        "y_val": raw["y_val"].reshape(-1).astype(np.int64),
        "task": Task.multiclass,
        "description": raw["description"] + ", labels as 2 classes",
    }
