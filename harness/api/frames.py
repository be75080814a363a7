"""A stored sweep as DataFrames: one row per planned job, and per-epoch metrics (long)."""

from __future__ import annotations

from typing import Any

from harness.api.store import StoredRun, StoredSweep

STATUS_COLUMNS = ["status", "skipped", "run_name", "run_id", "config_hash"]


def _value(text: str) -> Any:
    """An override's value as Python (seed=0 -> 0, optimizer.lr=0.01 -> 0.01); lists stay text."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return text if isinstance(value, (list, dict)) else value


def _split(overrides: list[str]) -> dict[str, str]:
    out = {}
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.lstrip("+~")
        if sep and key != "experiment":
            out[key] = value
    return out


def factors(sweep: StoredSweep, jobs: list[dict[str, str]]) -> list[str]:
    """The swept keys: the experiment's sweep params and any override that varies, in order."""
    keys: list[str] = []
    for job in jobs:
        keys += [k for k in job if k not in keys]
    return [
        k for k in keys
        if k in sweep.swept or len({job.get(k) for job in jobs}) > 1
    ]


def _metric_order(key: str) -> tuple:
    """Losses first, then the other training and validation metrics, then the rest."""
    return (not key.endswith("/loss"), not key.startswith(("train/", "val/")), key)


def _jobs(sweep: StoredSweep) -> list[tuple[dict[str, str], str, StoredRun | None]]:
    """(overrides, planned run name, its run) per planned job: this sweep's run of it, else
    the FINISHED run an earlier sweep left (a resumed job), else None (never ran)."""
    mine = {r.config_hash: r for r in sweep.runs if r.parent_id == sweep.parent_id}
    if sweep.plan is None:
        children = sorted(mine.values(), key=lambda r: r.start_ms)
        return [(_split(r.overrides), r.run_name, r) for r in children]
    earlier: dict[str, StoredRun] = {}
    for r in sorted(sweep.runs, key=lambda r: -r.start_ms):  # newest first
        if r.status == "FINISHED":
            earlier.setdefault(r.config_hash, r)
    jobs = []
    for job in sweep.plan:
        run = mine.get(job["config_hash"]) or earlier.get(job["config_hash"])
        jobs.append((_split(job["overrides"]), job["run_name"], run))
    return jobs


def runs_frame(sweep: StoredSweep):
    """One row per planned job: swept factors, final metrics, status, run id."""
    import pandas as pd

    jobs = _jobs(sweep)
    keys = factors(sweep, [overrides for overrides, _, _ in jobs])
    metrics = sorted({k for _, _, r in jobs if r for k in r.metrics}, key=_metric_order)
    rows = []
    for overrides, name, run in jobs:
        row: dict[str, Any] = {k: _value(overrides[k]) if k in overrides else None for k in keys}
        row.update({k: (run.metrics.get(k) if run else None) for k in metrics})
        row.update(
            status=run.status if run else "MISSING",
            skipped=bool(run) and run.parent_id != sweep.parent_id,
            run_name=run.run_name if run else name,
            run_id=run.run_id if run else None,
            config_hash=run.config_hash if run else None,
        )
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[*keys, *metrics, *STATUS_COLUMNS])
    frame[metrics] = frame[metrics].astype(float)
    frame.attrs.update(experiment=sweep.experiment, parent_run_id=sweep.parent_id, factors=keys)
    return frame


def history_frame(sweep: StoredSweep):
    """Per-epoch metrics, long: run_id, run_name, the factors, epoch, metric, value."""
    import pandas as pd

    runs = runs_frame(sweep)
    keys = runs.attrs["factors"]
    by_id = {r.run_id: r for r in sweep.runs}
    rows = []
    for _, row in runs[runs.run_id.notna()].iterrows():
        head = {"run_id": row.run_id, "run_name": row.run_name, **{k: row[k] for k in keys}}
        curves = by_id[row.run_id].history
        for metric in sorted(curves, key=_metric_order):
            rows += [{**head, "epoch": e, "metric": metric, "value": v} for e, v in curves[metric]]
    frame = pd.DataFrame(rows, columns=["run_id", "run_name", *keys, "epoch", "metric", "value"])
    frame.attrs.update(runs.attrs)
    return frame
