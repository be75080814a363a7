"""harness from Python: the same configs, refusals and stores as the CLI, results as
DataFrames that agree with what MLflow holds."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import harness
from tests.conftest import ROOT, cli
from tests.faults import env as faults_env

HYDRA_HINT = "Set the environment variable HYDRA_FULL_ERROR=1"
BUDGET = ("backend=numpy", "train.epochs=2")  # the NumPy backend: no framework to import


def _db(store: str) -> Path:
    return Path(store[len("sqlite:///") :])


def test_import_harness_is_cheap_and_the_api_loads_on_first_use():
    code = (
        "import sys, harness\n"
        "heavy = ('harness.api', 'pandas', 'mlflow', 'hydra', 'omegaconf')\n"
        "print([m for m in heavy if m in sys.modules])\n"
        "import harness.run.train, harness.report.cli\n"  # the packages' modules still import
        "print(callable(harness.run), callable(harness.sweep), callable(harness.report))\n"
        "print(harness.HarnessError.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[:3] == ["[]", "True True True", "harness.api.errors"]


def test_run_returns_its_result_as_mlflow_holds_it(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = harness.run(*BUDGET, "seed=3", tracking_uri=store)
    run = MlflowClient(store).get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.info.run_name == result.run_name == "numpy-sigmoid-probs-adam-s3"
    assert run.data.tags["config_hash"] == result.config_hash
    assert run.data.params["seed"] == "3" and result.epochs == 2
    assert result.metrics == pytest.approx({k: run.data.metrics[k] for k in result.metrics})
    assert "val/loss" in result.metrics
    assert f"{result.run_id}" in repr(result) and "val/loss=" in repr(result)


@pytest.mark.parametrize(
    "overrides",
    [("train.epoch=3",), ("data=digit_pairs", "model.output_activation=softmax")],
    ids=["typo", "invalid-combination"],
)
def test_run_refuses_with_the_clis_message_and_writes_nothing(tmp_path, store, overrides):
    with pytest.raises(harness.HarnessError) as err:
        harness.run(*overrides, tracking_uri=store)
    shown = cli(*overrides, f"tracking.uri={store}", cwd=tmp_path, timeout=300)
    assert shown.returncode != 0
    assert str(err.value) in shown.stderr  # the very text the CLI prints
    assert not _db(store).exists()


def _mlflow_view(store: str, experiment: str):
    """What MLflow holds of the experiment's latest sweep: its parent and its children."""
    client = MlflowClient(store)
    exp_id = client.get_experiment_by_name(experiment).experiment_id
    parents = client.search_runs(
        [exp_id], "tags.`harness.role` = 'sweep'", order_by=["attributes.start_time DESC"]
    )
    parent = parents[0].info.run_id
    children = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    return client, parents[0], {r.info.run_id: r for r in children}


def test_sweep_isolates_failures_resumes_and_agrees_with_mlflow(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = ("course_binary", *BUDGET, "seed=0,1")
    for key, value in faults_env("numpy-sigmoid-probs-adam-s1@2=raise").items():
        monkeypatch.setenv(key, value)
    with pytest.warns(UserWarning, match="1 of 2 jobs did not finish") as warned:
        first = harness.sweep(*args, tracking_uri=store)
    said = "\n".join(str(w.message) for w in warned)
    assert "numpy-sigmoid-probs-adam-s1 [FAILED]: RuntimeError: fault injected" in said
    assert list(first.seed) == [0, 1] and list(first.backend) == ["numpy", "numpy"]
    assert list(first.status) == ["FINISHED", "FAILED"]

    client, parent, children = _mlflow_view(store, "course_binary")
    assert first.attrs["parent_run_id"] == parent.info.run_id
    assert set(first.run_id) == set(children)
    for row in first.itertuples(index=False):
        run = children[row.run_id]
        assert (row.status, row.run_name) == (run.info.status, run.info.run_name)
        params = run.data.params
        assert (str(row.seed), row.backend) == (params["seed"], params["backend.name"])
        for key, value in run.data.metrics.items():
            assert first.loc[first.run_id == row.run_id, key].item() == pytest.approx(value)
    pd.testing.assert_frame_equal(harness.runs("course_binary", tracking_uri=store), first)

    history = harness.history("course_binary", tracking_uri=store)
    columns = ["run_id", "run_name", "backend", "seed", "epoch", "metric", "value"]
    assert list(history.columns) == columns
    for run_id in children:
        for key in ("train/loss", "val/loss", "val/accuracy"):
            stored = sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
            mine = history[(history.run_id == run_id) & (history.metric == key)]
            assert list(zip(mine.epoch, mine.value, strict=True)) == stored
    finished = history[history.run_id == first.run_id[0]]
    assert sorted(finished[finished.metric == "val/loss"].epoch) == [1, 2]

    monkeypatch.delenv("HARNESS_FAULTS")
    monkeypatch.delenv("HARNESS_EPOCH_HOOKS")
    second = harness.sweep(*args, tracking_uri=store)  # the same call retries only the failure
    assert list(second.status) == ["FINISHED", "FINISHED"]
    assert list(second.skipped) == [True, False]
    assert second.run_id[0] == first.run_id[0] and second.run_id[1] != first.run_id[1]
    _, parent, children = _mlflow_view(store, "course_binary")
    assert set(children) == {second.run_id[1]}  # only the retried job ran in this sweep
    assert second.attrs["parent_run_id"] == parent.info.run_id


@pytest.mark.parametrize(
    "args, phrases",
    [
        (("course_binry",), ["Could not find 'experiment/course_binry'", "course_binary"]),
        (("course_binary", "train.epoch=3"), ["Could not override 'train.epoch'"]),
        (
            ("course_binary", "data=digits", "model.output_activation=sigmoid"),
            ["invalid sweep", "nothing was run", "model.output_activation=softmax"],
        ),
    ],
    ids=["unknown-experiment", "typo", "invalid-jobs"],
)
def test_sweep_refuses_with_the_clis_message_and_writes_nothing(tmp_path, store, args, phrases):
    with pytest.raises(harness.HarnessError) as err:
        harness.sweep(*args, "backend=numpy", tracking_uri=store, cwd=tmp_path)
    message = str(err.value)
    for phrase in phrases:
        assert phrase in message
    assert HYDRA_HINT not in message and "Traceback" not in message
    assert not _db(store).exists()


def test_reading_and_reporting_refuse_what_does_not_exist(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(harness.HarnessError, match="no MLflow store at"):
        harness.runs("course_binary", tracking_uri=store)
    assert not _db(store).exists()
    MlflowClient(store).search_experiments()  # an empty store
    with pytest.raises(harness.HarnessError, match="unknown experiment 'nope'"):
        harness.history("nope", tracking_uri=store)
    with pytest.raises(harness.HarnessError, match="has no runs in .* harness.sweep"):
        harness.runs("course_binary", tracking_uri=store)
    with pytest.raises(harness.HarnessError, match="^harness.report: unknown experiment 'nope'"):
        harness.report("nope", tracking_uri=store, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert MlflowClient(store).search_runs(["0"]) == []


PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


def test_a_report_shows_inline_with_its_figures_embedded(tmp_path):
    folder = tmp_path / "course_binary"
    folder.mkdir()
    (folder / "loss.png").write_bytes(PNG)
    (folder / "report.md").write_text(
        "# course_binary\n\n| backend | loss |\n|---|---|\n| keras | 0.1 |\n\n![loss](loss.png)\n"
    )
    shown = harness.Report("course_binary", folder / "report.md")
    embedded = "data:image/png;base64," + base64.b64encode(PNG).decode()
    html = shown._repr_html_()
    assert "<table>" in html and f'src="{embedded}"' in html
    assert f"![loss]({embedded})" in shown._repr_markdown_()
    assert shown.figures == [folder / "loss.png"] and shown.path.name == "report.md"
