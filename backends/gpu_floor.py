"""The kernel-launch floor of each framework on the GPU: the median time of a trivial op (add
1 to a one-element tensor) followed by a device synchronisation. No step of a model can be
faster, so it says how much of the tiny network's step time is launch overhead.

`python -m backends.gpu_floor FRAMEWORK [REPEATS]` prints {"framework", "floor_us"} as JSON;
one framework per process (each grabs the GPU its own way). Needs a CUDA GPU.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable

FRAMEWORKS = ("torch", "tensorflow", "jax")


def _torch() -> Callable[[], None]:
    import torch

    x = torch.zeros(1, device="cuda")

    def op() -> None:
        x.add_(1)
        torch.cuda.synchronize()

    return op


def _tensorflow() -> Callable[[], None]:
    import tensorflow as tf

    with tf.device("/GPU:0"):
        x = tf.Variable(tf.zeros(1))

    def op() -> None:
        with tf.device("/GPU:0"):
            x.assign_add(tf.ones(1))
        tf.test.experimental.sync_devices()

    return op


def _jax() -> Callable[[], None]:
    import jax
    import jax.numpy as jnp

    gpu = jax.devices("gpu")[0]
    x = jax.device_put(jnp.zeros(1), gpu)
    add = jax.jit(lambda v: v + 1)

    def op() -> None:
        add(x).block_until_ready()

    return op


def floor_us(framework: str, repeats: int = 2000) -> float:
    """Median microseconds of one synchronised trivial op, after a warm-up."""
    op = {"torch": _torch, "tensorflow": _tensorflow, "jax": _jax}[framework]()
    for _ in range(100):  # warm-up: context, kernels, compilation
        op()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        op()
        times.append(time.perf_counter() - t0)
    return 1e6 * statistics.median(times)


if __name__ == "__main__":
    name = sys.argv[1]
    reps = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    print(json.dumps({"framework": name, "floor_us": floor_us(name, reps)}))
