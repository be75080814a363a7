"""A report's files from a sweep: render them in memory, write them to a folder and attach
them to the sweep's parent run."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.report.design import Design, design
from harness.report.figures import figure
from harness.report.load import Sweep, default_uri, load
from harness.report.sections import markdown
from harness.report.tables import results_table, timing_table

FILES = ["report.md", "loss.png", "accuracy.png", "summary.csv", "timing.csv"]


def render(sweep: Sweep, d: Design, report_cmd: str) -> dict[str, bytes]:
    """Every file of the report, in memory: name -> bytes."""
    return {
        "report.md": markdown(sweep, d, report_cmd).encode(),
        "loss.png": figure(sweep.runs, d, "loss", sweep.experiment),
        "accuracy.png": figure(sweep.runs, d, "score", sweep.experiment),
        "summary.csv": results_table(sweep.runs, d).csv(),
        "timing.csv": timing_table(sweep.runs, d).csv(),
    }


def report_command(
    experiment: str, uri: str | None, parent: str | None, compare: str | None
) -> str:
    """The command line that regenerates this report, as the report states it."""
    cmd = ["python -m harness.report", experiment]
    if uri and uri != default_uri():
        cmd.append(f"--tracking-uri {uri}")
    if parent:
        cmd.append(f"--parent {parent}")
    if compare:
        cmd.append(f"--compare {compare}")
    return " ".join(cmd)


def generate(
    experiment: str,
    uri: str | None = None,
    out: Path = Path("results"),
    parent: str | None = None,
    compare: str | None = None,
    attach: bool = True,
) -> Path:
    """Write <out>/<experiment>/ and attach it to the sweep's parent run; returns the folder."""
    store = uri or default_uri()
    sweep = load(experiment, store, parent)
    d = design(sweep, compare)
    files = render(sweep, d, report_command(experiment, uri, parent, compare))
    folder = Path(out) / experiment
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    if attach:
        from harness.store.tracking import attach_dir

        with tempfile.TemporaryDirectory() as tmp:  # exactly these files, not others in folder
            for name, blob in files.items():
                (Path(tmp) / name).write_bytes(blob)
            attach_dir(store, sweep.parent_id, Path(tmp), "report")
    return folder
