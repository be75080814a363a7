"""`python -m harness [overrides]`: one run; `python -m harness +experiment=NAME -m`: a sweep."""

from __future__ import annotations

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
        from harness.sweep.callback import run_job

        return run_job(cfg)  # in a warm worker; never raises for a failed job
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


def cli() -> None:
    from harness.sweep import callback as sweep

    # Ctrl-C and SIGTERM end the current run and the sweep KILLED. SIGINT is set explicitly:
    # a process started in the background by a non-interactive shell inherits it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _sigterm)
    try:
        main()
    except KeyboardInterrupt:
        sweep.abort("interrupted")
        sys.exit(130)
    finally:
        sweep.close_parent_if_open()  # Hydra itself failed mid-sweep: no RUNNING-forever parent
    sys.exit(sweep.STATE.exit_code)


if __name__ == "__main__":
    cli()
