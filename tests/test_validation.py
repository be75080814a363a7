"""Combinations that make no sense are refused before training, saying why and what to use
instead, and nothing reaches MLflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from harness.core.config import ConfigError, Task, output_activation, validate
from harness.run.train import prepare, run
from tests.conftest import cli, make_spec


def _refused(tmp_path: Path, *overrides: str) -> str:
    """Run the spec through harness.run.run against a fresh store; return the refusal."""
    db = tmp_path / "mlflow.db"
    spec = make_spec(*overrides, f"tracking.uri=sqlite:///{db}")
    with pytest.raises(ConfigError) as err:
        run(spec, log=lambda *a, **k: None)
    _assert_no_run_written(db)
    return str(err.value)


def _assert_no_run_written(db: Path) -> None:
    if not db.exists():
        return  # the store was never even opened
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exps = [e.experiment_id for e in client.search_experiments()]
    assert not client.search_runs(exps), "a refused configuration wrote a run"


# The list of invalid combinations, each with the words that say why and what instead.
CASES = {
    "softmax output on a multilabel task": (
        ["data=digit_pairs", "model.output_activation=softmax"],
        ["softmax output on a multilabel task", "model.output_activation=sigmoid"],
    ),
    "softmax output with from_logits=true": (
        ["data=digits", "model.output_activation=softmax", "model.from_logits=true"],
        ["applies the softmax twice", "model.output_activation=linear with from_logits=true"],
    ),
    "sigmoid output with from_logits=true": (
        ["data=digits_binary", "model.output_activation=sigmoid", "model.from_logits=true"],
        ["applies the sigmoid twice", "from_logits=false (the probabilities form)"],
    ),
    "linear output with from_logits=false (binary)": (
        ["data=digits_binary", "model.output_activation=linear", "model.from_logits=false"],
        ["linear output with model.from_logits=false", "set model.from_logits=true"],
    ),
    "relu output with from_logits=false (multiclass)": (
        ["data=digits", "model.output_activation=relu"],
        ["relu output with model.from_logits=false", "set model.from_logits=true"],
    ),
    "linear output with from_logits=false (multilabel)": (
        ["data=digit_pairs", "model.output_activation=linear"],
        ["expects probabilities", "set model.from_logits=true"],
    ),
    "relu output with from_logits=true (classification)": (
        ["data=digits_binary", "model.output_activation=relu", "model.from_logits=true"],
        [
            "relu output clips the logits at 0",
            "model.output_activation=linear with from_logits=true",
        ],
    ),
    "classification loss (from_logits) on regression": (
        ["data=diabetes", "model.from_logits=true"],
        ["classification loss", "task is regression", "set model.from_logits=false"],
    ),
    "sigmoid output on regression": (
        ["data=diabetes", "model.output_activation=sigmoid"],
        ["regression task", "model.output_activation=linear (any sign) or relu"],
    ),
    "classification task asked of a regression set": (
        ["data=diabetes", "data.task=binary"],
        ["does not match dataset 'diabetes'", "data=digits_binary|roasting"],
    ),
    "softmax output on a binary task": (
        ["data=digits_binary", "model.output_activation=softmax"],
        ["softmax over a single output unit is always 1", "model.output_activation=sigmoid"],
    ),
    "sigmoid output on a multiclass task": (
        ["data=digits", "model.output_activation=sigmoid"],
        ["does not give a distribution", "model.output_activation=softmax"],
    ),
    "softmax as a hidden activation": (
        ["model.hidden_activation=softmax"],
        ["not a hidden-layer activation", "use sigmoid, relu or linear"],
    ),
    "zero epochs": (["train.epochs=0"], ["train.epochs=0", "at least 1"]),
    "zero batch size": (["train.batch_size=0"], ["train.batch_size=0", "null for full batch"]),
    "negative learning rate": (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "positive"]),
    "Adam beta of 1": (["optimizer.beta_2=1.0"], ["optimizer.beta_2=1.0", "[0, 1)"]),
    "empty hidden layer": (["model.hidden=[25,0]"], ["model.hidden=[25, 0]", "positive"]),
}


@pytest.mark.parametrize("case", list(CASES))
def test_invalid_combination_is_refused_before_anything_is_written(tmp_path, case):
    overrides, phrases = CASES[case]
    message = _refused(tmp_path, *overrides)
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"


def test_multiclass_with_one_output_unit_is_refused():
    spec = make_spec("data=digits")
    with pytest.raises(ConfigError, match=r"one output unit per class, got 1.*data.task=binary"):
        validate(spec, Task.multiclass, n_outputs=1)


def _write(tmp_path: Path, y, name: str = "data.csv") -> str:
    x = np.random.default_rng(0).normal(size=(len(y), 2))
    frame = pd.DataFrame(x, columns=["a", "b"])
    frame["y"] = y
    path = tmp_path / name
    frame.to_csv(path, index=False)
    return str(path)


@pytest.mark.parametrize(
    "y,task,phrase",
    [
        ([0, 0] * 10, "multiclass", "at least 2 classes"),  # one class: one output unit
        ([0, 1, 2, 3] * 5, "binary", "use data.task=multiclass"),
        ([0.5, 1.5] * 10, "multiclass", "use data.task=regression"),
        ([0, 1] * 10, "multilabel", "use data.task=binary"),
    ],
)
def test_user_file_labels_that_do_not_match_the_task(tmp_path, y, task, phrase):
    path = _write(tmp_path, y)
    message = _refused(tmp_path, "data=file", f"data.path={path}", f"data.task={task}")
    assert phrase in message


def test_user_file_missing_or_malformed(tmp_path):
    assert "no such file" in _refused(
        tmp_path, "data=file", f"data.path={tmp_path / 'absent.csv'}", "data.task=binary"
    )
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"\x00garbage")
    assert "not a readable .npz" in _refused(
        tmp_path, "data=file", f"data.path={bad}", "data.task=binary"
    )
    assert "needs data.path=" in _refused(tmp_path, "data=file", "data.task=binary")
    assert "needs data.task=" in _refused(tmp_path, "data=file", f"data.path={bad}")


def test_model_contradicting_a_user_files_task_is_refused_before_reading_it(tmp_path):
    # the file does not exist: the head/task contradiction is reported first, without I/O
    message = _refused(
        tmp_path,
        "data=file",
        f"data.path={tmp_path / 'absent.csv'}",
        "data.task=multilabel",
        "model.output_activation=softmax",
    )
    assert "softmax output on a multilabel task" in message


@pytest.mark.parametrize(
    "overrides,head",
    [
        (["data=digits_binary"], "sigmoid"),
        (["data=digits"], "softmax"),
        (["data=digit_pairs"], "sigmoid"),
        (["data=diabetes"], "linear"),
        (["data=digits_binary", "model.from_logits=true"], "linear"),
        (["data=digits", "model.from_logits=true"], "linear"),
        (["data=digit_pairs", "model.from_logits=true"], "linear"),
        (["data=diabetes", "model.output_activation=relu"], "relu"),
    ],
)
def test_valid_heads_resolve_from_the_task_and_from_logits(overrides, head):
    data, out = prepare(make_spec(*overrides))
    assert out.value == head
    assert output_activation(make_spec(*overrides), data.task).value == head


def test_cli_refuses_before_training_and_writes_nothing(tmp_path):
    """The issue's two headline refusals, as a user meets them: one run, then a sweep."""
    db = tmp_path / "store.db"
    store = f"tracking.uri=sqlite:///{db}"
    single = cli(
        "data=digit_pairs", "model.output_activation=softmax", store, cwd=tmp_path, timeout=120
    )
    assert single.returncode != 0
    assert "softmax output on a multilabel task" in single.stderr
    assert "model.output_activation=sigmoid" in single.stderr
    sweep = cli(
        "data=digits", "model.output_activation=softmax", "model.from_logits=true",
        "backend=keras,lightning", store, "-m", cwd=tmp_path, timeout=120,
    )
    assert sweep.returncode != 0
    assert "applies the softmax twice" in sweep.stderr
    assert "Traceback" not in single.stderr + sweep.stderr
    _assert_no_run_written(db)
