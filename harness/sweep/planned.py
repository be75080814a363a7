"""The harness's default sweeper: Hydra's basic sweeper, less its second composition of
every job.

Before any job runs, Hydra's basic sweeper composes every job of a batch once to validate it
(`validate_batch_is_legal`), and the harness sweep callback has just composed and validated
each of them (harness.sweep.callback.plan: the composition, the typed config, the data and
every range check), keeping the composed configs for the launcher. Composing a job costs
~70-100 ms on a 2-core machine: a 320-job sweep spent 20-30 s composing each job a second
time, before its first job started. This sweeper skips that second composition for the jobs
the plan validated (same overrides) and validates the others as Hydra does. Everything else
is Hydra's BasicSweeper: the jobs, their order, batches (`max_batch_size`), `params`.

`python -m harness ... -m` picks it unless the command line or the experiment chooses a
sweeper (harness.__main__.with_defaults); `hydra/sweeper=basic` gives Hydra's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

from harness.sweep.job import Plan


class PlannedSweeper(BasicSweeper):
    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        assert self.config is not None
        plan = Plan.read(Path(str(self.config.hydra.sweep.dir)))
        validated = {tuple(job["overrides"]) for job in plan.jobs}
        unplanned = [list(job) for job in batch if tuple(job) not in validated]
        if unplanned:
            super().validate_batch_is_legal(unplanned)
