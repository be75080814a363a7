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
    key = _kept_key(master, overrides)
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


def _kept_key(master: DictConfig, overrides: list[str]) -> tuple:
    """Which sweep and job a kept composition is: the sweep folder (its ${now:...} resolved)
    tells one sweep's jobs from another's."""
    hydra_overrides = list(OmegaConf.to_container(master.hydra.overrides.hydra))
    where = (str(master.hydra.job.config_name), str(master.hydra.sweep.dir))
    return (*where, *hydra_overrides, "--", *overrides)


class Composer:
    """A sweep's jobs composed for its plan: each configuration once by Hydra, its other seeds
    derived from it.

    A sweep of N seeds composes N times as many jobs as it has configurations, and Hydra's
    composition of one costs ~150 ms on a 2-core machine (its defaults list, every config
    file read again). A job whose overrides differ from a job composed already only in its
    `seed=N` is that job's config with the seed set as Hydra sets an override (the parsed
    value, merged), its task overrides and override_dirname as Hydra writes them: ~10 ms.
    tests/test_sweep_timing.py holds the two equal, YAML for YAML, for every job of the
    course sweep and a command-line sweep.
    """

    SEED = "seed"

    def __init__(self, loader: ConfigLoader, master: DictConfig) -> None:
        self.loader, self.master = loader, master
        self.parser = OverridesParser.create(config_loader=loader)
        self.bases: dict[tuple[str, ...], tuple[DictConfig, str]] = {}

    def compose(self, overrides: list[str], keep: bool = False) -> DictConfig:
        """compose_job(loader, master, overrides, keep), from a sibling seed where there is one."""
        at = [i for i, line in enumerate(overrides) if line.startswith(f"{self.SEED}=")]
        if len(at) != 1:
            return compose_job(self.loader, self.master, overrides, keep=keep)
        key = (*overrides[: at[0]], f"{self.SEED}=*", *overrides[at[0] + 1 :])
        if key not in self.bases:
            cfg = compose_job(self.loader, self.master, overrides, keep=keep)
            self.bases[key] = (copy.deepcopy(cfg), overrides[at[0]])
            return cfg
        base, base_line = self.bases[key]
        try:
            cfg = self._with_seed(base, base_line, overrides[at[0]])
        except Exception:  # e.g. a seed that is not an int: Hydra's own error, from Hydra
            return compose_job(self.loader, self.master, overrides, keep=keep)
        if keep:
            _COMPOSED[_kept_key(self.master, overrides)] = copy.deepcopy(cfg)
        return cfg

    def _with_seed(self, base: DictConfig, base_line: str, line: str) -> DictConfig:
        (override,) = self.parser.parse_overrides([line])
        cfg = copy.deepcopy(base)
        OmegaConf.update(cfg, self.SEED, override.value(), merge=True)
        task = list(cfg.hydra.overrides.task)
        task[task.index(base_line)] = line
        cfg.hydra.overrides.task = task
        # hydra.job.override_dirname, as Hydra makes it: the task overrides not excluded,
        # sorted, joined by item_sep, each `=` written as kv_sep
        conf = cfg.hydra.job.config.override_dirname
        lines = sorted(
            o.input_line for o in self.parser.parse_overrides(task)
            if o.key_or_group not in conf.exclude_keys
        )
        cfg.hydra.job.override_dirname = conf.item_sep.join(lines).replace("=", conf.kv_sep)
        return cfg


def forget_composed() -> None:
    """Drop the kept compositions (a sweep that ends before its launcher took them)."""
    _COMPOSED.clear()
