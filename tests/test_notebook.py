"""The example notebook runs top to bottom (nbclient, a real python3 kernel) on a throwaway
store, and what it shows is what MLflow holds."""

from __future__ import annotations

import os
import time

import nbformat
import pytest
from mlflow.tracking import MlflowClient
from nbclient import NotebookClient

import harness
from tests.conftest import ROOT

NOTEBOOK = ROOT / "examples" / "harness_from_python.ipynb"


def _text(cell) -> str:
    """Everything a cell shows, as text (streams, plain text and HTML of results)."""
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        data = out.get("data", {})
        parts += [data.get("text/plain", ""), data.get("text/html", "")]
    return "\n".join(parts)


def _cell(nb, fragment: str):
    return next(c for c in nb.cells if c.cell_type == "code" and fragment in c.source)


@pytest.mark.slow  # a kernel, 4 Keras and Lightning runs, a report: 1-3 min on 2 cores
def test_the_example_notebook_runs_and_shows_what_mlflow_holds(tmp_path, monkeypatch):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # the kernel, and the CLI under it, inherit it
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it cleared"

    t0 = time.perf_counter()
    NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # raises at the first cell that fails
    print(f"notebook executed in {time.perf_counter() - t0:.0f} s")

    client = MlflowClient(store)
    exp_id = client.get_experiment_by_name("course_binary").experiment_id
    parent = client.search_runs([exp_id], "tags.`harness.role` = 'sweep'")
    assert len(parent) == 1
    pid = parent[0].info.run_id
    children = client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{pid}'")
    assert len(children) == 4 and {r.info.status for r in children} == {"FINISHED"}

    sweep_cell = _cell(nb, "harness.sweep(")
    shown = _text(sweep_cell)
    for run in children:
        assert run.info.run_id in shown  # the sweep's frame lists every run MLflow holds
    # its progress is one line updated in place, not a line per event
    progress = [o for o in sweep_cell.outputs if o.output_type in ("display_data", "stream")]
    assert len(progress) == 1 and "4 runs (4 finished; 0 skipped" in _text(sweep_cell)

    frame = harness.runs("course_binary", tracking_uri=store)
    for run in children:
        row = frame[frame.run_id == run.info.run_id]
        assert row["val/loss"].item() == pytest.approx(run.data.metrics["val/loss"])
        assert (row.backend.item(), str(row.seed.item())) == (
            run.data.params["backend.name"], run.data.params["seed"]
        )

    assert "Could not override 'train.epoch'" in _text(_cell(nb, "train.epoch=3"))
    plot = _cell(nb, "plt.subplots")
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)
    report = _cell(nb, "harness.report(")
    assert "data:image/png;base64," in _text(report)
    assert (tmp_path / "results" / "course_binary" / "report.md").is_file()
