"""harness.store is the one owner of MLflow: nothing else imports it; its searches read every
page; nothing it writes holds a credential; a single run says where it was logged."""

from __future__ import annotations

import ast
import re

import pytest
from mlflow.tracking import MlflowClient

from harness.store import (
    CONFIG_HASH_TAG,
    ROLE_JOB,
    ROLE_SWEEP,
    ROLE_TAG,
    Reader,
    Store,
    client_for,
    experiment_id,
    redact,
    run_filter,
    search_runs,
    where_logged,
)
from tests.conftest import cli, make_spec
from tests.test_layers import MODULES

IMPORTERS = ("import_module", "__import__")


def mlflow_imports(source: str) -> list[str]:
    """The MLflow modules a source file imports: import statements and import_module("...")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.append(node.module or "")
        elif (  # importlib.import_module("mlflow.x") or __import__("mlflow")
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) in IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(node.args[0].value)
    return [name for name in found if name.split(".")[0] == "mlflow"]


def test_only_harness_store_imports_mlflow():
    offenders = [
        f"{name} imports {module}"
        for name, path in MODULES.items()
        if not (name == "harness.store" or name.startswith("harness.store."))
        for module in mlflow_imports(path.read_text())
    ]
    assert offenders == [], "go through harness.store instead"


@pytest.mark.parametrize(
    "source",
    [
        "import mlflow",
        "def f():\n    from mlflow.tracking import MlflowClient",
        "import importlib\nimportlib.import_module('mlflow.entities')",
        "import mlflow.pyfunc as p",
    ],
)
def test_the_owner_check_catches_a_planted_import(source):
    assert mlflow_imports(source)


def test_the_owner_check_ignores_names_that_only_mention_mlflow():
    source = "import mlflowish\nfrom harness.store import client_for\nx = 'mlflow'"
    assert mlflow_imports(source) == []


def _runs(
    store: str, count: int, experiment: str = "paging"
) -> tuple[MlflowClient, str, list[str]]:
    """Given `count` FINISHED job runs (each with its config hash) in a fresh experiment."""
    client = client_for(store)
    exp_id = experiment_id(client, experiment, store)
    ids = []
    for i in range(count):
        run = client.create_run(
            exp_id, run_name=f"r{i}", tags={ROLE_TAG: ROLE_JOB, CONFIG_HASH_TAG: f"h{i}"},
            start_time=1_000_000 + i,  # distinct: newest first is a fixed order
        )
        client.set_terminated(run.info.run_id, "FINISHED")
        ids.append(run.info.run_id)
    return client, exp_id, ids


def test_searches_read_every_page(store):
    client, exp_id, ids = _runs(store, 5)
    paged = search_runs(client, [exp_id], run_filter(role=ROLE_JOB), page_size=2)  # 3 pages
    assert sorted(r.info.run_id for r in paged) == sorted(ids)
    newest = Reader(store).runs(exp_id, role=ROLE_JOB, status="FINISHED", page_size=2)
    assert [r.info.run_id for r in newest] == ids[::-1]  # order kept across pages
    assert Reader(store).runs(exp_id, role=ROLE_SWEEP, page_size=2) == []


def test_a_resumed_sweep_sees_every_finished_run(store):
    _runs(store, 5, experiment="resume")
    finished = Store(make_spec(f"tracking.uri={store}", "tracking.experiment=resume").tracking)
    assert sorted(finished.finished_hashes()) == [f"h{i}" for i in range(5)]


def test_run_filter_rejects_an_unknown_status():
    with pytest.raises(ValueError, match="unknown run status 'DONE'"):
        run_filter(status="DONE")


def test_reader_answers_none_for_what_is_not_there(store):
    _, exp_id, (run_id,) = _runs(store, 1)
    reader = Reader(store)
    assert reader.experiment("nope") is None
    assert reader.run("0" * 32) is None
    assert reader.artifact_text(run_id, "sweep.json") is None
    assert [name for name, _ in reader.experiments()] == ["paging"]  # MLflow's Default left out


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:s3cr3t@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("tracking.uri=http://bob@host:5000", "tracking.uri=http://***@host:5000"),
        (r"tracking.uri=http\://bob\:s3cr3t@host\:5000", r"tracking.uri=http\://***@host\:5000"),
        # Hydra's escaped form inside JSON
        ('{"uri": "http\\\\://bob\\\\:pw@h"}', '{"uri": "http\\\\://***@h"}'),
        ("a=https://u:p@one b=mysql+pymysql://v:q@two", "a=https://***@one b=mysql+pymysql://***@two"),
        ("sqlite:////tmp/x/mlflow.db", "sqlite:////tmp/x/mlflow.db"),  # nothing to hide
        ("http://127.0.0.1:5000/#/experiments/1", "http://127.0.0.1:5000/#/experiments/1"),
    ],
)
def test_redact_hides_credentials_and_nothing_else(text, expected):
    assert redact(text) == expected


def test_a_sweeps_parent_run_stores_no_credential(store):
    secret = "s3cr3t-pw"
    uri = f"postgresql://harness:{secret}@127.0.0.1:5432/mlflow"
    sweeps = Store(make_spec(f"tracking.uri={store}", "tracking.experiment=secret").tracking)
    parent = sweeps.start_sweep(
        "sweep-secret",
        tags={"command": f"python -m harness tracking.uri={uri} -m"},
        params={"sweep.params.tracking.uri": uri},
        texts={"multirun.yaml": f"tracking:\n  uri: {uri}\n"},
    )
    sweeps.end_sweep(parent, "FINISHED", {"planned": 1}, {"sweep_failures.txt": uri})
    run = MlflowClient(tracking_uri=store).get_run(parent)
    written = [*run.data.tags.values(), *run.data.params.values()]
    texts = ("multirun.yaml", "sweep_failures.txt")
    written += [Reader(store).artifact_text(parent, path) for path in texts]
    assert all(secret not in text for text in written)
    assert "postgresql://***@127.0.0.1:5432/mlflow" in run.data.params["sweep.params.tracking.uri"]
    assert where_logged(make_spec(f"tracking.uri={uri}").tracking, parent).count(secret) == 0


def test_a_single_run_logs_to_the_harness_experiment_and_says_where(tmp_path):
    # given no +experiment and no tracking.uri: the default store under results/ in cwd
    proc = cli("backend=numpy", "train.epochs=1", cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    store = f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=store)
    assert sorted(e.name for e in client.search_experiments()) == ["Default", "harness"]
    (run,) = client.search_runs([client.get_experiment_by_name("harness").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags[ROLE_TAG] == ROLE_JOB
    said = re.search(r"logged to MLflow experiment '(\S+)' as run (\w+) \((\S+)\)", proc.stderr)
    assert said is not None, proc.stderr[-2000:]
    assert said.groups() == ("harness", run.info.run_id, store)
    assert "dashboard: python -m harness.dashboard\n" in proc.stderr  # the default store: no --uri
