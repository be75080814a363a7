"""What a new user types first: `--help` and the list of experiments."""

from __future__ import annotations

import math
from pathlib import Path

from omegaconf import OmegaConf

from harness.tools import experiments
from tests.conftest import CONF, cli


def test_help_shows_the_config_groups_the_main_options_and_where_to_go_next(tmp_path):
    proc = cli("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for line in ("backend: keras, keras_jax, keras_torch, lightning, numpy", "optimizer: adam, gd"):
        assert line in text
    listed = next(line for line in text.splitlines() if line.startswith("experiment: "))
    assert set(listed.removeprefix("experiment: ").split(", ")) == {
        p.stem for p in CONF.glob("experiment/*.yaml")
    }
    for option in ("train.epochs=", "tracking.log_model=true", "seed=", "+experiment=NAME", " -m"):
        assert option in text, option
    for command in (
        "python -m harness.experiments",
        "python -m harness.dashboard",
        "HARNESS_QUIET=1",
    ):
        assert command in text, command
    assert "epochs: 100" in text  # the composed config, every key with its default


def _comma_product(sweeps: dict[str, str]) -> int | None:
    """Runs of a sweep written as plain comma lists (None where a value holds a list)."""
    if any("[" in v or "(" in v for v in sweeps.values()):
        return None
    return math.prod(len(v.split(",")) for v in sweeps.values())


def test_every_experiment_is_listed_with_its_question_and_its_number_of_runs(capsys):
    assert experiments.main([]) == 0
    text = capsys.readouterr().out
    files = sorted(CONF.glob("experiment/*.yaml"))
    assert files
    for path in files:
        listed = experiments.load(path)
        question = OmegaConf.load(path).question
        assert question and question in text, path.name
        assert f"{path.stem}  ({listed.runs} runs)" in text
        expected = _comma_product(listed.sweeps)
        assert expected is None or listed.runs == expected, path.name
    assert (
        experiments.load(CONF / "experiment" / "course_binary.yaml").runs == 20
    )  # backend x 10 seeds


def test_the_markdown_table_has_a_row_per_experiment(capsys):
    assert experiments.main(["--markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == sorted(
        p.stem for p in CONF.glob("experiment/*.yaml")
    )


def test_the_readme_holds_the_generated_experiments_table(capsys):
    assert experiments.main(["--markdown"]) == 0
    table = capsys.readouterr().out.strip()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    stale = "README's experiments table is stale: python -m harness.experiments --markdown"
    assert table in readme, stale
