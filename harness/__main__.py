"""`python -m harness [overrides]`: one run; `python -m harness +experiment=NAME -m`: a sweep."""

from __future__ import annotations

import re
import signal
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from harness.core.config import ConfigError, register_configs, to_spec

register_configs()


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float:
    if HydraConfig.get().mode is RunMode.MULTIRUN:
        from harness.sweep.job import run_task

        # a job of another launcher (joblib, submitit): in this process's warm worker;
        # never raises for a failed job. The harness launcher runs its jobs itself.
        return run_task(cfg)
    from harness.run.train import run

    try:
        spec = to_spec(cfg)
        result = run(spec, overrides=list(HydraConfig.get().overrides.task))
    except ConfigError as exc:
        print(f"harness: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return result.objective


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def with_default_launcher(argv: list[str]) -> list[str]:
    """A sweep runs through harness's launcher (hydra/launcher=harness: warm workers, claims
    shared with other sweeps) unless the command line picks another launcher or preset.
    Chosen here rather than in conf/config.yaml: Hydra lets the primary config's choice of
    launcher beat the one a +launcher=... preset makes."""
    picked = any(re.match(r"[+~]*(hydra/)?launcher=", arg) for arg in argv)
    if picked or not {"-m", "--multirun"} & set(argv):
        return argv
    return [argv[0], "hydra/launcher=harness", *argv[1:]]


def cli() -> None:
    # Ctrl-C and SIGTERM end the current run (and a sweep, KILLED: harness.sweep.callback).
    # SIGINT is set explicitly: a process started in the background by a non-interactive
    # shell inherits it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    sys.argv = with_default_launcher(sys.argv)
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    cli()
