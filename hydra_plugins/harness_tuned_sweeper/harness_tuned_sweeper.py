"""The class Hydra instantiates for `hydra/sweeper=harness_tuned` (plugins must live in
hydra_plugins); the sweeper itself is harness.sweep.tuned.TunedSweeper."""

from __future__ import annotations

from harness.sweep.tuned import TunedSweeper


class HarnessTunedSweeper(TunedSweeper):
    pass
