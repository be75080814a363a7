"""A run's training and validation sets as MLflow dataset inputs (the UI's Dataset column).

Each split is logged as an `mlflow.data.from_numpy` dataset: its name (the bundled set's name,
or a user file's stem), harness's digest of the split (harness.core.digest: the same in
every backend for the same data and seed, so paired runs visibly share a split), its source
(the user file's path, or the bundled loader), the schema and profile MLflow derives from
the arrays trained on, and the context `training` or `validation`.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from harness.core.data import Dataset
from harness.store.client import retry

CONTEXTS = ("training", "validation")


def _source(data: Dataset) -> Any:
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    path = Path(data.source)
    if data.name == "file" and path.is_absolute():
        with warnings.catch_warnings():  # "" and "file" URIs both map to the local source
            warnings.simplefilter("ignore", UserWarning)
            return resolve_dataset_source(path.as_uri())
    return CodeDatasetSource(tags={"mlflow.source.name": data.source})


def dataset_inputs(data: Dataset) -> list:
    """The two DatasetInput entities of a run: training, then validation."""
    import mlflow.data
    from mlflow.entities import Dataset as DatasetEntity
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    source = _source(data)
    splits = (
        (data.x_train, data.y_train, data.train_digest),
        (data.x_val, data.y_val, data.val_digest),
    )
    inputs = []
    for context, (x, y, digest) in zip(CONTEXTS, splits, strict=True):
        ds = mlflow.data.from_numpy(x, source=source, targets=y, name=data.label, digest=digest)
        inputs.append(
            DatasetInput(
                dataset=DatasetEntity(**ds.to_dict()),
                tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)],
            )
        )
    return inputs


def log_datasets(tracked, data: Dataset) -> None:
    """Attach both splits to the run `tracked` (a harness.store.TrackedRun), on its writer
    thread (the run goes on meanwhile)."""
    t0 = time.perf_counter()

    def write() -> None:
        inputs = dataset_inputs(data)
        retry(lambda: tracked.client.log_inputs(tracked.run_id, datasets=inputs))

    tracked.submit(write)
    tracked.seconds += time.perf_counter() - t0
