"""A sweep as data beside its report, so the report can be regenerated without the store.

`runs.csv`: one row per run and epoch. Columns: `run_id`, `run_name`, `epoch`, then
`curve:<metric>` (the metric at that epoch, empty where none was logged), then the run's
own values on its first row only: `final:<metric>` (the run's last logged value of every
metric), `param:<name>`, `tag:<name>`, `overrides`. Floats are written as Python's shortest
round-trip text, so a reread run is bit-for-bit the one written.

`sweep.json`: the sweep's parent run (id, name, status, tags), its plan (planned, missing,
override order) and how the report was made (the report command, the compared factor).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness.report.load import ReportError, Sweep, SweepRun

RUNS_CSV = "runs.csv"
SWEEP_JSON = "sweep.json"
SWEEP_FIELDS = ["experiment", "parent_id", "parent_name", "status", "tags", "params"]
VERDICT_PREFIX = "verdict/"


def _text(x: float) -> str:
    return "" if not math.isfinite(x) else repr(float(x))


def runs_frame(sweep: Sweep) -> pd.DataFrame:
    """The runs of the sweep, one row per run and epoch (see the module docstring)."""
    runs = sweep.runs
    curve_keys = sorted({k for r in runs for k in r.curves})
    final_keys = sorted({k for r in runs for k in r.final})
    param_keys = sorted({k for r in runs for k in r.params})
    tag_keys = sorted({k for r in runs for k in r.tags})
    rows = []
    for r in runs:
        epochs = max([len(c) for c in r.curves.values()] + [1])
        for e in range(epochs):
            row: dict[str, Any] = {"run_id": r.run_id, "run_name": r.name, "epoch": e + 1}
            for k in curve_keys:
                c = r.curves.get(k, np.array([]))
                row[f"curve:{k}"] = _text(c[e]) if e < len(c) else ""
            if e == 0:
                row |= {f"final:{k}": _text(r.final[k]) for k in final_keys if k in r.final}
                row |= {f"param:{k}": r.params[k] for k in param_keys if k in r.params}
                row |= {f"tag:{k}": r.tags[k] for k in tag_keys if k in r.tags}
                row["overrides"] = " ".join(r.overrides)
            rows.append(row)
    columns = ["run_id", "run_name", "epoch"]
    columns += [f"curve:{k}" for k in curve_keys] + [f"final:{k}" for k in final_keys]
    columns += [f"param:{k}" for k in param_keys] + [f"tag:{k}" for k in tag_keys]
    columns += ["overrides"]
    return pd.DataFrame(rows, columns=columns, dtype=object).fillna("")


def runs_csv(sweep: Sweep) -> bytes:
    buf = io.StringIO()
    runs_frame(sweep).to_csv(buf, index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    return buf.getvalue().encode()


def sweep_json(sweep: Sweep, report_cmd: str, compare: str | None) -> bytes:
    meta = {k: getattr(sweep, k) for k in SWEEP_FIELDS}
    # an earlier report's verdict tags on the parent are its output, not the sweep's
    meta["tags"] = {k: v for k, v in sweep.tags.items() if not k.startswith(VERDICT_PREFIX)}
    meta |= {
        "planned": sweep.planned,
        "missing": sweep.missing,
        "key_order": sweep.key_order,
        "report_command": report_cmd,
        "compare": compare,
    }
    if sweep.missing_overrides:  # a tuned sweep's failed runs (harness.report.extras)
        meta["missing_overrides"] = sweep.missing_overrides
    return (json.dumps(meta, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _float(text: str) -> float:
    return float(text) if text != "" else math.nan


def _curve(values: list[str]) -> np.ndarray:
    """Per-epoch values back to the array load() builds: up to the last logged epoch."""
    logged = [i for i, v in enumerate(values) if v != ""]
    if not logged:
        return np.array([])
    return np.array([_float(v) for v in values[: logged[-1] + 1]])


def read(path: Path) -> tuple[Sweep, str, str | None]:
    """A sweep from its data (runs.csv, or the folder holding it and sweep.json): the sweep,
    the report command it was reported with and its compared factor."""
    path = Path(path)
    if not path.exists():
        raise ReportError(
            f"no report data at {path}: --from-data takes a report folder holding runs.csv and "
            "sweep.json (written by python -m harness.report), or its runs.csv"
        )
    folder = path if path.is_dir() else path.parent
    csv_path = folder / RUNS_CSV if path.is_dir() else path
    meta_path = folder / SWEEP_JSON
    for p in (csv_path, meta_path):
        if not p.is_file():
            raise ReportError(
                f"no {p.name} at {p}: --from-data takes a report folder holding runs.csv and "
                "sweep.json (written by python -m harness.report), or its runs.csv"
            )
    meta = json.loads(meta_path.read_text())
    frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    runs = []
    for run_id, rows in frame.groupby("run_id", sort=False):
        first = rows.iloc[0]

        def prefixed(prefix: str, first: pd.Series = first) -> dict[str, str]:
            return {
                c[len(prefix) :]: first[c]
                for c in frame.columns
                if c.startswith(prefix) and first[c] != ""
            }

        params, tags = prefixed("param:"), prefixed("tag:")
        run = SweepRun(
            run_id=str(run_id),
            name=first["run_name"],
            config_hash=tags.get("config_hash", ""),
            backend=tags.get("backend") or params.get("backend.name", "?"),
            seed=int(float(params.get("seed", "0"))),
            task=tags.get("task") or params.get("data.task") or "binary",
            params=params,
            tags=tags,
            final={k: _float(v) for k, v in prefixed("final:").items()},
            overrides=first["overrides"].split() if first["overrides"] else [],
        )
        read_always = [f"{split}/{m}" for m in ("loss", run.score) for split in ("train", "val")]
        for c in frame.columns:
            key = c[len("curve:") :]
            curve = _curve(list(rows[c])) if c.startswith("curve:") else None
            if curve is not None and (len(curve) or key in read_always):
                run.curves[key] = curve
        runs.append(run)
    sweep = Sweep(
        uri="",
        runs=runs,
        planned=meta["planned"],
        missing=meta["missing"],
        key_order=meta["key_order"],
        missing_overrides=meta.get("missing_overrides", []),
        **{k: meta[k] for k in SWEEP_FIELDS},
    )
    return sweep, meta["report_command"], meta["compare"]
