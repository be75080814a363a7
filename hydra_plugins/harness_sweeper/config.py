"""`hydra/sweeper=harness`: Hydra's basic sweeper's settings, registered in Hydra's ConfigStore."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class HarnessSweeperConf:
    _target_: str = "hydra_plugins.harness_sweeper.harness_sweeper.HarnessSweeper"
    # as Hydra's basic sweeper: jobs per batch (null: all at once), the swept params
    max_batch_size: int | None = None
    params: dict[str, str] | None = None


ConfigStore.instance().store(
    group="hydra/sweeper", name="harness", node=HarnessSweeperConf, provider="harness"
)
