"""Does an instruction-set restriction reach the kernels a sweep uses? `python scripts/isa_check.py`

Each environment variable below caps the SIMD instruction set of one library (results/agreement/
uses them to emulate an older x86 CPU on this one). For each, a fresh interpreter computes the
same float32 results (a matmul, a sum, sigmoid, exp) in NumPy, PyTorch and TensorFlow; the
table says which results change bit for bit against the unrestricted run, so a rerun that
agrees bitwise is not an artefact of a variable that was ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

VARIANTS = [
    "OPENBLAS_CORETYPE=Haswell",
    "OPENBLAS_CORETYPE=Prescott",
    "ATEN_CPU_CAPABILITY=avx2",
    "ATEN_CPU_CAPABILITY=default",
    "MKL_ENABLE_INSTRUCTIONS=AVX2",
    "MKL_ENABLE_INSTRUCTIONS=SSE4_2",
    "MKL_CBWR=COMPATIBLE",
    "DNNL_MAX_CPU_ISA=AVX2",
    "ONEDNN_MAX_CPU_ISA=AVX2",
    "ONEDNN_MAX_CPU_ISA=SSE41",
    "TF_ENABLE_ONEDNN_OPTS=0",
]


def _probe() -> dict[str, str]:
    """Hashes of float32 results; odd sizes so that vector tails are exercised too."""
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((128, 257)).astype(np.float32)
    b = rng.standard_normal((257, 63)).astype(np.float32)
    x = rng.standard_normal(100003).astype(np.float32)

    def h(arr) -> str:
        return hashlib.sha1(np.ascontiguousarray(arr).tobytes()).hexdigest()[:10]

    out = {"numpy matmul": h(a @ b)}
    import torch

    ta, tb, tx = map(torch.from_numpy, (a, b, x))
    out |= {
        "torch capability": torch.backends.cpu.get_cpu_capability(),
        "torch matmul": h((ta @ tb).numpy()),
        "torch sigmoid": h(torch.sigmoid(tx).numpy()),
        "torch exp": h(torch.exp(tx).numpy()),
    }
    import tensorflow as tf

    ta, tb, tx = map(tf.constant, (a, b, x))
    out |= {
        "tf matmul": h(tf.matmul(ta, tb).numpy()),
        "tf sum": h(tf.reduce_sum(tx).numpy()),
        "tf sigmoid": h(tf.sigmoid(tx).numpy()),
    }
    return out


def _run(assignment: str | None) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if assignment:
        key, value = assignment.split("=", 1)
        env[key] = value
    done = subprocess.run(
        [sys.executable, __file__, "--probe"], env=env, capture_output=True, text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:] == ["--probe"]:
        print(json.dumps(_probe()))
        return
    base = _run(None)
    print(f"unrestricted: torch capability {base['torch capability']}")
    print("| variable | results whose bits change |\n|---|---|")
    for assignment in VARIANTS:
        got = _run(assignment)
        changed = [k for k in base if got[k] != base[k]]
        print(f"| `{assignment}` | {', '.join(changed) or 'none'} |")


if __name__ == "__main__":
    main()
