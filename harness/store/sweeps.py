"""A sweep's access to its MLflow experiment: what already finished, stale runs to reap,
the parent run it opens and ends, and the runs it ends when a job or the sweep dies."""

from __future__ import annotations

import os
import socket
from typing import Any

from harness.core.config import TrackingConfig
from harness.store.client import client_for, experiment_id, process_tags, retry, search_runs
from harness.store.names import (
    CONFIG_HASH_TAG,
    HOST_TAG,
    PID_TAG,
    ROLE_JOB,
    ROLE_SWEEP,
    ROLE_TAG,
    run_filter,
)
from harness.store.uri import check_server, redact, resolve_uri
from harness.store.writer import TrackedRun


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """Sweep-level access to one MLflow experiment: created once before any job runs."""

    def __init__(self, cfg: TrackingConfig) -> None:
        self.uri = resolve_uri(cfg)
        check_server(self.uri)
        self.client = client_for(self.uri)  # a new SQLite file gets its schema here, once
        self.experiment_id = retry(lambda: experiment_id(self.client, cfg.experiment, self.uri))

    def _search(self, filter_string: str) -> list:
        return search_runs(self.client, [self.experiment_id], filter_string)

    def finished_hashes(self) -> dict[str, str]:
        """config_hash -> run_id of FINISHED training runs (what a resumed sweep skips)."""
        runs = self._search(run_filter(role=ROLE_JOB, status="FINISHED"))
        return {
            r.data.tags[CONFIG_HASH_TAG]: r.info.run_id
            for r in runs
            if CONFIG_HASH_TAG in r.data.tags
        }

    def reap_stale(self) -> list[str]:
        """Mark KILLED the runs left RUNNING by a process of this host that no longer exists."""
        host = socket.gethostname()
        reaped = []
        for r in self._search(run_filter(status="RUNNING")):
            tags = r.data.tags
            pid = tags.get(PID_TAG, "")
            if tags.get(HOST_TAG) == host and pid.isdigit() and not _pid_alive(int(pid)):
                self.set_terminated(r.info.run_id, "KILLED")
                reaped.append(r.info.run_name)
        return reaped

    def start_sweep(
        self, name: str, tags: dict[str, str], params: dict[str, Any], texts: dict[str, str]
    ) -> str:
        """Open the sweep's parent run; returns its id."""
        all_tags = {**process_tags(), ROLE_TAG: ROLE_SWEEP, **tags}
        redacted = {k: redact(str(v)) for k, v in all_tags.items()}
        run = retry(
            lambda: self.client.create_run(self.experiment_id, run_name=name, tags=redacted)
        )
        tracked = TrackedRun(self.client, run.info.run_id, flush_every_s=0.0)
        tracked.log_params(params)
        for path, text in texts.items():
            tracked.log_text(text, path)
        return run.info.run_id

    def end_sweep(
        self,
        run_id: str,
        status: str,
        summary: dict[str, int],
        texts: dict[str, str],
        tags: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        """End the parent run with the sweep's counts (metrics and tags), other metrics (where
        its time went: harness.sweep.timing) and its reports."""
        tracked = TrackedRun(self.client, run_id, flush_every_s=0.0)
        tracked.log_metrics(
            {**{f"sweep/{k}": v for k, v in summary.items()}, **(metrics or {})}, step=0
        )
        tracked.set_tags({**{f"sweep.{k}": str(v) for k, v in summary.items()}, **(tags or {})})
        for path, text in texts.items():
            tracked.log_text(text, path)
        self.set_terminated(run_id, status)

    def tag_values(self, run_ids: list[str], key: str) -> list[str | None]:
        """One tag of each of these runs (e.g. the parity verdicts of a sweep's jobs)."""
        values: list[str | None] = []
        for i in range(0, len(run_ids), 100):
            ids = ", ".join(f"'{r}'" for r in run_ids[i : i + 100])
            values += [r.data.tags.get(key) for r in self._search(f"attributes.run_id IN ({ids})")]
        return values

    def status(self, run_id: str) -> str:
        return retry(lambda: self.client.get_run(run_id)).info.status

    def set_terminated(self, run_id: str, status: str) -> None:
        retry(lambda: self.client.set_terminated(run_id, status=status))

    def running_children(self, parent_run_id: str) -> list[str]:
        runs = self._search(run_filter(status="RUNNING", parent=parent_run_id))
        return [r.info.run_id for r in runs]
