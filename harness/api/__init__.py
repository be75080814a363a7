"""harness from Python: the CLI's runs, sweeps and reports, with results as DataFrames.

    import harness
    harness.run("backend=lightning", "train.epochs=20")        # one run -> Result
    df = harness.sweep("course_binary", "train.epochs=3")      # a sweep -> one row per run
    harness.runs("course_binary"), harness.history("course_binary")  # its latest sweep, read back
    harness.report("course_binary")                            # shown inline in Jupyter

The configs are conf/'s, composed by Hydra with the same schema and validation; invalid input
raises HarnessError with the message the CLI prints, before anything is written.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.api.errors import HarnessError, cli_message, override, store_uri
from harness.api.one import Result, run
from harness.api.show import Report

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HarnessError", "Report", "Result", "history", "report", "run", "runs", "sweep"]


def _mlflow_experiment(experiment: str, overrides: Sequence[str]) -> str:
    # each conf/experiment/NAME.yaml writes to the MLflow experiment NAME
    return override(overrides, "tracking.experiment") or experiment


def sweep(
    experiment: str, *overrides: str, tracking_uri: str | None = None, cwd: str | Path | None = None
) -> pd.DataFrame:
    """Run an experiment's sweep as `python -m harness +experiment=NAME OVERRIDES -m` does
    (same plan, resume, failure isolation), and return its runs (see `runs`).

    Jobs that fail are rows with their status (and a warning); a refused sweep raises
    HarnessError with the CLI's message.
    """
    from harness.api.cli import Progress, run_cli
    from harness.api.frames import runs_frame
    from harness.api.store import read_sweep

    with contextlib.chdir(cwd or "."):  # the CLI's default store is under its working folder
        uri = store_uri(tracking_uri, overrides)
    env = {"MLFLOW_TRACKING_URI": tracking_uri} if tracking_uri else {}
    started_ms = int(time.time() * 1000) - 1000  # MLflow's clock is this machine's (or close)
    args = [f"+experiment={experiment}", *overrides, "-m"]
    progress = Progress(experiment)
    t0 = time.perf_counter()
    code, output = run_cli("harness", args, progress, env=env, cwd=cwd)
    if code == 130:
        raise KeyboardInterrupt(f"sweep of '{experiment}' interrupted")
    if code == 2:
        raise HarnessError(cli_message(output), output)
    try:
        name = _mlflow_experiment(experiment, overrides)
        with contextlib.chdir(cwd or "."):
            stored = read_sweep(uri, name, started_after_ms=started_ms)
    except HarnessError:
        if code != 0:  # refused before its parent run existed (e.g. by Hydra's composition)
            raise HarnessError(cli_message(output), output) from None
        raise
    frame = runs_frame(stored)
    counts = frame.status.value_counts().to_dict()
    ran = ", ".join(f"{n} {status.lower()}" for status, n in counts.items())
    progress.show(
        f"{len(frame)} runs ({ran}; {int(frame.skipped.sum())} skipped as already FINISHED) in "
        f"{time.perf_counter() - t0:.0f} s; parent run {stored.parent_id}"
    )
    if code != 0:
        bad = frame[frame.status != "FINISHED"]
        lines = output.splitlines()
        start = next((i for i, line in enumerate(lines) if "failed jobs" in line), -10)
        said = lines[start:]
        warnings.warn(
            f"{len(bad)} of {len(frame)} jobs did not finish; the same call retries only "
            f"those. The sweep (exit {code}) said:\n" + "\n".join(said),
            stacklevel=2,
        )
    return frame


def runs(
    experiment: str, tracking_uri: str | None = None, parent_run_id: str | None = None
) -> pd.DataFrame:
    """An experiment's latest sweep (or parent_run_id's), one row per planned job: the swept
    factors, final metrics, status, whether it was skipped (FINISHED by an earlier sweep),
    run name, run id and config hash. `frame.attrs` holds the parent run id and the factors."""
    from harness.api.frames import runs_frame
    from harness.api.store import read_sweep

    return runs_frame(read_sweep(store_uri(tracking_uri), experiment, parent_run_id))


def history(
    experiment: str,
    metrics: Sequence[str] | None = None,
    tracking_uri: str | None = None,
    parent_run_id: str | None = None,
) -> pd.DataFrame:
    """The per-epoch metrics of an experiment's latest sweep, long: run_id, run_name, the
    factors, epoch, metric, value (metrics: these keys only; default every one logged)."""
    from harness.api.frames import history_frame
    from harness.api.store import read_sweep

    wanted = list(metrics) if metrics is not None else True
    stored = read_sweep(store_uri(tracking_uri), experiment, parent_run_id, history=wanted)
    return history_frame(stored)


def report(
    experiment: str,
    tracking_uri: str | None = None,
    out: str | Path = "results",
    parent_run_id: str | None = None,
    compare: str | None = None,
) -> Report:
    """Write OUT/EXPERIMENT/ as `python -m harness.report` does (and attach it to the sweep's
    parent run); the Report shows inline in Jupyter, `.path` is its report.md."""
    from harness.api.cli import Progress, run_cli

    args = [experiment, "--tracking-uri", store_uri(tracking_uri), "--out", str(out)]
    args += ["--parent", parent_run_id] if parent_run_id else []
    args += ["--compare", compare] if compare else []
    # a subprocess: the report draws its figures with matplotlib's Agg backend, which would
    # replace a notebook's own
    code, output = run_cli("harness.report", args, Progress(f"report {experiment}"))
    if code != 0:
        raise HarnessError(cli_message(output), output)
    return Report(experiment, Path(out).resolve() / experiment / "report.md")
