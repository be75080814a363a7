"""Reading a store without writing to it: the experiments, runs, metric histories and
artifacts that reports, the dashboard and the benchmarks read."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness.store.client import PAGE_SIZE, client_for, retry, search_runs
from harness.store.names import MLFLOW_DEFAULT_EXPERIMENT, run_filter

if TYPE_CHECKING:
    from mlflow.entities import Experiment, Metric, Run

NEWEST_FIRST = ["attributes.start_time DESC", "attributes.run_id ASC"]  # ties in a fixed order


class Reader:
    """Read access to the store at `uri`; it creates nothing but a SQLite file's schema."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.client = client_for(uri)

    def experiment(self, name: str) -> Experiment | None:
        """The active experiment of this name, None if there is none (or it was deleted)."""
        exp = retry(lambda: self.client.get_experiment_by_name(name))
        return exp if exp is not None and exp.lifecycle_stage == "active" else None

    def experiments(self) -> list[tuple[str, str]]:
        """(name, id) of the active experiments, most recently updated first, without
        MLflow's always-empty 'Default'."""
        found = retry(
            lambda: self.client.search_experiments(order_by=["last_update_time DESC"])
        )
        return [
            (e.name, e.experiment_id)
            for e in found
            if e.name != MLFLOW_DEFAULT_EXPERIMENT and e.lifecycle_stage == "active"
        ]

    def runs(
        self,
        experiment_id: str,
        role: str | None = None,
        status: str | None = None,
        parent: str | None = None,
        page_size: int = PAGE_SIZE,
    ) -> list[Run]:
        """Every active run of the experiment with this role, status and parent (each
        optional), newest first."""
        return search_runs(
            self.client, [experiment_id], run_filter(role, status, parent),
            order_by=NEWEST_FIRST, page_size=page_size,
        )

    def run(self, run_id: str) -> Run | None:
        """The run with this id, None if the store has none."""
        from mlflow.exceptions import MlflowException

        try:
            return retry(lambda: self.client.get_run(run_id))
        except MlflowException:
            return None

    def metric_history(self, run_id: str, key: str) -> list[Metric]:
        """Every value logged for one metric of a run (step, timestamp, value)."""
        return retry(lambda: self.client.get_metric_history(run_id, key))

    def artifact_text(self, run_id: str, path: str) -> str | None:
        """A text artifact of a run, None if the run has no such artifact."""
        from mlflow.exceptions import MlflowException

        os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no bar on stderr
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self.client.download_artifacts(run_id, path, tmp)
                return Path(local).read_text()
            except (MlflowException, OSError, UnicodeDecodeError):
                return None
