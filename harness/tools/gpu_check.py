"""`scripts/gpu_check.sh` (`python -m harness.tools.gpu_check`): harness on a CUDA GPU, in one
go. It installs the GPU builds of torch, TensorFlow and JAX (unless --no-install), runs the
parity matrix on the GPU for every backend with TF32 off, times each backend's training step
with TF32 off and on, measures each framework's kernel-launch floor, and writes
results/benchmarks/gpu-<GPU model>.md. Without a CUDA GPU it refuses (exit 2) before
installing or writing anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

INSTALLS = [  # the README's GPU builds, in this order (torch first: its own index)
    ["torch", "--index-url", "https://download.pytorch.org/whl/cu126"],
    ["tensorflow[and-cuda]"],
    ["jax[cuda12]"],
]
BACKENDS = ["keras", "keras_jax", "keras_torch", "lightning"]  # numpy runs on the CPU only
FRAMEWORKS = ["torch", "tensorflow", "jax"]
# Keras on torch fixes its device at import (backends/keras_torch_backend.py)
GPU_ENV = {"KERAS_TORCH_DEVICE": "cuda"}
NO_GPU = (
    "gpu_check: no CUDA device found ({why}). This script needs an NVIDIA GPU with its driver "
    "(nvidia-smi must list it). Run it on a GPU machine; on this one, train with "
    "train.device=cpu (the default). Nothing was installed or written."
)


class NoGPU(Exception):
    pass


def gpu_name(nvidia_smi: str = "nvidia-smi") -> str:
    """The first GPU's model name as nvidia-smi reports it; NoGPU (with why) if none."""
    exe = shutil.which(nvidia_smi)
    if exe is None:
        raise NoGPU(f"{nvidia_smi} is not on PATH")
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NoGPU(f"{nvidia_smi} failed: {exc}") from None
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    if out.returncode != 0 or not names:
        why = (out.stderr.strip() or out.stdout.strip() or "no output").splitlines()[0]
        raise NoGPU(f"{nvidia_smi} lists no GPU: {why}")
    return names[0]


def slug(name: str) -> str:
    """A file-name form of a GPU model: `NVIDIA H200` -> `nvidia-h200`."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "gpu"


def _run(cmd: Sequence[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    print("[gpu_check] " + " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(
        list(cmd), capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def install(python: str) -> None:
    for spec in INSTALLS:
        proc = _run([python, "-m", "pip", "install", *spec])
        if proc.returncode != 0:
            raise RuntimeError(f"pip install {' '.join(spec)} failed:\n{proc.stderr[-2000:]}")


def parity(python: str, epochs: int) -> list[dict]:
    """The parity matrix on the GPU, TF32 off, one process per backend (Keras fixes its
    engine at import): {backend, rc, table}."""
    out = []
    for b in BACKENDS:
        cmd = [python, "-m", "harness.parity", "--backends", b, "--device", "gpu"]
        proc = _run([*cmd, "--epochs", str(epochs)], GPU_ENV)
        table = proc.stdout.strip() or proc.stderr.strip()[-1500:]
        out.append({"backend": b, "rc": proc.returncode, "table": table})
    return out


def step_times(python: str, epochs: int, store: str) -> list[dict]:
    """One harness sweep on the GPU: every backend x TF32 off/on x full batch/batch 32 on
    digits 0-9 (64-25-15-10 ReLU); each run's step and epoch times."""
    from harness.store import ROLE_JOB, Reader

    proc = _run(
        [
            python,
            "-m",
            "harness",
            f"backend={','.join(BACKENDS)}",
            "train.device=gpu",
            "train.allow_tf32=false,true",
            "train.batch_size=null,32",
            "data=digits",
            "model.hidden_activation=relu",
            f"train.epochs={epochs}",
            f"tracking.uri={store}",
            "tracking.experiment=gpu_check",
            "-m",
        ],
        GPU_ENV,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
    reader = Reader(store)
    exp = reader.experiment("gpu_check")
    if exp is None:
        return []
    rows = []
    for r in reader.runs(exp.experiment_id, role=ROLE_JOB):
        m = r.data.metrics
        rows.append(
            {
                "backend": r.data.tags.get("backend", "?"),
                "batch": r.data.params.get("train.batch_size", "?"),
                "allow_tf32": r.data.params.get("train.allow_tf32", "?") == "True",
                "device": r.data.tags.get("device", "?"),
                "status": r.info.status,
                **{
                    k: m.get(f"time/{k}")
                    for k in ("step_ms", "steady_epoch_s", "first_epoch_s", "total_s")
                },
            }
        )
    return rows


def floors(python: str) -> list[dict]:
    """Each framework's kernel-launch floor (backends/gpu_floor.py), one process each."""
    out = []
    for fw in FRAMEWORKS:
        proc = _run([python, "-m", "backends.gpu_floor", fw])
        try:
            out.append(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (IndexError, json.JSONDecodeError):
            out.append({"framework": fw, "floor_us": None, "error": proc.stderr[-300:]})
    return out


def _f(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}g}"


def markdown(gpu: str, par: list[dict], steps: list[dict], flo: list[dict], env: str) -> str:
    """results/benchmarks/gpu-<name>.md from the measurements."""
    lines = [
        f"# harness on a GPU: {gpu}",
        "",
        f"Written by `scripts/gpu_check.sh` ({env}). Absolute times are of this machine.",
        "",
        "## Step time per backend, TF32 off and on",
        "",
        "Digits 0-9, Dense 64-25-15-10 ReLU, Adam; one harness sweep (`train.device=gpu`). "
        "Step = mean time of one optimizer step over an epoch; first epoch includes building, "
        "compiling and tracing.",
        "",
        "| backend | batch | step TF32 off (ms) | step TF32 on (ms) | steady epoch TF32 off (s) "
        "| steady epoch TF32 on (s) | first epoch TF32 off (s) | device |",
        "|---|---|---|---|---|---|---|---|",
    ]
    cells: dict[tuple[str, str], dict[bool, dict]] = {}
    for s in steps:
        cells.setdefault((s["backend"], s["batch"]), {})[s["allow_tf32"]] = s
    order = {b: i for i, b in enumerate(BACKENDS)}
    for (b, batch), by in sorted(cells.items(), key=lambda kv: (order.get(kv[0][0], 99), kv[0])):
        off, on = by.get(False, {}), by.get(True, {})
        lines.append(
            f"| {b} | {'full' if batch in ('None', 'null') else batch} "
            f"| {_f(off.get('step_ms'))} | {_f(on.get('step_ms'))} "
            f"| {_f(off.get('steady_epoch_s'))} | {_f(on.get('steady_epoch_s'))} "
            f"| {_f(off.get('first_epoch_s'))} | {(off or on).get('device', '?')} |"
        )
    if not steps:
        lines.append("| (no run finished: see the script's output) | | | | | | | |")
    lines += [
        "",
        "## Kernel-launch floor",
        "",
        "Median time of a trivial op (add 1 to a one-element tensor) plus a device "
        "synchronisation (`backends/gpu_floor.py`): no step can be faster.",
        "",
        "| framework | floor (µs) |",
        "|---|---|",
        *(f"| {f['framework']} | {_f(f.get('floor_us'))} |" for f in flo),
        "",
        "## Parity with the NumPy reference on the GPU, TF32 off",
        "",
        "`python -m harness.parity --device gpu` per backend (float32 and float64; the "
        "reference trains on the CPU). Verdicts: "
        + ", ".join(f"{p['backend']} {'pass' if p['rc'] == 0 else 'FAIL'}" for p in par)
        + ".",
    ]
    for p in par:
        lines += ["", f"### {p['backend']}", "", p["table"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/gpu_check.sh", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--no-install", action="store_true", help="use the builds installed")
    parser.add_argument("--out", default="results/benchmarks")
    parser.add_argument("--parity-epochs", type=int, default=100)
    parser.add_argument("--bench-epochs", type=int, default=30)
    parser.add_argument("--name", help="the file's GPU name (default: nvidia-smi's, slugged)")
    args = parser.parse_args(argv)
    try:
        gpu = gpu_name()
    except NoGPU as exc:
        print(NO_GPU.format(why=exc), file=sys.stderr)
        return 2
    python = sys.executable
    if not args.no_install:
        install(python)
    par = parity(python, args.parity_epochs)
    with tempfile.TemporaryDirectory() as tmp:
        steps = step_times(python, args.bench_epochs, f"sqlite:///{Path(tmp) / 'gpu.db'}")
    flo = floors(python)
    env = f"Python {platform.python_version()}, {platform.node()}"
    path = Path(args.out) / f"gpu-{slug(args.name or gpu)}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown(gpu, par, steps, flo, env))
    print(f"[gpu_check] wrote {path}", file=sys.stderr)
    return 0 if all(p["rc"] == 0 for p in par) else 1


if __name__ == "__main__":
    raise SystemExit(main())
