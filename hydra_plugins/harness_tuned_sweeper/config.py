"""`hydra/sweeper=harness_tuned`: its settings (harness.sweep.tuned.TunedSweeperConf),
registered in Hydra's ConfigStore."""

from hydra.core.config_store import ConfigStore

from harness.sweep.tuned import TunedSweeperConf

ConfigStore.instance().store(
    group="hydra/sweeper", name="harness_tuned", node=TunedSweeperConf, provider="harness"
)
