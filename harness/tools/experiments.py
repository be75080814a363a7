"""`python -m harness.experiments`: the experiments, the question each answers, what it sweeps.

Read from conf/experiment/*.yaml (their `question:` and `hydra.sweeper.params`), so the list
is never out of date. `--markdown` prints the same as a table (the README's).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from harness.core.paths import EXPERIMENTS_DIR as EXPERIMENTS


@dataclass
class Experiment:
    name: str
    question: str
    sweeps: dict[str, str]  # sweeper param -> its values as written, e.g. "keras,lightning"
    runs: int

    @property
    def command(self) -> str:
        return f"python -m harness +experiment={self.name} -m"


def count_runs(sweeps: dict[str, str]) -> int:
    """How many jobs Hydra's basic sweeper makes of these params (ranges, lists and all)."""
    from harness.sweep.callback import job_overrides

    return len(job_overrides(sweeps, []))


def load(path: Path) -> Experiment:
    from harness.sweep.tuned import describe

    cfg = OmegaConf.load(path)
    question = str(cfg.get("question") or "").strip()
    tuned = describe(OmegaConf.select(cfg, "hydra.sweeper"))  # hydra/sweeper=harness_tuned
    if tuned is not None:
        return Experiment(path.stem, question, *tuned)
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    sweeps = {str(k): str(v) for k, v in params.items()}
    return Experiment(path.stem, question, sweeps, count_runs(sweeps))


def all_experiments(folder: Path = EXPERIMENTS) -> list[Experiment]:
    return [load(p) for p in sorted(folder.glob("*.yaml"))]


def as_text(experiments: list[Experiment]) -> str:
    lines = [
        "Experiments (run one: python -m harness +experiment=NAME -m;"
        " see the results: python -m harness.dashboard)",
        "",
    ]
    for e in experiments:
        lines.append(f"{e.name}  ({e.runs} runs)")
        lines.append(f"    {e.question}")
        lines.append("    sweeps " + "  ".join(f"{k}={v}" for k, v in e.sweeps.items()))
    return "\n".join(lines)


def as_markdown(experiments: list[Experiment]) -> str:
    rows = ["| experiment | question | sweeps | runs |", "|---|---|---|---|"]
    for e in experiments:
        sweeps = ", ".join(f"`{k}`" for k in e.sweeps)
        rows.append(f"| `{e.name}` | {e.question} | {sweeps} | {e.runs} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.experiments", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args(argv)
    experiments = all_experiments()
    print(as_markdown(experiments) if args.markdown else as_text(experiments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
