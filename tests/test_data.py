"""Datasets: shapes per task, splits from the seed, digit pairs without leakage, user files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits

from harness.core.config import ConfigError, DataConfig, Task
from harness.core.data import BUILTIN_TASKS, LOADERS, batch_indices, load


def test_every_builtin_dataset_has_a_conf_file_and_a_loader():
    conf = Path(__file__).resolve().parents[1] / "conf" / "data"
    names = {p.stem for p in conf.glob("*.yaml")}
    assert names == set(LOADERS) == set(BUILTIN_TASKS) | {"file"}


@pytest.mark.parametrize(
    "name,task,n_total,n_features,n_outputs,y_shape",
    [
        ("digits_binary", Task.binary, 360, 64, 1, (1,)),
        ("digits", Task.multiclass, 1797, 64, 10, ()),
        ("roasting", Task.binary, 200, 2, 1, (1,)),
        ("diabetes", Task.regression, 442, 10, 1, (1,)),
    ],
)
def test_builtin_shapes_and_targets(name, task, n_total, n_features, n_outputs, y_shape):
    d = load(DataConfig(name=name), seed=0)
    assert d.task is task and BUILTIN_TASKS[name] is task
    assert d.n_features == n_features and d.n_outputs == n_outputs
    assert len(d.x_train) + len(d.x_val) == n_total
    assert len(d.x_val) == pytest.approx(0.2 * n_total, abs=1)
    assert d.y_train.shape == (len(d.x_train), *y_shape)
    assert d.y_val.shape == (len(d.x_val), *y_shape)
    assert np.isfinite(d.x_train).all() and np.isfinite(d.x_val).all()
    if task is Task.binary:
        assert set(np.unique(d.y_train)) == {0.0, 1.0}
    if task is Task.multiclass:
        assert set(np.unique(d.y_train)) == set(range(10))
    if task is Task.regression:
        assert (d.y_train >= 0).all() and (d.y_val >= 0).all()  # a relu output can fit it


def test_pixels_are_scaled_to_unit_range_and_tabular_sets_standardised():
    digits = load(DataConfig(name="digits"), seed=0)
    assert digits.x_train.min() == 0.0 and digits.x_train.max() == 1.0
    for name in ("roasting", "diabetes"):
        d = load(DataConfig(name=name), seed=0)
        np.testing.assert_allclose(d.x_train.mean(axis=0), 0.0, atol=1e-9)
        np.testing.assert_allclose(d.x_train.std(axis=0), 1.0, atol=1e-9)


def test_roasting_is_the_lessons_band():
    from harness.core.data import roasting_raw

    x, y = roasting_raw()
    assert x.shape == (200, 2) and y.shape == (200, 1)
    temp, dur = x[:, 0], x[:, 1]
    assert 150 <= temp.min() and temp.max() <= 285 and 11.5 <= dur.min() and dur.max() <= 15.5
    good = y[:, 0] == 1
    assert 0.1 < good.mean() < 0.9  # both classes present
    assert (temp[good] > 175).all() and (temp[good] < 260).all()
    assert (dur[good] > 12).all() and (dur[good] < 15).all()
    np.testing.assert_array_equal(roasting_raw()[0], x)  # fixed seed: same every time


@pytest.mark.parametrize("name", ["digits_binary", "digits", "digit_pairs", "roasting", "diabetes"])
def test_split_is_determined_by_the_seed(name):
    a, b, c = (load(DataConfig(name=name), seed=s) for s in (3, 3, 4))
    for key in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.array_equal(a.x_train, c.x_train)


def _image_index() -> tuple[dict[bytes, int], np.ndarray]:
    """Every digit image (as bytes of its scaled pixels) -> its row in scikit-learn's set."""
    digits = load_digits()
    x = digits.data / 16.0
    index = {row.tobytes(): i for i, row in enumerate(x)}
    assert len(index) == len(x)  # no duplicate images, so a pixel match identifies the image
    return index, digits.target


def test_digit_pairs_are_real_digits_labelled_by_the_set_present_without_leakage():
    d = load(DataConfig(name="digit_pairs"), seed=0)
    assert d.task is Task.multilabel and d.n_outputs == 10 and d.n_features == 128
    index, target = _image_index()
    seen: dict[str, set[int]] = {}
    for split, x, y in (("train", d.x_train, d.y_train), ("val", d.x_val, d.y_val)):
        halves = x.reshape(-1, 8, 16)
        left = halves[:, :, :8].reshape(len(x), 64)
        right = halves[:, :, 8:].reshape(len(x), 64)
        ids_left = [index[row.tobytes()] for row in left]  # KeyError: not a real image
        ids_right = [index[row.tobytes()] for row in right]
        expected = np.zeros_like(y)
        expected[np.arange(len(y)), target[ids_left]] = 1
        expected[np.arange(len(y)), target[ids_right]] = 1
        np.testing.assert_array_equal(y, expected)
        assert set(np.unique(y.sum(axis=1))) == {1.0, 2.0}  # equal digits: one label
        seen[split] = set(ids_left) | set(ids_right)
    assert not seen["train"] & seen["val"], "an image appears in both train and validation"
    assert len(d.x_train) == 4 * 1437 and len(d.x_val) == 360


def test_data_task_must_match_a_builtin_dataset():
    refusal = r"does not match dataset 'diabetes'.*data=digits_binary\|roasting"
    with pytest.raises(ConfigError, match=refusal):
        load(DataConfig(name="diabetes", task=Task.binary), seed=0)
    assert load(DataConfig(name="digits", task=Task.multiclass), seed=0).task is Task.multiclass


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ConfigError, match="digit_pairs"):
        load(DataConfig(name="mnist"), seed=0)


def test_batches_cover_the_data_once_per_epoch_in_a_seeded_order():
    batches = batch_indices(10, 4, epoch=0, seed=1)
    assert [len(b) for b in batches] == [4, 4, 2]
    assert sorted(np.concatenate(batches).tolist()) == list(range(10))
    again = batch_indices(10, 4, epoch=0, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    other_epoch = np.concatenate(batch_indices(10, 4, epoch=1, seed=1))
    assert not np.array_equal(np.concatenate(batches), other_epoch)
    full = batch_indices(10, None, epoch=5, seed=1)
    assert len(full) == 1 and full[0].tolist() == list(range(10))


# --- user files -------------------------------------------------------------------------


def _rng_features(n: int = 40, k: int = 3) -> np.ndarray:
    return np.random.default_rng(0).normal(5.0, 3.0, size=(n, k))


def _csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv") -> str:
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


def _frame(x: np.ndarray, **targets) -> pd.DataFrame:
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    for name, values in targets.items():
        frame[name] = values
    return frame


def _user(path: str, task: str, seed: int = 0):
    return load(DataConfig(name="file", path=path, task=Task(task)), seed=seed)


def test_csv_binary_file(tmp_path):
    x = _rng_features()
    y = (x[:, 0] > 5).astype(int)
    d = _user(_csv(tmp_path, _frame(x, y=y)), "binary")
    assert d.task is Task.binary and d.n_outputs == 1 and d.n_features == 3
    assert d.y_train.shape == (32, 1) and d.x_val.shape == (8, 3)
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0.0, atol=1e-9)  # standardised
    again = _user(_csv(tmp_path, _frame(x, y=y)), "binary")
    np.testing.assert_array_equal(d.x_train, again.x_train)


def test_csv_multiclass_multilabel_and_regression_files(tmp_path):
    x = _rng_features(60)
    classes = np.arange(60) % 3
    d = _user(_csv(tmp_path, _frame(x, y=classes)), "multiclass")
    assert d.n_outputs == 3 and d.y_train.dtype == np.int64 and d.y_train.ndim == 1

    labels = {f"y{j}": (np.arange(60) >> j) & 1 for j in range(4)}
    d = _user(_csv(tmp_path, _frame(x, **labels), "ml.csv"), "multilabel")
    assert d.n_outputs == 4 and d.y_train.shape == (48, 4) and d.n_features == 3

    d = _user(_csv(tmp_path, _frame(x, y=x[:, 0] * -2.5), "reg.csv"), "regression")
    assert d.n_outputs == 1 and d.y_train.shape == (48, 1) and (d.y_train < 0).any()


def test_npz_file(tmp_path):
    x = _rng_features(30, 5)
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=np.arange(30) % 2)
    d = _user(str(path), "binary")
    assert d.n_features == 5 and d.y_train.shape == (24, 1)
    assert sorted(np.unique(d.y_train)) == [0.0, 1.0]


def test_large_regression_targets_are_trained_divided_by_a_power_of_ten(tmp_path):
    x = _rng_features(60)
    y = 100 + 50 * x[:, 0]  # order 100, as raw diabetes (25-346)
    d = _user(_csv(tmp_path, _frame(x, y=y), "big.csv"), "regression")
    assert d.target_scale == 100.0
    assert 1 <= np.abs(d.y_train).max() < 10
    trained = np.concatenate([d.y_train, d.y_val]).ravel()
    np.testing.assert_allclose(np.sort(trained * 100), np.sort(y))
    small = _user(_csv(tmp_path, _frame(x, y=x[:, 0] / 5), "small.csv"), "regression")
    assert small.target_scale == 1.0  # order 1 already: trained as given
    assert load(DataConfig(name="diabetes"), seed=0).target_scale == 1.0  # bundled: y / 100


def test_raw_diabetes_as_a_csv_is_the_bundled_set_scaled_back(tmp_path):
    """Raw diabetes (25-346) saved as a CSV trains on exactly the arrays of data=diabetes."""
    from sklearn.datasets import load_diabetes

    x, y = load_diabetes(return_X_y=True, as_frame=True, scaled=False)
    frame = x.assign(y=y)
    d = _user(_csv(tmp_path, frame, "diabetes_raw.csv"), "regression")
    bundled = load(DataConfig(name="diabetes"), seed=0)
    assert d.target_scale == 100.0 and d.label == "diabetes_raw"
    for key in ("x_train", "y_train", "x_val", "y_val"):
        np.testing.assert_allclose(getattr(d, key), getattr(bundled, key), rtol=1e-12)

