"""The report's verdicts end to end: planted effects read `better`/`worse`, identical arms
read `equivalent`; a report regenerates byte-identically from the data it ships (fabricated
and every committed one); the verdicts are tagged on the sweep's parent run; CLAIMS.md."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.core.paths import RESULTS_DIR
from harness.report.build import FILES, generate, regenerate
from harness.report.claims import CLAIMS, ledger
from harness.report.cli import main
from tests.report_fixtures import Fab, activation_jobs, build_store

TEXT = ["report.md", "summary.csv", "timing.csv", "verdicts.csv", "runs.csv", "sweep.json"]


def twin_jobs(exp: str) -> list[dict]:
    """tanh trains exactly as sigmoid, its validation loss off by a tiny per-seed amount."""
    jobs = []
    for j in activation_jobs(exp):
        if "-sigmoid-" not in j["name"] or not j["name"].startswith("keras"):
            continue
        seed = int(j["name"].rsplit("s", 1)[1])
        twin = {**j, "name": j["name"].replace("sigmoid", "tanh"), "hash": j["hash"] + "t"}
        shift = 1e-5 * (seed - 1.5)
        twin["curves"] = {
            k: [v + shift for v in c] if k == "val/loss" else list(c)
            for k, c in j["curves"].items()
        }
        twin["params"] = {**j["params"], "model.hidden_activation": "tanh"}
        twin["overrides"] = [o.replace("sigmoid", "tanh") for o in j["overrides"]]
        jobs += [j, twin]
    return jobs


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("verdict-store")
    s = build_store(root)
    fab = Fab(s["uri"])
    jobs = twin_jobs("twins")
    s["twins"] = fab.parent("twins", "twins", jobs)
    for j in jobs:
        fab.job("twins", s["twins"], j)
    for exp, margin in (("tight", "1e-9"), ("badmargin", "five")):  # report.margins.loss
        jobs = twin_jobs(exp)
        for j in jobs:
            j["params"] = {**j["params"], "report.margins.loss": margin}
        parent = fab.parent(exp, exp, jobs)
        for j in jobs:
            fab.job(exp, parent, j)
    return s


def verdicts(folder: Path) -> dict[tuple[str, str, str], str]:
    with open(folder / "verdicts.csv") as f:
        return {(r["comparison"], r["backend"], r["metric"]): r["label"] for r in csv.DictReader(f)}


def test_planted_effects_read_better_and_worse(store, tmp_path):
    found = verdicts(generate("acts", store["uri"], tmp_path, attach=False))
    relu = "model.hidden_activation=relu vs sigmoid"
    linear = "model.hidden_activation=linear vs sigmoid"
    for backend in ("keras", "lightning"):
        for metric in ("train/loss", "val/loss", "val/accuracy", "epochs_to_threshold"):
            assert found[(relu, backend, metric)] == "better", (backend, metric)
        assert found[(linear, backend, "train/loss")] == "worse"
        assert found[(linear, backend, "val/accuracy")] == "equivalent"  # the same accuracy
        assert found[(linear, backend, "epochs_to_threshold")] == ""  # censored: never reached
        agreement = ("backend agreement", f"{backend} − keras", "val/loss")
        if backend == "lightning":  # Lightning's val loss is Keras' + 1e-6..4e-6
            assert found[agreement] == "equivalent"


def test_identical_arms_read_equivalent(store, tmp_path):
    folder = generate("twins", store["uri"], tmp_path, attach=False)
    found = verdicts(folder)
    rows = {k: v for k, v in found.items() if k[0] == "model.hidden_activation=tanh vs sigmoid"}
    assert len(rows) == 4 and set(rows.values()) == {"equivalent"}, rows
    md = (folder / "report.md").read_text()
    assert md.index("## Verdicts") < md.index("## Design")  # the answer first
    assert "**equivalent within ±5% of sigmoid" in md and "Wilcoxon" not in md
    assert "the exact sign-flip test cannot give p < 0.05" in md  # said once, 4 seeds
    assert md.count("sign-flip test cannot") == 1


def test_margins_declared_in_the_config_decide_equivalence(store, tmp_path, capsys):
    folder = generate("tight", store["uri"], tmp_path, attach=False)
    found = verdicts(folder)
    tanh = "model.hidden_activation=tanh vs sigmoid"
    assert found[(tanh, "keras", "val/loss")] == "unresolved"  # 1e-5 apart, margin 1e-9
    assert found[(tanh, "keras", "val/accuracy")] == "equivalent"  # default margin kept
    md = (folder / "report.md").read_text()
    assert "margins: accuracy ±0.01, epochs_to_threshold ±1, loss ±1e-09, r2 ±0.01" in md
    assert "`report.margins." not in md  # neither a factor nor a setting held fixed
    code = main(["badmargin", "--tracking-uri", store["uri"], "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "report.margins.loss='five'" in err and "5%" in err
    assert not (tmp_path / "bad").exists()


def test_verdicts_are_tagged_on_the_parent_run(store, tmp_path):
    first = generate("acts", store["uri"], tmp_path / "first")
    again = generate("acts", store["uri"], tmp_path / "again")  # now with the tags on the parent
    for name in FILES:  # the report's own tags are not part of the sweep it reports
        assert (again / name).read_bytes() == (first / name).read_bytes(), name
    run = MlflowClient(tracking_uri=store["uri"]).get_run(store["parent"])
    key = "verdict/model.hidden_activation_relu vs sigmoid keras/epochs_to_threshold"
    assert run.data.tags[key] == "better"
    assert run.data.metrics[f"{key}/effect"] == pytest.approx(-4.25)
    # the comparison in a tag key: `=` and `,` are not allowed there, so they read `_`
    agreement = (
        "verdict/backend agreement lightning vs keras at model.hidden_activation_relu/val/loss"
    )
    assert run.data.tags[agreement].startswith("equivalent within ±0.1% of Keras")
    censored = "verdict/model.hidden_activation_linear vs sigmoid keras/epochs_to_threshold"
    assert run.data.tags[censored].startswith("not compared: reached within 10 epochs")


@pytest.mark.parametrize("experiment", ["acts", "tasks_synth", "parity_synth", "backends_synth"])
def test_a_report_regenerates_from_its_data_alone(store, tmp_path, experiment):
    made = generate(experiment, store["uri"], tmp_path / "store", attach=False)
    Path(store["uri"].removeprefix("sqlite:///")).rename(tmp_path / "away.db")  # no store
    try:
        again = regenerate(made, tmp_path / "data")
    finally:
        (tmp_path / "away.db").rename(store["uri"].removeprefix("sqlite:///"))
    for name in FILES:
        assert (again / name).read_bytes() == (made / name).read_bytes(), name


COMMITTED = sorted(p.parent for p in RESULTS_DIR.glob("*/report.md"))


# slow: each committed report recomputes its bootstrap intervals (~30-60 s at 10 seeds)
@pytest.mark.slow
@pytest.mark.parametrize("folder", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_report_regenerates_from_its_committed_data(folder, tmp_path):
    assert (folder / "runs.csv").is_file(), (
        f"{folder.name}: a committed report ships its data; `python -m harness.report "
        f"--reproduce {folder.name}` writes the report with its runs.csv"
    )
    again = regenerate(folder, tmp_path)
    for name in TEXT:
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name


@pytest.mark.slow
def test_the_committed_claims_ledger_agrees_with_the_committed_reports():
    committed = (RESULTS_DIR / "CLAIMS.md").read_text()
    stale = "stale: python -m harness.report --claims --out results"
    assert committed == ledger(RESULTS_DIR), stale


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_claims_ledger_from_report_data(store, tmp_path, capsys):
    made = generate("acts", store["uri"], tmp_path / "made", attach=False)
    shutil.copytree(made, tmp_path / "results" / "activations")  # as if activations' data
    assert main(["--claims", "--out", str(tmp_path / "results")]) == 0
    text = (tmp_path / "results" / "CLAIMS.md").read_text()
    assert text == ledger(tmp_path / "results")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == len(CLAIMS) + 1  # header
    relu = next(r for r in rows if r.startswith("| ReLU hidden layers"))
    assert "| better |" in relu and "(activations/report.md#verdicts)" in relu
    adam = next(r for r in rows if r.startswith("| Adam reaches"))
    assert "no data yet" in adam and "--reproduce optimizers" in adam
    conv = next(r for r in rows if r.startswith("| A convolutional layer needs less data"))
    assert "no data yet: run `python -m harness.report --reproduce data_size`" in conv
    vec = next(r for r in rows if r.startswith("| Vectorised forward propagation"))
    assert "not testable yet" in vec and "missing: a committed report" in vec


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_from_data_cli_and_its_errors(store, tmp_path, capsys):
    made = generate("acts", store["uri"], tmp_path / "made", attach=False)
    assert main(["--from-data", str(made), "--out", str(tmp_path / "again")]) == 0
    assert "wrote" in capsys.readouterr().err
    assert (tmp_path / "again" / "acts" / "report.md").read_bytes() == (
        made / "report.md"
    ).read_bytes()
    assert main(["--from-data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "no report data at" in err and "--from-data takes a report folder" in err
    assert not (tmp_path / "x").exists()
