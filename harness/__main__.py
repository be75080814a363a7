"""`python -m harness [overrides]`: one run; `python -m harness +experiment=NAME -m`: a sweep."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

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
    from harness.store import where_logged

    started: list[str] = []
    try:
        spec = to_spec(cfg)
        result = run(
            spec,
            overrides=list(HydraConfig.get().overrides.task),
            on_started=lambda run_id, _name: started.append(run_id),
        )
    except ConfigError as exc:
        print(f"harness: invalid configuration: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if started:  # also for a run that failed: where its error and traceback are
            for line in where_logged(spec.tracking, started[0]).splitlines():
                print(f"[harness] {line}", file=sys.stderr)
    return result.objective


def _sigterm(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


CONF = Path(__file__).resolve().parent.parent / "conf"


def with_default_launcher(argv: list[str]) -> list[str]:
    """A sweep runs through harness's launcher (hydra/launcher=harness: warm workers, claims
    shared with other sweeps) unless the command line picks another launcher or preset, and
    through harness's sweeper (hydra/sweeper=harness: the basic sweeper's jobs, launched without
    a second composition of what the plan validated, harness.sweep.planned) unless the command line
    or its experiment picks another sweeper. Chosen here rather than in conf/config.yaml:
    Hydra lets the primary config's choice beat the one a preset or experiment makes."""
    if not {"-m", "--multirun"} & set(argv):
        return argv
    added = []
    if not any(re.match(r"[+~]*(hydra/)?launcher=", arg) for arg in argv):
        added.append("hydra/launcher=harness")
    if not any(re.match(r"[+~]*hydra/sweeper=", arg) for arg in argv) and not _picks_sweeper(
        argv
    ):
        added.append("hydra/sweeper=harness")
    return [argv[0], *added, *argv[1:]]


def _picks_sweeper(argv: list[str]) -> bool:
    """Whether an experiment on the command line chooses a sweeper (e.g. harness_tuned), or
    is not one of conf/experiment's (whatever it chooses is then left to it)."""
    for arg in argv:
        found = re.match(r"\+{0,2}experiment=(.+)$", arg)
        if found:
            path = CONF / "experiment" / f"{found.group(1)}.yaml"
            if not path.is_file() or "hydra/sweeper" in path.read_text():
                return True
    return False


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
