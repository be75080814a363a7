"""The lesson experiments' numbers, as pure functions over pandas DataFrames (no I/O, no MLflow).

- overfitting: the epoch where validation loss turns up, and the generalisation gap;
- data_size: learning curves (a metric's mean and spread per training fraction);
A history is one run's per-epoch metrics: an `epoch` column (1-based) and a column per
metric key (`train/loss`, `val/loss`, ...). A runs table has one row per run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def turn_up_epoch(history: pd.DataFrame, key: str = "val/loss", rise: float = 0.02) -> int | None:
    """The epoch of the lowest `key` when it later rises more than `rise` (relative) above
    that low, i.e. where validation loss turns up; None when it never does (no overfitting
    seen). A relative rise, not any uptick, so that epoch-to-epoch noise is not a turn."""
    values = history[key].to_numpy(dtype=float)
    if len(values) == 0 or not np.all(np.isfinite(values)):
        return None
    low = int(np.argmin(values))
    later = values[low + 1 :]
    if later.size == 0 or later.max() <= values[low] * (1 + rise) + 1e-12:
        return None
    return int(history["epoch"].to_numpy()[low])


def generalisation_gap(
    history: pd.DataFrame, epoch: int | None = None, metric: str = "loss"
) -> float:
    """val/<metric> - train/<metric> at `epoch` (default: the last epoch)."""
    row = history.iloc[-1] if epoch is None else history[history["epoch"] == epoch].iloc[0]
    return float(row[f"val/{metric}"] - row[f"train/{metric}"])


def overfitting_summary(histories: pd.DataFrame, by: list[str], rise: float = 0.02) -> pd.DataFrame:
    """Per run (rows of `histories` grouped by `run_id`): the turn-up epoch, the lowest
    validation loss, the final gap and how much validation loss rose from its low; then per
    `by` group: the mean of each, the runs, and how many of them turned up."""
    rows = []
    for run_id, h in histories.sort_values("epoch").groupby("run_id", sort=False):
        turn = turn_up_epoch(h, rise=rise)
        low = float(h["val/loss"].min())
        rows.append({
            **{k: h[k].iloc[0] for k in by},
            "run_id": run_id,
            "turn_up_epoch": math.nan if turn is None else turn,
            "min_val_loss": low,
            "final_gap": generalisation_gap(h),
            "val_loss_rise": float(h["val/loss"].iloc[-1]) - low,
        })
    per_run = pd.DataFrame(rows)
    grouped = per_run.groupby(by, sort=False)
    summary = grouped[["turn_up_epoch", "min_val_loss", "final_gap", "val_loss_rise"]].mean()
    summary["runs"] = grouped.size()
    summary["turned_up"] = grouped["turn_up_epoch"].count()
    return summary.reset_index()


def learning_curve(
    runs: pd.DataFrame, x: str, y: str, by: list[str], z: float = 1.96
) -> pd.DataFrame:
    """Mean, standard deviation, count and a normal-approximation interval (mean +- z * sem)
    of `y` at each value of `x`, per `by` group; rows sorted by group, then x."""
    grouped = runs.groupby([*by, x])[y]
    curve = grouped.agg(["mean", "std", "count"]).reset_index()
    sem = curve["std"].fillna(0.0) / np.sqrt(curve["count"])
    curve["low"], curve["high"] = curve["mean"] - z * sem, curve["mean"] + z * sem
    return curve.sort_values([*by, x], kind="stable").reset_index(drop=True)


def fraction_to_reach(curve: pd.DataFrame, x: str, target: float, by: list[str]) -> pd.DataFrame:
    """Per group: the smallest `x` whose mean reaches `target` (NaN: none does), e.g. the
    training fraction at which a model first reaches 90% validation accuracy."""
    out = []
    for key, g in curve.groupby(by, sort=False):
        reached = g[g["mean"] >= target]
        key = key if isinstance(key, tuple) else (key,)
        out.append({**dict(zip(by, key, strict=True)),
                    x: float(reached[x].min()) if len(reached) else math.nan})
    return pd.DataFrame(out)
