"""Parity: Keras (on TensorFlow, JAX and PyTorch) and Lightning compute, epoch by epoch, what
the NumPy reference computes.

The matrix runs every task x output form x optimizer x batching for 100 epochs on small
slices of the real datasets (harness.parity.small_dataset), through the same ParityCheck a
`train.parity=true` run uses. Broken translations planted on purpose must be caught, and
the reference itself is checked against finite differences.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import cache

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from backends import numpy_backend as nb
from backends.base import LossSettings
from harness.core.config import Activation, DType, OptimizerName, Task
from harness.run import parity
from harness.run.train import run
from tests.conftest import cli, make_spec

# The bar, written out here so that loosening harness.run.parity cannot loosen the test.
LOSS_RTOL = {OptimizerName.gd: 1e-5, OptimizerName.adam: 1e-3}
FRAMEWORKS = ("keras", "lightning")
EPOCHS = 100


@cache
def dataset(task: Task):
    return parity.small_dataset(task)


def _ids(matrix):
    return [label for label, _, _ in matrix]


MATRIX32 = parity.matrix_specs("float32", EPOCHS)
MATRIX64 = parity.matrix_specs("float64", EPOCHS)


def _check_matrix_entry(task: Task, spec, loss_rtol: dict, param_atol: dict) -> dict:
    ref, results = None, {}
    for backend in FRAMEWORKS:
        check = parity.measure(spec, dataset(task), backend, ref)
        ref = check.ref
        results[backend] = check
        opt = OptimizerName(spec.optimizer.name)
        assert check.epochs == EPOCHS
        assert check.worst_loss <= loss_rtol[opt], (backend, check.describe())
        assert check.worst_param <= param_atol[opt], (backend, check.describe())
        assert check.verdict == "pass", (backend, check.describe())
    # the reference learned something: agreement on a flat loss would prove little
    assert ref.train_loss[-1] < ref.train_loss[0]
    return results


@pytest.mark.parametrize("label,task,spec", MATRIX32, ids=_ids(MATRIX32))
def test_frameworks_match_numpy_in_float32(label, task, spec):
    _check_matrix_entry(task, spec, LOSS_RTOL, parity.PARAM_TOLERANCE)


@pytest.mark.slow
@pytest.mark.parametrize("label,task,spec", MATRIX64, ids=_ids(MATRIX64))
def test_frameworks_match_numpy_in_float64(label, task, spec):
    # measured: gradient descent and Lightning's Adam agree to ~1e-15; Keras' Adam to ~1e-5,
    # because Keras casts beta_1/beta_2 through float32 in the bias correction (README)
    results = _check_matrix_entry(task, spec, LOSS_RTOL, parity.PARAM_TOLERANCE)
    exact = {"keras"} if OptimizerName(spec.optimizer.name) is OptimizerName.gd else set()
    for backend in exact | {"lightning"}:
        assert results[backend].worst_loss < 1e-12, results[backend].describe()


# --- broken translations are caught ------------------------------------------------------


def _spec(task: Task, **changes):
    """The binary, probabilities, Adam, mini-batch entry of the matrix, changed."""
    spec = {lab: s for lab, _, s in MATRIX32}["binary-probs-adam-mb32"]
    spec = replace(spec, train=replace(spec.train, **changes.pop("train", {})))
    return replace(spec, **changes)


def test_a_kernel_reshaped_instead_of_transposed_is_caught(monkeypatch):
    import torch

    from backends import lightning_backend as lb

    right = lb._model

    def reshaped(inputs, dtype):
        net = right(inputs, dtype)
        with torch.no_grad():
            for layer, (kernel, _) in zip(net.linears(), inputs.weights, strict=True):
                # (in, out) -> (out, in) by reshape: the right shape, the wrong numbers
                layer.weight.copy_(torch.from_numpy(kernel.reshape(layer.weight.shape)))
        return net

    monkeypatch.setattr(lb, "_model", reshaped)
    spec = _spec(Task.binary, train={"epochs": 5})
    check = parity.measure(spec, dataset(Task.binary), "lightning")
    assert check.verdict == "fail"
    assert check.worst_loss > 1e-3


def test_torchs_own_adam_epsilon_is_caught(monkeypatch):
    import torch

    from backends import lightning_backend as lb

    def torch_adam(inputs, params):
        opt = inputs.config.optimizer
        return torch.optim.Adam(params, lr=opt.lr, betas=(opt.beta_1, opt.beta_2), eps=opt.epsilon)

    spec = _spec(Task.binary)
    right = parity.measure(spec, dataset(Task.binary), "lightning")
    monkeypatch.setattr(lb, "_optimizer", torch_adam)
    wrong = parity.measure(spec, dataset(Task.binary), "lightning", right.ref)
    assert right.verdict == "pass"
    assert wrong.verdict == "fail"
    # the losses alone would let it through; the weights do not
    assert wrong.worst_param > 10 * parity.PARAM_TOLERANCE[OptimizerName.adam]
    assert wrong.worst_param > 100 * right.worst_param


def _stress(task: Task = Task.binary):
    """Large logits: ReLU hidden layers and inputs x300, so probabilities hit the clip."""
    spec = _spec(task, train={"epochs": 5})
    spec = replace(spec, model=replace(spec.model, hidden_activation=Activation.relu))
    data = dataset(task)
    return spec, replace(data, x_train=data.x_train * 300, x_val=data.x_val * 300)


def test_keras_computing_the_probability_loss_from_logits_is_caught(monkeypatch):
    from backends import keras_backend as kb

    spec, data = _stress()
    right = parity.measure(spec, data, "keras")
    # Keras' own probability loss inside `fit` quietly takes the sigmoid's input as logits
    monkeypatch.setattr(kb, "_loss", lambda settings: kb.keras.losses.BinaryCrossentropy())
    wrong = parity.measure(spec, data, "keras", right.ref)
    assert right.verdict == "pass", right.describe()
    assert wrong.verdict == "fail"


def test_keras_clips_at_the_configured_epsilon_not_at_keras_global_one():
    import keras

    spec, data = _stress()
    saved = keras.config.epsilon()
    keras.config.set_epsilon(1e-2)  # what another library in the process might have done
    try:
        check = parity.measure(spec, data, "keras")
    finally:
        keras.config.set_epsilon(saved)
    assert check.verdict == "pass", check.describe()  # clipped at train.prob_clip_eps = 1e-7


def test_torchs_bce_loss_instead_of_keras_clipping_is_caught(monkeypatch):
    from torch.nn import functional as F

    from backends import lightning_backend as lb

    spec, data = _stress()
    right = parity.measure(spec, data, "lightning")
    # BCELoss clamps log(p) at -100 instead of clipping p to [1e-7, 1 - 1e-7]
    monkeypatch.setattr(lb, "_loss", lambda settings: F.binary_cross_entropy)
    wrong = parity.measure(spec, data, "lightning", right.ref)
    assert right.verdict == "pass", right.describe()
    assert wrong.verdict == "fail"


# --- the reference itself -----------------------------------------------------------------

GRAD_CASES = [
    (Task.binary, False, Activation.sigmoid),
    (Task.binary, True, Activation.relu),
    (Task.multiclass, False, Activation.relu),
    (Task.multiclass, True, Activation.sigmoid),
    (Task.multilabel, False, Activation.sigmoid),
    (Task.multilabel, True, Activation.relu),
    (Task.regression, False, Activation.relu),
]


@pytest.mark.parametrize("task,from_logits,hidden", GRAD_CASES)
def test_numpy_backprop_matches_finite_differences(task, from_logits, hidden):
    rng = np.random.default_rng(0)
    data = dataset(task)
    x, y = data.x_train[:12], data.y_train[:12]
    sizes = [data.n_features, 5, 4, data.n_outputs]
    params = [
        [rng.normal(0, 0.5, (a, b)), rng.normal(0, 0.1, b)] for a, b in itertools.pairwise(sizes)
    ]
    heads = {Task.multiclass: Activation.softmax, Task.regression: Activation.linear}
    out = heads.get(task, Activation.sigmoid)
    net = nb.MLP(params, hidden, Activation.linear if from_logits else out)
    loss = nb._loss(LossSettings(task, from_logits, 1e-7))

    def value() -> float:
        return loss(net.forward(x).output, y)[0]

    fw = net.forward(x)
    grads = net.backward(fw, loss(fw.output, y)[1])
    h = 1e-6
    for layer in range(len(params)):
        for which in (0, 1):
            p, g = params[layer][which], grads[layer][which]
            for idx in list(np.ndindex(p.shape))[:: max(1, p.size // 15)]:
                old = p[idx]
                p[idx] = old + h
                up = value()
                p[idx] = old - h
                down = value()
                p[idx] = old
                np.testing.assert_allclose(g[idx], (up - down) / (2 * h), rtol=1e-5, atol=1e-9)


def test_numpy_keeps_float32_float32():
    spec = make_spec("backend=numpy", "train.epochs=2", "tracking.enabled=false", "optimizer=adam")
    from backends.base import TrainInputs
    from harness.core.init import initial_weights, layer_sizes
    from harness.run.train import prepare

    data, out = prepare(spec)
    weights = initial_weights(layer_sizes(data.n_features, [25, 15], 1), 0, spec.model.init)
    inputs = TrainInputs(spec, data, weights, out, record_weights=True)
    backend = nb.NumpyBackend()
    backend.setup(inputs)
    records = []
    trained = backend.train(inputs, records.append)
    assert {a.dtype for pair in trained.final_weights for a in pair} == {np.dtype(np.float32)}
    assert records[-1].val_logits.dtype == np.float32 and records[-1].val_pred.dtype == np.float32
    assert records[0].weights is not None and len(records) == 2


# --- through the harness: metrics, verdict, tags --------------------------------------------


def test_a_parity_run_logs_per_epoch_metrics_and_its_verdict(store):
    runs = {}
    for backend in ("keras", "numpy"):
        spec = make_spec(
            f"backend={backend}", "train.parity=true", "train.epochs=4", "train.threads=1",
            f"tracking.uri={store}", "tracking.experiment=parity_test",
        )
        runs[backend] = run(spec, log=lambda *a, **k: None)
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("parity_test")
    by_backend = {r.data.tags["backend"]: r for r in client.search_runs([exp.experiment_id])}

    keras = by_backend["keras"]
    assert keras.data.tags["parity_verdict"] == "pass"
    assert keras.data.metrics["parity/pass"] == 1.0
    for key in ("parity/loss_max_rel_diff", "parity/param_max_abs_diff",
                "numerics/loss_abs_error", "numerics/clipped_fraction"):
        history = client.get_metric_history(keras.info.run_id, key)
        assert [m.step for m in history] == [1, 2, 3, 4], key
    per_epoch = client.get_metric_history(keras.info.run_id, "parity/loss_max_rel_diff")
    assert keras.data.metrics["parity/worst_loss_rel_diff"] == pytest.approx(
        max(m.value for m in per_epoch)
    )
    assert runs["keras"].final["parity/pass"] == 1.0
    # the reference run is the reference: no comparison with itself
    numpy_run = by_backend["numpy"]
    assert numpy_run.data.tags["parity_verdict"] == "reference"
    assert "parity/loss_max_rel_diff" not in numpy_run.data.metrics
    # both trained the same network on the same batches: the final losses say so
    final_losses = [runs[b].final["train/loss"] for b in ("keras", "numpy")]
    assert final_losses[0] == pytest.approx(final_losses[1], rel=1e-5)


def test_without_parity_nothing_extra_is_trained_or_logged():
    spec = make_spec("backend=numpy", "train.epochs=2", "tracking.enabled=false")
    result = run(spec, log=lambda *a, **k: None)
    assert not any(k.startswith("parity/") for k in result.final)
    assert "numerics/loss_abs_error" in result.final


def test_a_diverged_framework_run_fails_parity():
    check = parity.ParityCheck(
        replace(_inputs_stub(), config=_spec(Task.binary)), parity.Reference([0.5], [0.5], [None])
    )
    from backends.base import EpochRecord

    record = EpochRecord(1, float("nan"), 0.5, np.zeros(1), np.zeros(1), 0.1, 1, 1)
    check.compare(record)
    assert check.verdict == "fail"


def _inputs_stub():
    from backends.base import TrainInputs

    return TrainInputs(config=None, data=None, weights=[], output_activation=Activation.sigmoid)


def test_float64_is_a_parity_setting_too():
    spec = _spec(Task.binary, train={"dtype": DType.float64, "epochs": 3})
    check = parity.measure(spec, dataset(Task.binary), "lightning")
    assert check.worst_loss < 1e-12, check.describe()


def test_a_sweep_passes_only_when_every_checked_run_passes():
    assert parity.overall_verdict(["pass", "reference", "pass"]) == "pass"
    assert parity.overall_verdict(["pass", "fail", "reference"]) == "fail"
    assert parity.overall_verdict(["reference", None]) is None


# --- Keras on its other engines: JAX and PyTorch ------------------------------------------

ENGINES = ("keras_jax", "keras_torch")


@pytest.mark.slow  # 30-70 s on 2 cores: CI's slow suite runs it
def test_keras_on_jax_and_on_torch_match_numpy_through_the_cli(tmp_path):
    """Each engine in its own worker (Keras fixes its engine at import), from the same
    weights and batches: gd and Adam, float32 and float64, against the NumPy reference."""
    store = f"sqlite:///{tmp_path / 'engines.db'}"
    proc = cli(
        f"backend={','.join(ENGINES)}", "optimizer=gd,adam", "train.dtype=float32,float64",
        "train.parity=true", "train.epochs=10", "tracking.experiment=engines",
        f"tracking.uri={store}", "-m", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("engines")
    runs = client.search_runs([exp.experiment_id], "tags.`harness.role` = 'job'")
    assert sorted(r.data.tags["backend"] for r in runs) == sorted(ENGINES * 4)
    for r in runs:
        opt = OptimizerName(r.data.params["optimizer.name"])
        assert r.data.tags["parity_verdict"] == "pass", r.info.run_name
        assert r.data.metrics["parity/worst_loss_rel_diff"] <= LOSS_RTOL[opt], r.info.run_name
    engines = {r.data.tags["backend"]: r.data.tags for r in runs}
    assert "jax_version" in engines["keras_jax"] and "torch_version" in engines["keras_torch"]
