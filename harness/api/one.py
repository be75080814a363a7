"""`harness.run(...)`: one configuration, composed by Hydra from conf/ as the CLI composes it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.api.errors import HarnessError, hydra_message
from harness.core.config import Config, ConfigError

SHOWN = ("val/loss", "val/accuracy", "val/r2")


@dataclass(frozen=True)
class Result:
    """One finished run: its final metrics (keyed as in MLflow) and where MLflow keeps it."""

    run_name: str
    run_id: str | None  # None with tracking.enabled=false
    config_hash: str
    experiment: str
    metrics: dict[str, float] = field(repr=False)
    epochs: int = 0
    wall_s: float = 0.0
    tracking_uri: str = ""

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={self.metrics[k]:.4g}" for k in SHOWN if k in self.metrics)
        return (
            f"Result({self.run_name}: {shown}; {self.epochs} epochs, {self.wall_s:.1f} s; "
            f"run {self.run_id} in '{self.experiment}')"
        )


def compose(overrides: Sequence[str]) -> Config:
    """conf/ composed with these overrides and checked against the schema, as the CLI does."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException

    from harness.core.config import register_configs, to_spec
    from harness.core.paths import CONF_DIR

    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = hydra_compose("config", overrides=list(overrides))
    except HydraException as exc:
        message = hydra_message(exc)
        if "--multirun" in message:
            message += "\n(from Python: harness.sweep(EXPERIMENT, ...) sweeps)"
        raise HarnessError(message) from None
    try:
        return to_spec(cfg)
    except ConfigError as exc:
        raise HarnessError(f"harness: invalid configuration: {exc}") from None


def run(*overrides: str, tracking_uri: str | None = None) -> Result:
    """Train one configuration, e.g. run("backend=lightning", "seed=3"), as
    `python -m harness OVERRIDES` does; tracked in MLflow, returns its Result."""
    from harness.api.errors import store_uri
    from harness.run.train import run as train

    spec = compose(overrides)
    if tracking_uri and not spec.tracking.uri:  # as $MLFLOW_TRACKING_URI: tracking.uri= wins
        spec.tracking.uri = tracking_uri
    started: dict[str, str] = {}
    try:
        result = train(
            spec,
            overrides=list(overrides),
            on_started=lambda run_id, name: started.update(run_id=run_id),
        )
    except ConfigError as exc:  # found once the data is read (its task, its outputs)
        raise HarnessError(f"harness: invalid configuration: {exc}") from None
    return Result(
        run_name=result.run_name,
        run_id=started.get("run_id"),
        config_hash=result.config_hash,
        experiment=spec.tracking.experiment,
        metrics=dict(result.final),
        epochs=result.epochs_run,
        wall_s=result.wall_s,
        tracking_uri=store_uri(spec.tracking.uri),
    )
