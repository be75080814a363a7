"""Where the project's own folders are: the configs Hydra composes and the committed results."""

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = PROJECT_ROOT / "conf"
EXPERIMENTS_DIR = CONF_DIR / "experiment"
RESULTS_DIR = PROJECT_ROOT / "results"
