"""A tuned sweep: each arm at its own learning rate (`hydra/sweeper=harness_tuned`).

A Hydra Sweeper (registered by hydra_plugins.harness_tuned_sweeper) that runs two stages
through the sweep's launcher, as Hydra's Optuna sweeper runs its rounds:

- tune: every arm x its learning-rate grid x the tuning seeds x the swept settings (e.g.
  backend); per arm and setting, the rate with the best mean criterion (harness.sweep.tuning);
- eval: every arm at its chosen rate on the evaluation seeds (disjoint from the tuning ones).

Every run is tagged `stage` and `arm`. The sweep callback plans and validates the tune jobs
and one eval job per arm before anything runs (`validation_jobs`), and opens the parent run;
before each stage this sweeper rewrites the plan the jobs read (harness.sweep.job.Plan), so
a resumed sweep skips what FINISHED in either stage. The selection reads each tuning run's
final metrics from the store, so a run skipped as FINISHED counts like one trained now.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from harness.core.config import ConfigError
from harness.sweep.planned import LaunchingSweeper

STAGE_TUNE, STAGE_EVAL = "tune", "eval"
RESERVED = ("seed", "stage", "arm")  # set by the sweeper for every job


@dataclass
class CriterionConf:
    metric: str = "val/loss"  # a final metric the task logs, e.g. val/loss, val/accuracy
    mode: str = "min"  # min | max


@dataclass
class TunedSweeperConf:
    """`hydra.sweeper` of a tuned sweep; an experiment file fills it in."""

    _target_: str = "hydra_plugins.harness_tuned_sweeper.harness_tuned_sweeper.HarnessTunedSweeper"
    # the arms compared, as Hydra sweep values: {optimizer: "gd,adam"}; each value is one arm
    arms: dict[str, str] = field(default_factory=dict)
    # swept in both stages, each value tuned apart (e.g. {backend: "keras,lightning"})
    params: dict[str, str] | None = None
    lr_key: str = "optimizer.lr"
    # each arm's learning rates to tune: {arm: [rates]} (log-spaced, declared by the experiment)
    grid: dict[str, list[float]] = field(default_factory=dict)
    tune_seeds: list[int] = field(default_factory=lambda: [100, 101, 102])
    eval_seeds: list[int] = field(default_factory=lambda: list(range(10)))
    criterion: CriterionConf = field(default_factory=CriterionConf)
    # the experiment that answers the same question at equal settings (the report links it)
    equal_settings: str | None = None


@dataclass(frozen=True)
class TunedJob:
    overrides: tuple[str, ...]
    stage: str
    arm: str
    setting: str
    lr: float
    seed: int


def is_tuned(config: DictConfig) -> bool:
    """Whether the sweep's sweeper is this one (its config node has this schema)."""
    node = OmegaConf.select(config, "hydra.sweeper")
    try:
        kind = OmegaConf.get_type(node) if node is not None else None
    except Exception:
        return False
    return isinstance(kind, type) and issubclass(kind, TunedSweeperConf)


@dataclass
class Protocol:
    """The tuned protocol as declared: arms, settings, grids, seeds, criterion."""

    arms: dict[str, list[str]]  # arm label -> its overrides
    settings: list[tuple[str, list[str]]]  # (label, overrides) of each swept setting
    lr_key: str
    grids: dict[str, list[float]]
    tune_seeds: list[int]
    eval_seeds: list[int]
    criterion: Any  # harness.sweep.tuning.Criterion
    equal_settings: str | None

    @classmethod
    def from_config(cls, config: DictConfig, loader: Any = None) -> Protocol:
        from harness.sweep.compose import job_overrides
        from harness.sweep.tuning import Criterion, arm_grids, check_seeds

        sw = config.hydra.sweeper
        arm_params = {str(k): str(v) for k, v in (sw.arms or {}).items()}
        if not arm_params:
            raise ConfigError(
                "hydra.sweeper.arms is empty: name what is compared, "
                "e.g. arms: {optimizer: 'gd,adam'}"
            )
        params = {str(k): str(v) for k, v in (sw.params or {}).items()}
        arguments = [str(a) for a in config.hydra.overrides.task]
        fixed = {*arm_params, sw.lr_key, *RESERVED}
        clash = sorted(set(params) & fixed)
        clash += sorted({a.split("=", 1)[0].lstrip("+~") for a in arguments} & fixed)
        if clash:
            raise ConfigError(
                f"{clash} set on the command line or in hydra.sweeper.params: a tuned sweep sets "
                f"the arms, {sw.lr_key}, seed, stage and arm of every job itself; change "
                "hydra.sweeper.arms / grid / tune_seeds / eval_seeds instead"
            )
        arms = {}
        for overrides in job_overrides(arm_params, [], loader):
            arms["-".join(o.split("=", 1)[1] for o in overrides)] = overrides
        contexts = job_overrides(params, arguments, loader)
        varying = {
            o.split("=", 1)[0] for c in contexts for o in c
            if any(o not in other for other in contexts)
        }
        settings = [(" ".join(o for o in c if o.split("=", 1)[0] in varying), c) for c in contexts]
        tune_seeds, eval_seeds = [int(s) for s in sw.tune_seeds], [int(s) for s in sw.eval_seeds]
        check_seeds(tune_seeds, eval_seeds)
        grid = OmegaConf.to_container(sw.grid) if OmegaConf.is_config(sw.grid) else sw.grid
        crit = Criterion(str(sw.criterion.metric), str(sw.criterion.mode))
        return cls(
            arms, settings, str(sw.lr_key), arm_grids(grid, list(arms)), tune_seeds, eval_seeds,
            crit, sw.get("equal_settings"),
        )

    def job(
        self, stage: str, arm: str, setting: tuple[str, list[str]], lr: float, seed: int
    ) -> TunedJob:
        overrides = (
            *setting[1], *self.arms[arm], f"{self.lr_key}={lr!r}", f"seed={seed}",
            f"stage={stage}", f"arm={arm}",
        )
        return TunedJob(overrides, stage, arm, setting[0], lr, seed)

    def tune_jobs(self) -> list[TunedJob]:
        return [
            self.job(STAGE_TUNE, arm, setting, lr, seed)
            for setting in self.settings
            for arm in self.arms
            for lr in self.grids[arm]
            for seed in self.tune_seeds
        ]

    def eval_jobs(self, rates: dict[tuple[str, str], float | None]) -> list[TunedJob]:
        return [
            self.job(STAGE_EVAL, arm, setting, rates[(arm, setting[0])], seed)
            for setting in self.settings
            for arm in self.arms
            if rates.get((arm, setting[0])) is not None
            for seed in self.eval_seeds
        ]

    @property
    def n_eval(self) -> int:
        return len(self.settings) * len(self.arms) * len(self.eval_seeds)


def describe(node: Any) -> tuple[dict[str, str], int] | None:
    """What an experiment file's tuned sweeper sweeps (as written) and its number of runs if
    every arm gets a rate; None if its sweeper is not the tuned one (no `arms`)."""
    from harness.sweep.compose import job_overrides

    if node is None or not OmegaConf.select(node, "arms"):
        return None
    sw = OmegaConf.merge(OmegaConf.structured(TunedSweeperConf), node)
    settings = len(job_overrides({str(k): str(v) for k, v in (sw.params or {}).items()}, []))
    arms = {str(k): str(v) for k, v in sw.arms.items()}
    n_arms = len(job_overrides(arms, []))
    rates = sum(len(g) for g in sw.grid.values())
    grids = ", ".join(f"{a} {len(g)} rates {min(g):g}..{max(g):g}" for a, g in sw.grid.items())
    sweeps = {
        **arms,
        **{str(k): str(v) for k, v in (sw.params or {}).items()},
        str(sw.lr_key): f"[tuned: {grids}]",
        "seed": f"[tune {list(sw.tune_seeds)}, eval {list(sw.eval_seeds)}]",
    }
    runs = settings * (rates * len(sw.tune_seeds) + n_arms * len(sw.eval_seeds))
    return sweeps, runs


def validation_jobs(config: DictConfig, loader: Any) -> list[list[str]] | None:
    """The jobs the sweep callback plans and validates before anything runs: every tune job
    and one eval job per arm. None unless the sweeper is the tuned one."""
    if not is_tuned(config):
        return None
    from harness.sweep.tuning import check_criterion

    protocol = Protocol.from_config(config, loader)
    tune = protocol.tune_jobs()
    first, seed = protocol.settings[0], protocol.eval_seeds[0]
    samples = [protocol.job(STAGE_EVAL, a, first, g[0], seed) for a, g in protocol.grids.items()]
    spec, data, _ = _compose(config, loader, tune[0].overrides)
    if not spec.tracking.enabled:
        raise ConfigError(
            "tracking.enabled=false: a tuned sweep chooses each rate from its tuning runs' "
            "metrics in the store; leave tracking on"
        )
    check_criterion(protocol.criterion, data.task)
    return [list(j.overrides) for j in tune + samples]


def _compose(config: DictConfig, loader: Any, overrides: Sequence[str]):
    """A job's spec, data and output activation, as the plan makes them; raises ConfigError."""
    from harness.run.train import prepare
    from harness.sweep.compose import compose_job, task_spec

    spec = task_spec(compose_job(loader, config, list(overrides)))
    data, out_act = prepare(spec)
    return spec, data, out_act


def _plan_entry(config: DictConfig, loader: Any, job: TunedJob) -> dict:
    """A job's entry in the plan (run name, config hash, overrides), as the callback's."""
    from harness.run.train import config_hash, run_name

    spec, data, out_act = _compose(config, loader, job.overrides)
    return {
        "run_name": run_name(spec, data.task, out_act),
        "config_hash": config_hash(spec),
        "overrides": list(job.overrides),
    }


def _outcome(ret: Any) -> dict:
    """The outcome file a job left in its Hydra folder (harness.sweep.job.record)."""
    from harness.sweep.job import OUTCOME_FILE

    out_dir = OmegaConf.select(ret.hydra_cfg, "hydra.runtime.output_dir") if ret.hydra_cfg else None
    path = Path(str(out_dir)) / OUTCOME_FILE if out_dir else None
    return json.loads(path.read_text()) if path and path.exists() else {"status": "NO OUTCOME"}


class TunedSweeper(LaunchingSweeper):
    """Two stages through the sweep's launcher: tune, select, evaluate."""

    def __init__(self, **_: Any) -> None:
        # the settings are read from config.hydra.sweeper in sweep(), exactly as the sweep
        # callback read them to plan and validate the jobs
        super().__init__()

    def sweep(self, arguments: list[str]) -> Any:
        from harness.store import Store
        from harness.sweep.job import Plan, log
        from harness.sweep.tuning import select, selection_markdown

        assert self.config is not None and self.hydra_context is not None
        loader = self.hydra_context.config_loader
        protocol = Protocol.from_config(self.config, loader)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        plan = Plan.read(sweep_dir)
        if not plan.jobs:
            raise RuntimeError(
                "the tuned sweeper needs the harness sweep callback's plan "
                "(hydra.callbacks.harness_sweep in conf/config.yaml)"
            )
        # stage tune: the callback planned these jobs (and which of them FINISHED already)
        planned = {tuple(j["overrides"]): j for j in plan.jobs}
        tune = protocol.tune_jobs()
        tune_plan = [planned[j.overrides] for j in tune]
        hashes = {j["config_hash"] for j in tune_plan}
        skip = {h: r for h, r in plan.skip.items() if h in hashes}
        Plan(plan.parent_run_id, len(tune) + protocol.n_eval, skip, tune_plan).write(sweep_dir)
        log(
            f"stage tune: {len(protocol.arms)} arms x their rates x {len(protocol.tune_seeds)} "
            f"tuning seed(s) x {len(protocol.settings)} setting(s) = {len(tune)} jobs"
            + (f" ({len(skip)} FINISHED already)" if skip else "")
        )
        tune_returns = self.launcher.launch([list(j.overrides) for j in tune], initial_job_idx=0)

        spec, _, _ = _compose(self.config, loader, tune[0].overrides)
        store = Store(spec.tracking)
        results = self._results(tune, tune_returns, store, protocol.criterion.metric)
        choices, table = select(results, protocol.criterion)
        text = selection_markdown(table, choices)
        log(f"selection ({protocol.criterion.describe()}):\n{text}")
        for c in choices.values():
            if c.lr is None:
                log(f"arm {c.arm} ({c.setting or 'all settings'}): {c.reason}")

        # stage eval: the chosen rates on the evaluation seeds; what FINISHED is skipped
        evals = protocol.eval_jobs({k: c.lr for k, c in choices.items()})
        eval_plan = [_plan_entry(self.config, loader, j) for j in evals]
        finished = store.finished_hashes() if spec.tracking.resume else {}
        done = {j["config_hash"] for j in eval_plan} & set(finished)
        skip.update({h: finished[h] for h in done})
        all_jobs = tune_plan + eval_plan
        Plan(plan.parent_run_id, len(tune) + len(evals), skip, all_jobs).write(sweep_dir)
        if plan.parent_run_id is not None:
            self._record(store, plan.parent_run_id, protocol, choices, table, text, all_jobs)
        log(
            f"stage eval: each arm at its chosen rate x {len(protocol.eval_seeds)} evaluation "
            f"seed(s) x {len(protocol.settings)} setting(s) = {len(evals)} jobs"
            + (f" ({len(done)} FINISHED already)" if done else "")
        )
        overrides = [list(j.overrides) for j in evals]
        eval_returns = self.launcher.launch(overrides, initial_job_idx=len(tune)) if evals else []
        return [tune_returns, eval_returns]

    @staticmethod
    def _results(tune: list[TunedJob], returns: Sequence[Any], store: Any, metric: str) -> list:
        """Each tuning job's outcome and criterion value, read from the store by run id (the
        same for a job trained now and one skipped as FINISHED before)."""
        from harness.store.results import final_runs
        from harness.sweep.tuning import FINISHED, TuneResult

        outcomes = [_outcome(ret) for ret in returns]
        ids = [o["run_id"] for o in outcomes if o.get("run_id")]
        runs = final_runs(store, ids) if ids else {}
        results = []
        for job, o in zip(tune, outcomes, strict=True):
            metrics, tags = runs.get(o.get("run_id") or "", ({}, {}))
            value = metrics.get(metric) if o["status"] in FINISHED else None
            diverged = tags.get("diverged") == "true"
            results.append(
                TuneResult(job.arm, job.setting, job.lr, job.seed, o["status"], value, diverged)
            )
        return results

    def _record(
        self, store: Any, parent: str, protocol: Protocol, choices: dict, table: Any, text: str,
        jobs: list[dict],
    ) -> None:
        """The protocol and the selection on the parent run: tags, tuning.md, tuning.csv, and
        the plan of both stages (sweep.json, which the report reads)."""
        from harness.store.results import annotate

        assert self.config is not None
        tags = {
            "tuned.criterion": protocol.criterion.describe(),
            "tuned.criterion.metric": protocol.criterion.metric,
            "tuned.criterion.mode": protocol.criterion.mode,
            "tuned.lr_key": protocol.lr_key,
            "tuned.tune_seeds": ",".join(map(str, protocol.tune_seeds)),
            "tuned.eval_seeds": ",".join(map(str, protocol.eval_seeds)),
            **{f"tuned.grid.{a}": ",".join(f"{r:g}" for r in g) for a, g in protocol.grids.items()},
        }
        if protocol.equal_settings:
            tags["tuned.equal_settings"] = protocol.equal_settings
        for c in choices.values():
            setting = c.setting.replace("=", "-").replace(" ", ".")
            where = f"{c.arm}.{setting}" if setting else c.arm
            tags[f"tuned.lr.{where}"] = "none" if c.lr is None else f"{c.lr:g}"
        overrides = " ".join(self.config.hydra.overrides.task)
        annotate(store, parent, tags, {
            "tuning.md": text,
            "tuning.csv": table.to_csv(index=False),
            "sweep.json": json.dumps({"overrides": overrides, "jobs": jobs}, indent=1),
        })
