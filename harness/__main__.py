"""`python -m harness [overrides]`: one run; `python -m harness +experiment=NAME -m`: a sweep."""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from harness.config import ConfigError, register_configs, to_spec

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from harness.run import run

    try:
        spec = to_spec(cfg)
        result = run(spec, overrides=list(HydraConfig.get().overrides.task))
    except ConfigError as exc:
        print(f"harness: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return result.objective


if __name__ == "__main__":
    main()
