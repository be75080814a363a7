"""The class Hydra instantiates for `hydra/sweeper=harness` (plugins must live in
hydra_plugins); the sweeper itself is harness.sweep.planned.PlannedSweeper."""

from __future__ import annotations

from harness.sweep.planned import PlannedSweeper


class HarnessSweeper(PlannedSweeper):
    pass
