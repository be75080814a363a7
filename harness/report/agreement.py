"""`python -m harness.report --agreement REFERENCE CANDIDATE`: how closely two trainings of
the same sweep agree, number by number, e.g. a committed report's data against the same
sweep rerun on another CPU.

Both folders hold a report's data (runs.csv: one row per run and epoch). Runs are matched by
name (a name is one configuration) and epoch. For every per-epoch curve and every final
metric that training determines (timings and throughput are left out: they are the
machine's), it counts the values compared, those equal bit for bit, and the largest
absolute and relative difference. The statement it prints is what the issue asks for:
which numbers match bitwise on the other machine, and which only to a tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.report.load import ReportError

MACHINE_METRICS = ("final:time/", "final:throughput/")  # the machine's, not the training's
KEY = ["run_name", "epoch"]


def _runs(folder: Path) -> pd.DataFrame:
    path = Path(folder) / "runs.csv"
    if not path.is_file():
        raise ReportError(
            f"{folder}: no runs.csv; give a report folder (results/<experiment>, or the "
            "results/local/<experiment> that `python -m harness.report --reproduce "
            "<experiment> --out results/local` writes)"
        )
    return pd.read_csv(path, dtype={"run_name": str})


def _value_columns(frame: pd.DataFrame) -> list[str]:
    return [
        c for c in frame.columns
        if c.startswith(("curve:", "final:")) and not c.startswith(MACHINE_METRICS)
    ]


def compare(reference: Path, candidate: Path) -> pd.DataFrame:
    """One row per metric: values compared, equal bitwise, largest |difference| and relative."""
    ref, cand = _runs(reference), _runs(candidate)
    columns = [c for c in _value_columns(ref) if c in set(_value_columns(cand))]
    both = ref[KEY + columns].merge(cand[KEY + columns], on=KEY, suffixes=("@ref", "@cand"))
    if both.empty:
        raise ReportError(
            f"{reference} and {candidate} share no run (matched by run name and epoch): "
            "compare two reports of the same experiment"
        )
    rows = []
    for column in columns:
        a = both[f"{column}@ref"].to_numpy(dtype=float)
        b = both[f"{column}@cand"].to_numpy(dtype=float)
        present = ~(np.isnan(a) & np.isnan(b))
        a, b = a[present], b[present]
        if not len(a):
            continue
        diff = np.abs(a - b)
        scale = np.maximum(np.abs(a), np.abs(b))
        relative = np.divide(diff, scale, out=np.zeros_like(diff), where=scale > 0)
        rows.append({
            "metric": column,
            "values": int(len(a)),
            "bitwise_equal": int(np.sum(a.view(np.int64) == b.view(np.int64))),
            "max_abs_diff": float(np.nanmax(diff)),
            "max_rel_diff": float(np.nanmax(relative)),
        })
    return pd.DataFrame(rows)


def _machines(frame: pd.DataFrame) -> str:
    cpus = sorted(frame["tag:cpu"].dropna().unique()) if "tag:cpu" in frame else []
    commits = sorted(frame["tag:git_commit"].dropna().unique()) if "tag:git_commit" in frame else []
    return f"CPU {', '.join(map(str, cpus)) or 'not recorded'}; commit {', '.join(commits) or '?'}"


def render(reference: Path, candidate: Path, table: pd.DataFrame) -> str:
    """The agreement as markdown: the machines, the statement, the table."""
    ref, cand = _runs(reference), _runs(candidate)
    runs = len(set(ref["run_name"]) & set(cand["run_name"]))
    exact = table[table["bitwise_equal"] == table["values"]]["metric"].tolist()
    inexact = table[table["bitwise_equal"] < table["values"]]
    lines = [
        f"# Agreement: {reference} against {candidate}",
        "",
        f"- reference: {_machines(ref)}",
        f"- candidate: {_machines(cand)}",
        f"- {runs} runs matched by name, every epoch of their curves and their final metrics "
        "(timings and throughput left out)",
        "",
        f"Bitwise equal everywhere: {', '.join(exact) if exact else 'none'}.",
    ]
    if len(inexact):
        worst = inexact.sort_values("max_rel_diff").iloc[-1]
        lines.append(
            f"Not bitwise equal: {len(inexact)} metrics; the largest relative difference is "
            f"{worst['max_rel_diff']:.3g} ({worst['metric']})."
        )
    lines += ["", "| metric | values | bitwise equal | max abs diff | max rel diff |",
              "|---|---|---|---|---|"]
    for r in table.itertuples():
        lines.append(
            f"| {r.metric} | {r.values} | {r.bitwise_equal} | {r.max_abs_diff:.3g} "
            f"| {r.max_rel_diff:.3g} |"
        )
    return "\n".join(lines) + "\n"


def agreement(reference: Path, candidate: Path, out: Path | None = None) -> str:
    """Compare, render, and write to `out` when given; the markdown either way."""
    text = render(reference, candidate, compare(reference, candidate))
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)
    return text
