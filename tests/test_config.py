"""Config composition, the schema's errors, and where runs are tracked."""

from __future__ import annotations

import pytest
from hydra.errors import ConfigCompositionException

from harness.core.config import Activation, Config, ConfigError, OptimizerName
from harness.store import resolve_uri
from tests.conftest import cli, make_spec


def test_defaults_are_the_lessons_network():
    spec = make_spec()
    assert isinstance(spec, Config)
    assert spec.backend.name == "keras"
    assert spec.data.name == "digits_binary"
    assert list(spec.model.hidden) == [25, 15]
    assert spec.model.hidden_activation is Activation.sigmoid
    assert spec.optimizer.name is OptimizerName.adam and spec.optimizer.lr == 1e-3
    assert spec.train.epochs == 100 and spec.train.batch_size == 32


def test_user_facing_keys_override():
    spec = make_spec("backend=lightning", "seed=7", "train.epochs=3", "train.batch_size=null", "tracking.uri=sqlite:///x.db")
    assert spec.backend.name == "lightning"
    assert spec.seed == 7 and spec.train.epochs == 3
    assert spec.train.batch_size is None  # full batch
    assert spec.tracking.uri == "sqlite:///x.db"


@pytest.mark.parametrize(
    "override",
    [
        "train.epoch=3", "+train.epoch=3", "train.epochs=abc", "model.hidden_activation=tanh",
        "seed=zero",
    ],
)
def test_typos_and_wrong_types_fail_at_composition(override):
    with pytest.raises((ConfigCompositionException, ConfigError)):
        make_spec(override)


def test_experiment_overlay_sets_its_mlflow_experiment():
    spec = make_spec("+experiment=course_binary")
    assert spec.tracking.experiment == "course_binary"
    assert spec.question


def test_tracking_uri_precedence(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = resolve_uri(make_spec().tracking)
    assert default == f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}"
    assert "mlruns" not in default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///from-env.db")
    assert resolve_uri(make_spec().tracking) == "sqlite:///from-env.db"
    assert (
        resolve_uri(make_spec("tracking.uri=sqlite:///given.db").tracking) == "sqlite:///given.db"
    )


def test_unknown_backend_fails_at_once_naming_choices(tmp_path):
    proc = cli("backend=kerass", cwd=tmp_path, timeout=60)
    assert proc.returncode != 0
    assert "kerass" in proc.stderr
    for choice in ("keras", "lightning"):
        assert f"\t{choice}" in proc.stderr
    assert not (tmp_path / "results" / "mlflow.db").exists()  # no run written


def test_credentials_in_a_tracking_uri_are_never_written(store):
    from mlflow.tracking import MlflowClient

    from harness.store import redact, tracked_run

    secret_uri = "postgresql://harness:s3cr3t@127.0.0.1:5432/mlflow"
    assert (
        redact(f"tracking.uri={secret_uri}")
        == "tracking.uri=postgresql://***@127.0.0.1:5432/mlflow"
    )
    spec = make_spec(f"tracking.uri={store}", "tracking.experiment=redact")
    with tracked_run(
        spec.tracking, "r", {"hydra_overrides": f"tracking.uri={secret_uri}"},
        {"tracking.uri": secret_uri}, f"uri: {secret_uri}\n",
    ) as tracked:
        tracked.set_tags({"command": f"python -m harness tracking.uri={secret_uri}"})
    client = MlflowClient(tracking_uri=store)
    (run,) = client.search_runs([client.get_experiment_by_name("redact").experiment_id])
    written = [*run.data.params.values(), *run.data.tags.values()]
    written.append(open(client.download_artifacts(run.info.run_id, "config.yaml")).read())
    assert not [w for w in written if "s3cr3t" in w]
    assert run.data.params["tracking.uri"] == "postgresql://***@127.0.0.1:5432/mlflow"
