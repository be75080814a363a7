"""A run's identity includes the data it trained on, and MLflow shows which data that was."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from harness.core.config import DataConfig
from harness.core.data import data_digest, load
from harness.run.train import config_hash, prepare, run, run_name
from tests.conftest import cli, make_spec


def _write(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 3)), columns=["a", "b", "c"])
    frame["y"] = (frame["a"] > 0).astype(int)
    frame.to_csv(path, index=False)
    return path


def _file_spec(path: Path, *overrides: str):
    return make_spec("data=file", f"data.path={path}", "data.task=binary", *overrides)


def test_the_config_hash_follows_the_files_bytes_not_its_path(tmp_path):
    path = _write(tmp_path / "cancer.csv")
    first = config_hash(_file_spec(path))
    assert config_hash(_file_spec(path)) == first  # same bytes: same run
    copy = tmp_path / "elsewhere" / "cancer.csv"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    assert config_hash(_file_spec(copy)) == first  # moved, same bytes: still the same run
    _write(path, n=30)  # rows cut, as in the issue
    assert config_hash(_file_spec(path)) != first
    assert config_hash(_file_spec(path, "seed=1")) != config_hash(_file_spec(path))


def test_builtin_digests_follow_the_split():
    base = load(DataConfig(name="digits"), seed=0)
    assert load(DataConfig(name="digits"), seed=0).digest == base.digest
    assert load(DataConfig(name="digits"), seed=1).digest != base.digest
    assert load(DataConfig(name="digits", val_fraction=0.3), seed=0).digest != base.digest
    assert load(DataConfig(name="digits_binary"), seed=0).digest != base.digest
    assert base.train_digest != base.val_digest
    # the hash of a bundled set's run depends on the split, not only on the config's fields
    assert config_hash(make_spec("data=digits")) != config_hash(make_spec("data=digits", "seed=1"))


def test_run_names_carry_the_files_stem(tmp_path):
    path = _write(tmp_path / "breast_cancer.csv")
    spec = _file_spec(path)
    data, out = prepare(spec)
    assert run_name(spec, data.task, out) == "keras-breast_cancer-sigmoid-probs-adam-s0"
    assert data.label == "breast_cancer"


def _finished(db: Path) -> list:
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    exps = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(exps, "attributes.status = 'FINISHED'")
    return [r for r in runs if r.data.tags.get("harness.role") == "job"]


def _contexts(client: MlflowClient, run_id: str) -> dict[str, tuple[str, str, str]]:
    """context -> (name, digest, source type) of a run's dataset inputs, read back from MLflow."""
    inputs = client.get_run(run_id).inputs.dataset_inputs
    out = {}
    for item in inputs:
        context = {t.key: t.value for t in item.tags}["mlflow.data.context"]
        out[context] = (item.dataset.name, item.dataset.digest, item.dataset.source_type)
    return out


def test_paired_runs_show_the_same_training_and_validation_sets_in_mlflow(tmp_path):
    path = _write(tmp_path / "cancer.csv")
    store = f"tracking.uri=sqlite:///{tmp_path / 'mlflow.db'}"
    ids = {}
    for backend in ("keras", "lightning", "numpy"):
        spec = _file_spec(path, f"backend={backend}", "train.epochs=1", store)
        run(spec, log=lambda *a, **k: None)
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    exps = [e.experiment_id for e in client.search_experiments()]
    ids = {r.data.tags["backend"]: r.info.run_id for r in client.search_runs(exps)}
    seen = {backend: _contexts(client, run_id) for backend, run_id in ids.items()}
    keras = seen["keras"]
    assert set(keras) == {"training", "validation"}
    assert keras["training"][0] == keras["validation"][0] == "cancer"
    assert keras["training"][1] != keras["validation"][1]
    assert keras["training"][2] == "local"  # the file itself is the source
    assert seen["lightning"] == keras and seen["numpy"] == keras
    assert keras["training"][1] == load(_file_spec(path).data, seed=0).train_digest

    builtin = make_spec("data=digits", "backend=numpy", "train.epochs=1", store)
    run(builtin, log=lambda *a, **k: None)
    (digits,) = [r for r in client.search_runs(exps) if r.data.tags["dataset"] == "digits"]
    shown = _contexts(client, digits.info.run_id)
    assert shown["training"][:2] == ("digits", load(builtin.data, seed=0).train_digest)
    assert shown["training"][2] == "code"  # the bundled loader


def test_a_changed_file_trains_again_and_the_same_bytes_are_skipped(tmp_path):
    """The issue's story through the real CLI: sweep, resweep, change the file, resweep."""
    path = _write(tmp_path / "cancer.csv")
    db = tmp_path / "mlflow.db"
    args = (
        "data=file", f"data.path={path}", "data.task=binary", "backend=numpy",
        "train.epochs=2", f"tracking.uri=sqlite:///{db}", "-m",
    )
    first = cli(*args, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [r.info.run_name for r in _finished(db)] == ["numpy-cancer-sigmoid-probs-adam-s0"]

    again = cli(*args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "nothing left to do: all 1 jobs already have a FINISHED run" in again.stderr
    assert len(_finished(db)) == 1

    _write(path, n=30)  # the same path, other bytes (the issue cut 569 rows to 300)
    changed = cli(*args, cwd=tmp_path, timeout=300)
    assert changed.returncode == 0, changed.stderr[-3000:]
    assert "] skipped" not in changed.stderr
    runs = _finished(db)
    assert len(runs) == 2 and len({r.data.tags["config_hash"] for r in runs}) == 2
    assert {r.data.params["data.n_train"] for r in runs} == {"32", "24"}


def test_a_training_fraction_and_the_blobs_settings_change_the_digest():
    full = load(DataConfig(name="digits"), seed=0)
    half = load(DataConfig(name="digits", train_fraction=0.5), seed=0)
    assert half.val_digest == full.val_digest  # validation untouched
    assert half.train_digest != full.train_digest
    assert data_digest(DataConfig(name="digits", train_fraction=0.5), 0) == half.digest
    lab = DataConfig(name="blobs")
    wider = DataConfig(name="blobs", cluster_std=2.0)
    assert data_digest(lab, 0) == load(lab, 0).digest
    assert data_digest(wider, 0) != data_digest(lab, 0)
