"""Softmax vs logits, measured: how far is the loss a run computes from the exact loss?

Each epoch a backend hands over the validation loss it computed itself (in the run's
dtype, through the configured output form: clipped probabilities, or logits) and the
output layer's pre-activation (the logits) on the same examples. From those:

- `numerics/loss_abs_error`: |that loss - the exact loss|, the exact loss computed in
  float64 from the same logits with log-sum-exp / log-sigmoid and no clipping. Both start
  from the same logits, so the number is the error of the loss computation alone.
- `numerics/clipped_fraction`: share of the validation probabilities at or beyond the
  clipping bounds [eps, 1 - eps]. The probability form clips exactly these (and passes no
  gradient through them); the logits form never clips, so there it says how many the
  probability form would have clipped.

Regression (mean squared error, no probabilities) logs neither.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from backends.base import EpochRecord, TrainInputs
from harness.core.config import Task


def exact_loss(task: Task, y: np.ndarray, logits: np.ndarray) -> float:
    """Cross-entropy from logits in float64, mean over examples (and labels), no clipping."""
    z = np.asarray(logits, dtype=np.float64)
    if task is Task.multiclass:
        labels = np.asarray(y).reshape(-1).astype(np.int64)
        return float(np.mean(logsumexp(z, axis=-1) - z[np.arange(len(z)), labels]))
    t = np.asarray(y, dtype=np.float64).reshape(z.shape)
    # -t log s(z) - (1 - t) log(1 - s(z)) = log(1 + e^z) - t z
    return float(np.mean(np.logaddexp(0.0, z) - t * z))


def clipped_fraction(probs: np.ndarray, eps: float) -> float:
    """Share of probabilities the cross-entropy clips, bounds taken in their own dtype."""
    p = np.asarray(probs)
    lo, hi = np.asarray(eps, dtype=p.dtype), np.asarray(1.0 - eps, dtype=p.dtype)
    return float(np.mean((p <= lo) | (p >= hi)))


def epoch_numerics(inputs: TrainInputs, record: EpochRecord) -> dict[str, float]:
    """This epoch's numerics/* metrics (empty for regression or without logits)."""
    if inputs.task is Task.regression or record.val_logits is None:
        return {}
    with np.errstate(all="ignore"):  # overflowing logits give inf, which is not logged
        exact = exact_loss(inputs.task, inputs.data.y_val, record.val_logits)
    return {
        "numerics/loss_abs_error": abs(record.val_loss - exact),
        "numerics/clipped_fraction": clipped_fraction(
            record.val_pred, inputs.config.train.prob_clip_eps
        ),
    }
