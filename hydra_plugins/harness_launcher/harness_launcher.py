"""The class Hydra instantiates for `hydra/launcher=harness` (plugins must live in
hydra_plugins); the launcher itself is harness.sweep.launcher.WarmLauncher."""

from __future__ import annotations

from harness.sweep.launcher import WarmLauncher


class HarnessLauncher(WarmLauncher):
    pass
