"""A report's files from a sweep: render them in memory, write them to a folder, attach them
to the sweep's parent run and log its verdicts there; or regenerate them from the data a
report folder ships (runs.csv, sweep.json)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness.report import data
from harness.report.extras import Prepared, prepare
from harness.report.figures import figure
from harness.report.load import Sweep, default_uri, load
from harness.report.questions import verdict_table, verdict_tags
from harness.report.sections import markdown
from harness.report.tables import results_table, timing_table

FILES = [
    "report.md",
    "loss.png",
    "accuracy.png",
    "summary.csv",
    "timing.csv",
    "verdicts.csv",
    data.RUNS_CSV,
    data.SWEEP_JSON,
]  # and a tuned sweep's sensitivity.png (harness.report.tuned.FIGURE)


def render(sweep: Sweep, p: Prepared, report_cmd: str, compare: str | None) -> dict[str, bytes]:
    """Every file of the report, in memory: name -> bytes. `sweep` is all the sweep's runs
    (its data); `p` what the report compares (a tuned sweep's eval stage) and adds."""
    shown, d = p.sweep, p.design
    return {
        "report.md": markdown(shown, d, report_cmd, p.found, p.extra).encode(),
        "loss.png": figure(shown.runs, d, "loss", sweep.experiment),
        "accuracy.png": figure(shown.runs, d, "score", sweep.experiment),
        "summary.csv": results_table(shown.runs, d).csv(),
        "timing.csv": timing_table(shown.runs, d).csv(),
        "verdicts.csv": verdict_table(p.all).csv(),
        data.RUNS_CSV: data.runs_csv(sweep),
        data.SWEEP_JSON: data.sweep_json(sweep, report_cmd, compare),
        **p.files,
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


def write(files: dict[str, bytes], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, blob in files.items():
        (folder / name).write_bytes(blob)
    return folder


def generate(
    experiment: str,
    uri: str | None = None,
    out: Path = Path("results"),
    parent: str | None = None,
    compare: str | None = None,
    attach: bool = True,
) -> Path:
    """Write <out>/<experiment>/; attach it to the sweep's parent run and log the verdicts
    there (unless attach is False); returns the folder."""
    store = uri or default_uri()
    sweep = load(experiment, store, parent)
    p = prepare(sweep, compare)
    files = render(sweep, p, report_command(experiment, uri, parent, compare), compare)
    folder = write(files, Path(out) / experiment)
    if attach:
        from harness.store import attach_dir
        from harness.store.verdicts import log_verdicts

        with tempfile.TemporaryDirectory() as tmp:  # exactly these files, not others in folder
            attach_dir(store, sweep.parent_id, write(files, Path(tmp)), "report")
        log_verdicts(store, sweep.parent_id, *verdict_tags(p.all))
    return folder


def regenerate(source: Path, out: Path) -> Path:
    """Write <out>/<experiment>/ from a report folder's data alone (no store)."""
    sweep, report_cmd, compare = data.read(source)
    files = render(sweep, prepare(sweep, compare), report_cmd, compare)
    return write(files, Path(out) / sweep.experiment)
