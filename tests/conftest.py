"""Shared fixtures: the real config composed by Hydra, a throwaway MLflow store, the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from harness.core.config import Config, register_configs, to_spec

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

register_configs()


def make_spec(*overrides: str) -> Config:
    """The real composed config, with overrides, as the run spec dataclass."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    return to_spec(cfg)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A fresh SQLite MLflow store in tmp_path."""
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 600):
    """Run `python -m harness ARGS` as a user would, in cwd (results/ lands there)."""
    full_env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
