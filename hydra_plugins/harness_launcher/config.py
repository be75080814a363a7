"""`hydra/launcher=harness`: its settings, registered in Hydra's ConfigStore."""

from dataclasses import dataclass

from hydra.core.config_store import ConfigStore


@dataclass
class HarnessLauncherConf:
    _target_: str = "hydra_plugins.harness_launcher.harness_launcher.HarnessLauncher"
    # jobs at a time on this machine, each in its warm worker with its share of the cores;
    # null: the config's `parallel` (1, or 2 with +launcher=parallel)
    n_jobs: int | None = None


ConfigStore.instance().store(
    group="hydra/launcher", name="harness", node=HarnessLauncherConf, provider="harness"
)
