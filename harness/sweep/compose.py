"""How a sweep's jobs are enumerated and composed, as Hydra's basic sweeper and launchers do:
shared by the sweep callback (the plan) and the tuned sweeper (its stages)."""

from __future__ import annotations

import copy
import itertools

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from harness.core.config import ConfigError


def job_overrides(params: dict[str, str], arguments: list[str], loader=None) -> list[list[str]]:
    """The jobs' override lists, in Hydra's basic sweeper's order: the sweeper's params, then
    the command line's; the same key again replaces it; a list sweeps every value."""
    parser = OverridesParser.create(config_loader=loader)
    overrides = parser.parse_overrides([f"{k}={v}" for k, v in params.items()] + list(arguments))
    lists: dict[str, list[str]] = {}
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise ConfigError(
                    f"{key}: only lists of values can be swept (not {override.value_type})"
                )
            lists[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            lists[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*lists.values())]


# jobs the plan composed, kept for the launcher in the same process: a composition costs
# ~70 ms (Hydra's defaults list, every config file), twice per job without this
_COMPOSED: dict[tuple, DictConfig] = {}


def compose_job(
    loader: ConfigLoader, master: DictConfig, overrides: list[str], keep: bool = False
) -> DictConfig:
    """A job's config (its `hydra` node included), composed as Hydra's launchers compose it:
    the sweep's hydra overrides, then the job's; the sweep's resolver cache copied, so that
    every job's ${now:...} (the sweep folder) is the sweep's.

    keep: also keep a copy for the next call with the same overrides (the plan composes
    every job before the launcher composes it again), which takes it.
    """
    hydra_overrides = list(OmegaConf.to_container(master.hydra.overrides.hydra))
    # the sweep folder (its ${now:...} resolved) tells one sweep's jobs from another's
    where = (str(master.hydra.job.config_name), str(master.hydra.sweep.dir))
    key = (*where, *hydra_overrides, "--", *overrides)
    cfg = _COMPOSED.pop(key, None)
    if cfg is None:
        cfg = loader.load_configuration(
            config_name=master.hydra.job.config_name,
            overrides=hydra_overrides + list(overrides),
            run_mode=RunMode.RUN,
        )
        OmegaConf.copy_cache(from_config=master, to_config=cfg)
    if keep:
        _COMPOSED[key] = copy.deepcopy(cfg)
    return cfg


def forget_composed() -> None:
    """Drop the kept compositions (a sweep that ends before its launcher took them)."""
    _COMPOSED.clear()
