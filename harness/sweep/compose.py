"""How a sweep's jobs are enumerated and composed, as Hydra's basic sweeper and launchers do:
shared by the sweep callback (the plan) and the tuned sweeper (its stages)."""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from hydra.core.config_loader import ConfigLoader
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from harness.core.config import Config, ConfigError, to_spec


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


@dataclass
class Kept:
    """A job the plan made, kept for the launcher of the same process: its spec, and its
    config (the `hydra` node included) made when the launcher asks for it."""

    spec: Config
    config: Callable[[], DictConfig]


# jobs the plan made, kept for the launcher in the same process: a composition costs
# ~70-150 ms (Hydra's defaults list, every config file), twice per job without this
_COMPOSED: dict[tuple, Kept] = {}


def compose_job(loader: ConfigLoader, master: DictConfig, overrides: list[str]) -> DictConfig:
    """A job's config (its `hydra` node included), composed as Hydra's launchers compose it:
    the sweep's hydra overrides, then the job's; the sweep's resolver cache copied, so that
    every job's ${now:...} (the sweep folder) is the sweep's. The plan's kept config when it
    kept one (Composer.spec with keep)."""
    kept = _COMPOSED.pop(_kept_key(master, overrides), None)
    if kept is not None:
        return kept.config()
    hydra_overrides = list(OmegaConf.to_container(master.hydra.overrides.hydra))
    cfg = loader.load_configuration(
        config_name=master.hydra.job.config_name,
        overrides=hydra_overrides + list(overrides),
        run_mode=RunMode.RUN,
    )
    OmegaConf.copy_cache(from_config=master, to_config=cfg)
    return cfg


def take_composed(master: DictConfig, overrides: list[str]) -> Kept | None:
    """The job the plan of this process kept for the launcher, if it kept it."""
    return _COMPOSED.pop(_kept_key(master, overrides), None)


def task_spec(cfg: DictConfig) -> Config:
    """The run spec of a job's config: the config less its `hydra` node (left as it was)."""
    task = copy.deepcopy(cfg)
    with open_dict(task):
        del task["hydra"]
    return to_spec(task)


def _kept_key(master: DictConfig, overrides: list[str]) -> tuple:
    """Which sweep and job a kept composition is: the sweep folder (its ${now:...} resolved)
    tells one sweep's jobs from another's."""
    hydra_overrides = list(OmegaConf.to_container(master.hydra.overrides.hydra))
    where = (str(master.hydra.job.config_name), str(master.hydra.sweep.dir))
    return (*where, *hydra_overrides, "--", *overrides)


@dataclass
class _Base:
    """The first job of a configuration's seeds, composed by Hydra: the others derive from it."""

    cfg: DictConfig  # never handed out: copied
    task: DictConfig  # cfg less its `hydra` node
    line: str  # its `seed=N` override


class Composer:
    """A sweep's jobs made for its plan: each configuration composed once by Hydra, its other
    seeds derived from it.

    A sweep of N seeds composes N times as many jobs as it has configurations, and Hydra's
    composition of one costs ~150 ms on a 2-core machine (its defaults list, every config
    file read again). A job whose overrides differ from a job composed already only in its
    `seed=N` is that job's config with the seed set as Hydra sets an override (the parsed
    value, merged), its task overrides and override_dirname as Hydra writes them.
    The plan needs only each job's spec (`spec`): a derived job's is made from the task part
    alone (~7 ms), its whole config (~15 ms, the `hydra` node is most of it) only when the
    launcher asks for it. tests/test_sweep_timing.py holds both equal to Hydra's own
    composition, for every job of the course sweep and a command-line sweep.
    """

    SEED = "seed"

    def __init__(self, loader: ConfigLoader, master: DictConfig) -> None:
        self.loader, self.master = loader, master
        self.parser = OverridesParser.create(config_loader=loader)
        self.bases: dict[tuple[str, ...], _Base] = {}

    def compose(self, overrides: list[str]) -> DictConfig:
        """compose_job(loader, master, overrides), from a sibling seed where there is one."""
        key, line = self._group(overrides)
        base = self.bases.get(key) if key else None
        if base is not None and base.line != line:
            try:
                return self._with_seed(base, line)
            except Exception:  # e.g. a seed that is not an int: Hydra's own error, from Hydra
                pass
        return self._hydra(overrides, key, line)[0]

    def spec(self, overrides: list[str], keep: bool = False) -> Config:
        """The job's spec; keep: its config kept for this process's launcher (compose_job)."""
        key, line = self._group(overrides)
        base = self.bases.get(key) if key else None
        spec = None
        if base is not None and base.line != line:
            try:
                task = copy.deepcopy(base.task)
                OmegaConf.update(task, self.SEED, self._value(line), merge=True)
            except Exception:  # e.g. a seed that is not an int: Hydra's own error, from Hydra
                pass
            else:
                spec = to_spec(task)
                make = functools.partial(self._derived, base, line, list(overrides))
        if spec is None:
            cfg, task = self._hydra(overrides, key, line)
            spec = to_spec(task)
            make = functools.partial(lambda cfg: cfg, cfg)
        if keep:
            _COMPOSED[_kept_key(self.master, overrides)] = Kept(spec, make)
        return spec

    def _group(self, overrides: list[str]) -> tuple[tuple[str, ...] | None, str]:
        """The job's configuration (its overrides with the seed as `seed=*`) and seed line;
        (None, "") for a job without exactly one seed override."""
        at = [i for i, line in enumerate(overrides) if line.startswith(f"{self.SEED}=")]
        if len(at) != 1:
            return None, ""
        return (*overrides[: at[0]], f"{self.SEED}=*", *overrides[at[0] + 1 :]), overrides[at[0]]

    def _hydra(
        self, overrides: list[str], key: tuple[str, ...] | None, line: str
    ) -> tuple[DictConfig, DictConfig]:
        """Hydra's composition, and its task part (a copy less `hydra`); the first of a
        configuration's seeds becomes the base of the others."""
        cfg = compose_job(self.loader, self.master, overrides)
        task = copy.deepcopy(cfg)
        with open_dict(task):
            del task["hydra"]
        if key is not None and key not in self.bases:
            self.bases[key] = _Base(copy.deepcopy(cfg), task, line)
        return cfg, task

    def _value(self, line: str):
        (override,) = self.parser.parse_overrides([line])
        return override.value()

    def _derived(self, base: _Base, line: str, overrides: list[str]) -> DictConfig:
        try:
            return self._with_seed(base, line)
        except Exception:
            return compose_job(self.loader, self.master, overrides)

    def _with_seed(self, base: _Base, line: str) -> DictConfig:
        cfg = copy.deepcopy(base.cfg)
        OmegaConf.update(cfg, self.SEED, self._value(line), merge=True)
        task = list(cfg.hydra.overrides.task)
        task[task.index(base.line)] = line
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
