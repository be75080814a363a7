"""A warm worker reuses the last run's built and compiled Keras model when the next run has its
shape: the histories must be bitwise those of a fresh build in a fresh process.

Each sequence of runs trains in a fresh Python process (as a sweep's worker does), through
harness.run.train.run with tracking off; this file is also that process's script.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# A: the run under test. B: another architecture. The same A with another learning rate
# and seed (so another start) comes between, then A itself, twice.
A = ["data=digits_binary", "train.epochs=4", "optimizer.lr=0.01", "seed=3"]
B = ["data=digits_binary", "train.epochs=2", "model.hidden=[8]", "seed=1"]
A_OTHER_LR = ["data=digits_binary", "train.epochs=3", "optimizer.lr=0.05", "seed=5"]


def _sequence(runs: list[list[str]], backend: str = "keras") -> list[dict]:
    """Train `runs` in order in a fresh process: per run, its per-epoch losses (exact, as
    float.hex) and whether the backend reused the previous run's model."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.run(
        [sys.executable, __file__, backend, json.dumps(runs)],
        capture_output=True, text=True, env=env, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


# Keras on JAX and on PyTorch reuse the same way (~1 min each: marked slow)
SLOW = pytest.mark.slow
ENGINES = ["keras", pytest.param("keras_jax", marks=SLOW), pytest.param("keras_torch", marks=SLOW)]


# float64 (its own compiled functions) in the slow suite: ~25 s on 2 cores
@pytest.mark.parametrize("dtype", ["float32", pytest.param("float64", marks=pytest.mark.slow)])
@pytest.mark.parametrize("backend", ENGINES)
def test_reused_keras_model_trains_bitwise_as_a_fresh_build(backend: str, dtype: str) -> None:
    f = f"train.dtype={dtype}"
    fresh = _sequence([[*A, f]], backend)[0]
    full_batch = [*A, f, "train.batch_size=null"]
    mixed = _sequence([[*B, f], [*A_OTHER_LR, f], [*A, f], [*A, f], full_batch], backend)
    assert fresh["reused"] == "false"
    # B and then A (another architecture) build; A after A with another rate and seed reuses;
    # another batching builds
    assert [r["reused"] for r in mixed] == ["false", "false", "true", "true", "false"]
    for run in mixed[2:4]:
        assert run["train"] == fresh["train"]  # every epoch, bit for bit
        assert run["val"] == fresh["val"]
    assert mixed[1]["train"][0] != fresh["train"][0]  # the rate and seed really differ


def _main(backend: str, runs: list[list[str]]) -> None:
    """This file as the worker: train each run in turn, print the histories as JSON."""
    from backends import get_backend
    from harness.run.train import run
    from tests.conftest import make_spec

    # what backend.setup hands the run's tags: did it reuse the previous run's model?
    cls = type(get_backend(backend))
    setup, reused = cls.setup, []

    def recording_setup(self, inputs):
        info = setup(self, inputs)
        reused.append(info.get("keras_model_reused", "n/a"))
        return info

    cls.setup = recording_setup
    out = []
    for overrides in runs:
        spec = make_spec(f"backend={backend}", "tracking.enabled=false", *overrides)
        train: list[str] = []
        val: list[str] = []

        def seen(epoch: int, metrics: dict[str, float], train=train, val=val) -> None:
            train.append(float(metrics["train/loss"]).hex())
            val.append(float(metrics["val/loss"]).hex())

        run(spec, log=lambda *a, **k: None, on_metrics=seen)
        out.append({"train": train, "val": val, "reused": reused[-1]})
    print(json.dumps(out))


if __name__ == "__main__":
    _main(sys.argv[1], json.loads(sys.argv[2]))
