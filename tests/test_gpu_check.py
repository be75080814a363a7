"""scripts/gpu_check.sh on a machine without a GPU: it refuses clearly before installing or
writing anything, and its pure parts (the GPU's file name, the Markdown table) work on
fabricated timings. Also: train.device=gpu without a GPU is a clear CLI error (exit 2)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from harness.core.config import Device
from harness.run import parity
from harness.tools import gpu_check
from tests.conftest import cli

ROOT = Path(__file__).resolve().parents[1]


def _tree(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in folder.rglob("*")} if folder.exists() else {}


def test_without_a_gpu_the_script_refuses_before_installing_or_writing(tmp_path):
    bin_dir = tmp_path / "bin"  # a PATH with bash and dirname, and no nvidia-smi, no pip
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    before = _tree(ROOT / "results")
    proc = subprocess.run(
        [str(ROOT / "scripts" / "gpu_check.sh"), "--out", str(tmp_path / "out")],
        env={"PATH": str(bin_dir), "PYTHON": sys.executable, "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "no CUDA device found" in proc.stderr and "nvidia-smi" in proc.stderr
    assert "train.device=cpu" in proc.stderr  # what to do instead
    assert "pip install" not in proc.stderr  # refused before installing
    assert not (tmp_path / "out").exists()
    assert _tree(ROOT / "results") == before


def test_a_driver_that_lists_no_gpu_is_refused_and_one_that_does_is_named(tmp_path):
    none = tmp_path / "nvidia-smi-none"
    none.write_text("#!/bin/sh\necho 'No devices were found'\nexit 6\n")
    h200 = tmp_path / "nvidia-smi-h200"
    h200.write_text("#!/bin/sh\necho 'NVIDIA H200'\necho 'NVIDIA H200'\n")
    for f in (none, h200):
        f.chmod(0o755)
    with pytest.raises(gpu_check.NoGPU, match="No devices were found"):
        gpu_check.gpu_name(str(none))
    assert gpu_check.gpu_name(str(h200)) == "NVIDIA H200"


def test_the_gpu_model_becomes_a_file_name():
    assert gpu_check.slug("NVIDIA H200") == "nvidia-h200"
    assert gpu_check.slug("NVIDIA GeForce RTX 4090 (24 GB)") == "nvidia-geforce-rtx-4090-24-gb"
    assert gpu_check.slug("  ") == "gpu"


def test_the_table_puts_tf32_off_and_on_side_by_side_per_backend():
    steps = [
        {
            "backend": b,
            "batch": batch,
            "allow_tf32": tf32,
            "device": "gpu:NVIDIA H200",
            "step_ms": ms + (0.1 if tf32 else 0.0),
            "steady_epoch_s": ms / 10,
            "first_epoch_s": 2.5,
            "total_s": 9.0,
        }
        for b, ms in (("lightning", 0.9), ("keras", 1.7), ("keras_jax", 0.4))
        for batch in ("None", "32")
        for tf32 in (False, True)
    ]
    floors = [{"framework": "torch", "floor_us": 7.25}, {"framework": "jax", "floor_us": None}]
    par = [
        {"backend": "keras", "rc": 0, "table": "| t |"},
        {"backend": "lightning", "rc": 1, "table": "| u |"},
    ]
    md = gpu_check.markdown("NVIDIA H200", par, steps, floors, "Python 3.x")
    rows = [
        line
        for line in md.splitlines()
        if line.startswith(("| keras", "| lightning"))
    ]
    assert [r.split("|")[1].strip() for r in rows[:6]] == [
        "keras",
        "keras",
        "keras_jax",
        "keras_jax",
        "lightning",
        "lightning",
    ]  # the backends' order, full batch first
    assert rows[0].startswith("| keras | 32 | 1.7 | 1.8 | 0.17 |")
    assert "| keras_jax | full | 0.4 | 0.5 |" in md
    assert "| torch | 7.25 |" in md and "| jax | — |" in md  # a floor not measured reads —
    assert "keras pass, lightning FAIL" in md


def test_the_parity_reference_trains_on_the_cpu_when_the_run_is_on_the_gpu():
    from dataclasses import replace

    from backends.base import TrainInputs
    from harness.core.config import output_activation
    from harness.core.init import network_weights

    _, task, spec = parity.matrix_specs("float32", 2)[0]
    spec = replace(spec, train=replace(spec.train, device=Device.gpu))
    data = parity.small_dataset(task)
    inputs = TrainInputs(
        config=spec,
        data=data,
        output_activation=output_activation(spec, data.task),
        weights=network_weights(
            spec.model, data.n_features, data.n_outputs, data.image_shape, spec.seed
        ),
        record_weights=True,
    )
    ref = parity.reference(inputs)  # the numpy backend refuses train.device=gpu itself
    assert len(ref.train_loss) == 2


@pytest.mark.skipif(
    shutil.which("nvidia-smi") is not None, reason="a GPU may be present: nothing to refuse"
)
def test_train_device_gpu_without_a_gpu_is_a_clear_cli_error(tmp_path):
    store = tmp_path / "mlflow.db"
    proc = cli(
        "backend=lightning",
        "train.device=gpu",
        "train.epochs=1",
        f"tracking.uri=sqlite:///{store}",
        cwd=tmp_path,
        env={"CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES", "")},
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "invalid configuration: train.device=gpu" in proc.stderr
    assert "use train.device=cpu" in proc.stderr and "Traceback" not in proc.stderr
    if store.exists():  # nothing logged
        client = MlflowClient(tracking_uri=f"sqlite:///{store}")
        assert not client.search_runs([e.experiment_id for e in client.search_experiments()])
