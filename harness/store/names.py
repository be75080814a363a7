"""Every tag name and run role harness writes to MLflow or selects runs by, in one place."""

from __future__ import annotations

# The role of a run: what a reader selects runs by
ROLE_TAG = "harness.role"
ROLE_JOB = "job"  # one training (or vectorization) run
ROLE_SWEEP = "sweep"  # a sweep's parent run; its jobs are nested under it

PARENT_TAG = "mlflow.parentRunId"  # MLflow nests runs by this tag, across processes
NOTE_TAG = "mlflow.note.content"  # the description MLflow's UI shows on a run's page
HOST_TAG, PID_TAG = "harness.host", "harness.pid"  # where a run lives: tells killed from live
GPU_TAG = "cuda_visible_devices"  # the GPU(s) a run was given (harness.sweep.gpus)
CONFIG_HASH_TAG = "config_hash"  # a run's identity: what a resumed sweep skips
OVERRIDES_TAG = "hydra_overrides"  # the command-line overrides that made the run
ERROR_TAG = "error"  # why a FAILED run failed
DIVERGED_TAG = "diverged"
MODEL_URI_TAG = "model_uri"  # tracking.log_model=true: where the trained model is

CONFIG_ARTIFACT = "config.yaml"  # every run's resolved config
TRACEBACK_ARTIFACT = "error/traceback.txt"
SWEEP_PLAN_ARTIFACT = "sweep.json"  # a sweep's planned jobs (names, hashes, overrides)

MLFLOW_DEFAULT_EXPERIMENT = "Default"  # MLflow's own, always there and empty

STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")


def run_filter(
    role: str | None = None, status: str | None = None, parent: str | None = None
) -> str:
    """An MLflow search filter for runs of this role, status and parent run (each optional)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown run status {status!r}; one of {', '.join(STATUSES)}")
    clauses = []
    if status is not None:
        clauses.append(f"attributes.status = '{status}'")
    if role is not None:
        clauses.append(f"tags.`{ROLE_TAG}` = '{role}'")
    if parent is not None:
        clauses.append(f"tags.`{PARENT_TAG}` = '{parent}'")
    return " and ".join(clauses)
