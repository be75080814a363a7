"""The engines report on fabricated runs (tests/report_fixtures.py): Keras 3 on TensorFlow, JAX
and PyTorch, Lightning and the NumPy reference, 4 seeds, in a real SQLite MLflow store."""

from __future__ import annotations

import copy
import csv

from harness.report.build import generate
from harness.report.sections import deterministic_text
from tests.report_fixtures import Fab, activation_jobs

BACKENDS = ["keras", "keras_jax", "keras_torch", "lightning", "numpy"]
STEADY = {"keras": 0.03, "keras_jax": 0.01, "keras_torch": 0.02, "lightning": 0.04, "numpy": 0.005}


def engines_jobs(exp: str) -> list[dict]:
    """The same sigmoid runs on every backend, each a few 1e-7 off per seed (as float32
    engines are), with its own steady, first-epoch and total times."""
    base = [j for j in activation_jobs(exp) if j["name"].startswith("keras-sigmoid")]
    jobs = []
    for k, backend in enumerate(BACKENDS):
        for i, b in enumerate(base):
            j = copy.deepcopy(b)
            seed = j["params"]["seed"]
            j["name"], j["hash"] = f"{backend}-s{seed}", f"eng{backend}{seed}"
            j["params"]["backend.name"] = backend
            j["overrides"] = [f"backend={backend}", f"seed={seed}", f"+experiment={exp}"]
            for key in ("train/loss", "val/loss"):
                j["curves"][key][-1] += 1e-7 * k * (i + 1) ** 0.5
            j["summary"] = {
                "time/steady_epoch_s": STEADY[backend] * (1 + 0.1 * i),
                "time/first_epoch_s": 2.0 + k,
                "time/total_s": 10.0 + k,
                "throughput/samples_per_s": 1437 / STEADY[backend],
            }
            jobs.append(j)
    return jobs


def test_engines_report_has_timing_per_backend_and_a_verdict_per_engine_pair(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    fab = Fab(uri)
    jobs = engines_jobs("engines_synth")
    sweep = {"backend": ",".join(BACKENDS)}
    parent = fab.parent("engines_synth", "engines", jobs, sweep_params=sweep)
    for j in jobs:
        fab.job("engines_synth", parent, j)
    folder = generate("engines_synth", uri, tmp_path / "out")
    md = (folder / "report.md").read_text()

    # the backend is checked for agreement, not a factor
    assert "agreement checked" in md
    assert "Each backend against Keras and against NumPy, paired by seed" in md
    section = md.split("## Engines side by side", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    header = table[0]
    for head in ("steady epoch (s)", "first epoch (s)", "run wall time (s)"):
        assert head in header
    assert "agreement with Keras" in header and "agreement with NumPy" in header
    rows = {line.split("|")[1].strip(): line for line in table[1:]}
    assert list(rows) == BACKENDS
    assert "TensorFlow" in rows["keras"] and "JAX" in rows["keras_jax"]
    assert rows["keras_torch"].endswith("| 4 [4, 4] | 12 [12, 12] |")  # first epoch, total
    for b in BACKENDS[1:-1]:  # every engine: equivalent to Keras on TF and to NumPy, 3 metrics
        assert rows[b].count("3/3 equivalent") == 2, rows[b]

    # every engine pair has its equivalence verdicts in verdicts.csv, with the margin
    with open(folder / "verdicts.csv") as f:
        verdicts = list(csv.DictReader(f))
    pairs = {(r["backend"], r["metric"]): r for r in verdicts}
    for b in ("keras_jax", "keras_torch", "lightning"):
        for against in ("keras", "numpy"):
            row = pairs[(f"{b} − {against}", "val/loss")]
            assert row["label"] == "equivalent", row
            assert 0 < float(row["margin"]) < 1e-3, row  # loss ±0.1% of the reference
    assert pairs[("numpy − keras", "val/accuracy")]["label"] == "equivalent"
    # the section holds measurements: kept out of what a rerun must reproduce exactly
    assert "## Engines side by side" not in deterministic_text(md)
