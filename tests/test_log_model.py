"""tracking.log_model=true: a run's trained model is saved with MLflow's own flavour (Keras,
PyTorch), loads back, and predicts as the run's final weights do (the lesson's
`model.predict` and 0.5 threshold)."""

from __future__ import annotations

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from scipy.special import expit

from harness.run.train import prepare, run
from tests.conftest import make_spec

EXPERIMENT = "log_model"


@pytest.fixture(scope="module")
def models_store(tmp_path_factory) -> str:
    """One store for both backends: a new SQLite store costs seconds of schema migrations."""
    return f"sqlite:///{tmp_path_factory.mktemp('log_model') / 'mlflow.db'}"


def _final_weights_predict(spec, x: np.ndarray) -> np.ndarray:
    """Train the same spec again (runs are deterministic) and predict from its final weights
    in NumPy: the lesson's sigmoid network, layer by layer."""
    from backends import get_backend
    from backends.base import TrainInputs
    from harness.core.init import initial_weights, layer_sizes

    data, out = prepare(spec)
    sizes = layer_sizes(data.n_features, list(spec.model.hidden), data.n_outputs)
    inputs = TrainInputs(spec, data, initial_weights(sizes, spec.seed, spec.model.init), out)
    backend = get_backend(spec.backend.name)
    backend.setup(inputs)
    trained = backend.train(inputs, lambda record: None)
    a = x.astype(np.float64)
    for kernel, bias in trained.final_weights:
        a = expit(a @ kernel + bias)  # sigmoid hidden layers and a sigmoid output
    return a


@pytest.mark.parametrize("backend, flavor", [("keras", "keras"), ("lightning", "pytorch")])
def test_a_logged_model_loads_back_and_predicts_like_the_final_weights(
    backend, flavor, models_store, monkeypatch
):
    store = models_store
    spec = make_spec(
        # enough epochs that the 0.5 threshold separates the digits (at 3, all are "0"s)
        f"backend={backend}",
        "train.epochs=8",
        "tracking.log_model=true",
        f"tracking.uri={store}",
        f"tracking.experiment={EXPERIMENT}",
    )
    run(spec, log=lambda *args, **kwargs: None)
    client = MlflowClient(tracking_uri=store)
    [logged_run] = client.search_runs(
        [client.get_experiment_by_name(EXPERIMENT).experiment_id], f"tags.backend = '{backend}'"
    )
    assert logged_run.data.tags["model_uri"].startswith("models:/")

    data, _ = prepare(spec)
    x = data.x_val.astype("float32")
    expected = _final_weights_predict(spec, x)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)  # runs:/ URIs resolve through it
    uri = f"runs:/{logged_run.info.run_id}/model"
    probs = np.asarray(mlflow.pyfunc.load_model(uri).predict(x)).reshape(expected.shape)
    native = getattr(mlflow, flavor).load_model(uri)
    if flavor == "keras":
        native_probs = native.predict(x, verbose=0)
    else:
        import torch

        with torch.no_grad():
            native_probs = native(torch.from_numpy(x)).numpy()

    for got in (probs, np.asarray(native_probs).reshape(expected.shape)):
        np.testing.assert_allclose(got, expected, atol=1e-5)  # float32 vs float64 forward
        np.testing.assert_array_equal(got >= 0.5, expected >= 0.5)
    # the loaded model's thresholded predictions are the ones the run scored
    accuracy = np.mean((probs >= 0.5) == (data.y_val >= 0.5))
    assert accuracy == pytest.approx(logged_run.data.metrics["val/accuracy"])
    assert accuracy > 0.9
