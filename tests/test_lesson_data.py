"""The labs' blobs, training fractions, binary labels as 2 classes, and the refusals of
inputs a conv model cannot use: all before training, nothing written."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.core.config import ConfigError, Task
from harness.run.train import prepare
from tests.conftest import cli, make_spec
from tests.test_validation import _assert_no_run_written, _refused


def test_blobs_are_the_labs_points_and_recorded_in_the_config():
    from sklearn.datasets import make_blobs

    spec = make_spec("data=blobs")
    assert spec.data.n_samples == 2000 and spec.data.random_state == 30
    assert spec.data.centers == [[-5, 2], [-2, -2], [1, 2], [5, -2]]
    data, out = prepare(spec)
    assert data.task is Task.multiclass and data.n_outputs == 4 and out.value == "softmax"
    assert len(data.x_train) + len(data.x_val) == 2000 and data.image_shape is None
    x, _ = make_blobs(n_samples=2000, centers=[[-5, 2], [-2, -2], [1, 2], [5, -2]],
                      cluster_std=1.0, random_state=30)
    # the lab's exact points, split (not regenerated) by the seed
    assert np.allclose(np.sort(np.concatenate([data.x_train, data.x_val])[:, 0]), np.sort(x[:, 0]))
    small, _ = prepare(make_spec("data=blobs", "data.n_samples=100"))
    assert len(small.x_train) + len(small.x_val) == 100


def test_train_fraction_subsamples_training_only_stratified():
    full, _ = prepare(make_spec("data=digits"))
    part, _ = prepare(make_spec("data=digits", "data.train_fraction=0.1"))
    assert len(part.x_train) == round(0.1 * len(full.x_train))
    np.testing.assert_array_equal(part.x_val, full.x_val)  # validation untouched
    assert set(np.unique(part.y_train)) == set(range(10))  # every class kept
    shares = np.bincount(part.y_train) / len(part.y_train)
    assert np.abs(shares - np.bincount(full.y_train) / len(full.y_train)).max() < 0.02
    again, _ = prepare(make_spec("data=digits", "data.train_fraction=0.1"))
    np.testing.assert_array_equal(again.x_train, part.x_train)  # from the seed
    other, _ = prepare(make_spec("data=digits", "data.train_fraction=0.1", "seed=1"))
    assert not np.array_equal(other.x_train, part.x_train)


def test_binary_digits_as_two_classes_give_a_two_unit_softmax_on_the_same_split():
    sig, sig_out = prepare(make_spec("data=digits_binary"))
    soft, soft_out = prepare(make_spec("data=digits_binary", "data.task=multiclass"))
    assert (sig_out.value, soft_out.value) == ("sigmoid", "softmax")
    assert soft.n_outputs == 2 and soft.y_train.shape == (len(sig.y_train),)
    np.testing.assert_array_equal(soft.x_train, sig.x_train)
    np.testing.assert_array_equal(soft.y_train, sig.y_train[:, 0].astype(int))
    with pytest.raises(ConfigError, match="data.task=multiclass to encode"):
        prepare(make_spec("data=digits_binary", "model.output_activation=softmax"))


@pytest.mark.parametrize("overrides,words", [
    (["data=roasting", "model=conv"], ["needs images", "data.name=roasting"]),
    (["data=blobs", "model=conv"], ["needs images", "data.name=blobs"]),
    (["data=digits", "model=conv", "model.kernel_size=9"], ["kernel_size=9 is larger", "8x8"]),
    (["data=digits", "model=conv", "model.conv_filters=[4,4,4,4]"], ["conv layer 4", "2x2"]),
    (["data=digits", "model=conv", "mode=vectorization"], ["mode=vectorization", "model=mlp"]),
    (["data=digits", "data.train_fraction=0"], ["train_fraction=0", "(0, 1]"]),
    (["data=digits", "data.train_fraction=1.5"], ["train_fraction=1.5", "(0, 1]"]),
])
def test_inputs_a_model_cannot_use_are_refused_before_training(tmp_path, overrides, words):
    message = _refused(tmp_path, *overrides)
    for word in words:
        assert word in message, message


def test_a_csv_needs_a_declared_image_shape_for_conv(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.random((40, 16)), columns=[f"p{i}" for i in range(16)])
    frame["y"] = np.arange(40) % 2
    path = tmp_path / "images.csv"
    frame.to_csv(path, index=False)
    base = ["data=file", f"data.path={path}", "data.task=binary", "model=conv"]
    assert "data.image_shape=[height, width]" in _refused(tmp_path / "a", *base)
    assert "does not fit 16 features" in _refused(tmp_path / "b", *base, "data.image_shape=[3,3]")
    data, _ = prepare(make_spec(*base, "data.image_shape=[4,4]"))
    assert data.image_shape == (4, 4, 1)


def test_cli_refuses_a_conv_model_on_a_table_with_exit_2(tmp_path: Path):
    db = tmp_path / "store.db"
    proc = cli("data=roasting", "model=conv", f"tracking.uri=sqlite:///{db}", cwd=tmp_path,
               timeout=180)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "model=conv needs images" in proc.stderr and "Traceback" not in proc.stderr
    _assert_no_run_written(db)
