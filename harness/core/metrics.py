"""Task metrics computed in NumPy from each backend's predictions.

Every backend hands the harness its outputs (probabilities for classification, values for
regression); the metrics are computed here once, so the keys and their meaning are the
same whatever framework trained the model.
"""

from __future__ import annotations

import numpy as np

from harness.core.config import Task


def task_metrics(task: Task, y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Metrics of one split, keyed without the split prefix (e.g. 'accuracy')."""
    pred = np.asarray(pred, dtype=np.float64)
    if task is Task.binary:
        hit = (pred.reshape(-1) >= 0.5) == (y.reshape(-1) >= 0.5)
        return {"accuracy": float(hit.mean())}
    if task is Task.multiclass:
        return {"accuracy": float((pred.argmax(axis=1) == y.reshape(-1)).mean())}
    if task is Task.multilabel:
        hits = (pred >= 0.5) == (y >= 0.5)
        return {
            "accuracy": float(hits.all(axis=1).mean()),  # subset (exact-match) accuracy
            "hamming_accuracy": float(hits.mean()),  # per-label accuracy
        }
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    err = pred.reshape(-1) - y
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot > 0:
        r2 = 1.0 - ss_res / ss_tot
    else:  # constant targets: scikit-learn's convention (1 if predicted exactly, else 0)
        r2 = 1.0 if ss_res == 0 else 0.0
    return {"mae": float(np.mean(np.abs(err))), "r2": r2}
