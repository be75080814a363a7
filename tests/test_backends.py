"""Each backend trains the lesson's network and its loss falls; backends load lazily."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from harness.run.train import run
from tests.conftest import make_spec

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


@pytest.mark.parametrize("backend,forbidden", [("lightning", "tensorflow"), ("keras", "torch")])
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


def test_backends_start_from_the_same_weights_and_batches():
    losses = {}
    for backend in BACKENDS:
        spec = make_spec(f"backend={backend}", "train.epochs=2", "tracking.enabled=false")
        losses[backend] = run(spec, log=lambda *a, **k: None).final["train/loss"]
    np.testing.assert_allclose(losses["keras"], losses["lightning"], rtol=1e-4)
