"""Each backend trains the lesson's network and its loss falls; backends load lazily, read as
translations of each other, and leave the training loop to hooks installed from outside."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.run.hooks import EPOCH_HOOKS
from harness.run.train import run
from tests.conftest import cli, make_spec

BACKENDS = ["keras", "lightning"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backend_trains_and_loss_falls(backend):
    records: list[float] = []
    spec = make_spec(f"backend={backend}", "train.epochs=15", "tracking.enabled=false")
    result = run(spec, log=lambda *a, **k: records.append(a[0]))
    assert result.epochs_run == 15
    assert result.final["train/loss"] < 0.6  # starts near ln 2 = 0.69
    assert 0.0 <= result.final["val/accuracy"] <= 1.0
    assert records and backend in records[0]


@pytest.mark.parametrize(
    "backend,forbidden",
    [("lightning", "tensorflow"), ("keras", "torch"), ("keras_jax", "tensorflow")],
)
def test_a_backend_never_imports_the_other_framework(backend, forbidden, tmp_path):
    code = (
        "import sys\n"
        "from tests.conftest import make_spec\n"
        "from harness.run.train import run\n"
        f"run(make_spec('backend={backend}', 'train.epochs=1', 'tracking.enabled=false'))\n"
        f"assert {forbidden!r} not in sys.modules, 'imported {forbidden}'\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ok" in proc.stdout


def test_keras_refuses_to_run_on_an_engine_it_was_not_asked_for(tmp_path):
    proc = cli("backend=keras", "train.epochs=1", "tracking.enabled=false", cwd=tmp_path,
               env={"KERAS_BACKEND": "jax"})
    assert proc.returncode != 0
    assert "backend=keras runs Keras on tensorflow" in proc.stderr
    assert "use backend=keras_jax" in proc.stderr


def test_backends_start_from_the_same_weights_and_batches():
    losses = {}
    for backend in BACKENDS:
        spec = make_spec(f"backend={backend}", "train.epochs=2", "tracking.enabled=false")
        losses[backend] = run(spec, log=lambda *a, **k: None).final["train/loss"]
    np.testing.assert_allclose(losses["keras"], losses["lightning"], rtol=1e-4)


# --- the backends read as translations of each other ----------------------------------------

BACKEND_DIR = Path(__file__).resolve().parents[1] / "backends"
# the helpers every framework backend defines, in this order (NumPy batches in its own loop)
HELPERS = ["_configure_process", "_activate", "_model", "_weights", "_logits_and_output",
           "_loss", "_optimizer", "_epoch_batches"]


def _sections_and_helpers(name: str) -> tuple[list[str], list[str]]:
    text = (BACKEND_DIR / f"{name}_backend.py").read_text()
    sections = [line.strip("# -") for line in text.splitlines() if line.startswith("# --- ")]
    defined = [n.name for n in ast.parse(text).body if isinstance(n, ast.FunctionDef)]
    return sections, [h for h in defined if h in HELPERS]


def test_keras_and_lightning_have_the_same_sections_and_helpers_in_the_same_order():
    keras_sections, keras_helpers = _sections_and_helpers("keras")
    lightning_sections, lightning_helpers = _sections_and_helpers("lightning")
    assert keras_sections == lightning_sections
    assert keras_helpers == lightning_helpers == HELPERS
    _, numpy_helpers = _sections_and_helpers("numpy")
    assert numpy_helpers == [h for h in HELPERS if h != "_epoch_batches"]


def test_backends_read_only_the_training_part_of_the_config():
    for path in BACKEND_DIR.glob("*_backend.py"):
        text = path.read_text()
        for part in (".tracking", ".question", ".parallel", "set_epsilon"):
            assert part not in text, f"{path.name} reads {part}"


# --- epoch hooks: installed from outside the training loop ----------------------------------


@pytest.fixture
def epoch_hook():
    """A hook in harness.run.hooks.EPOCH_HOOKS for the test, removed after it."""
    installed = []

    def install(hook):
        EPOCH_HOOKS.append(hook)
        installed.append(hook)

    yield install
    for hook in installed:
        EPOCH_HOOKS.remove(hook)


def test_an_epoch_hook_sees_every_recorded_epoch_and_can_break_the_run(epoch_hook):
    seen: list[tuple[str, int, float]] = []
    epoch_hook(lambda name, epoch, metrics: seen.append((name, epoch, metrics["train/loss"])))
    spec = make_spec("backend=numpy", "train.epochs=3", "tracking.enabled=false")
    result = run(spec, log=lambda *a, **k: None)
    assert [(name, epoch) for name, epoch, _ in seen] == [(result.run_name, e) for e in (1, 2, 3)]
    assert seen[-1][2] == result.final["train/loss"]

    def fail_at_2(name, epoch, metrics):
        if epoch == 2:
            raise RuntimeError("planted")

    epoch_hook(fail_at_2)
    with pytest.raises(RuntimeError, match="planted"):
        run(spec, log=lambda *a, **k: None)
    assert [epoch for _, epoch, _ in seen][3:] == [1, 2]  # stopped at the hook's epoch


def test_a_hook_named_in_the_environment_must_be_module_colon_function(monkeypatch):
    monkeypatch.setenv("HARNESS_EPOCH_HOOKS", "tests.faults.inject")
    spec = make_spec("backend=numpy", "train.epochs=1", "tracking.enabled=false")
    with pytest.raises(ValueError, match="HARNESS_EPOCH_HOOKS.*module:function"):
        run(spec, log=lambda *a, **k: None)
