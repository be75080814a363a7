"""Vectorization, from the lesson: forward propagation one neuron at a time in a Python loop,
against one matrix product per layer, against each framework's forward pass.

A run with `mode=vectorization` trains nothing. It builds the configured network from the
shared initial weights and times, on the first `train.batch_size` training examples:

- the lesson's loop: `dense()` computes one neuron for one example (a dot product of the
  neuron's weight column with the input, plus its bias, then the activation),
  `sequential()` chains the layers, and a loop runs over the examples;
- the run's backend over the whole batch: `numpy` is the lesson's vectorised version
  (`Z = A @ W + b`, then the activation, per layer), `keras` the Sequential model inside a
  tf.function, `lightning` the nn.Module under torch.no_grad.

Both are timed in the same process (median of repeats after a warm-up call, so tracing and
first-call allocations are excluded) and logged as `time/loop_forward_ms`,
`time/forward_ms`, `vectorization/speedup_vs_loop`, `throughput/samples_per_s` and
`vectorization/max_abs_diff_vs_loop` (the two must compute the same outputs).
`python -m harness +experiment=vectorization -m` sweeps backend x hidden-layer width.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from harness.core import config as C
from harness.core.init import Weights, network_weights

IMPLEMENTATION = {"numpy": "matmul", "keras": "keras", "lightning": "lightning"}


# --- the lesson's loop ------------------------------------------------------------------

_SCALAR = {
    C.Activation.sigmoid: lambda z: 1 / (1 + np.exp(-z)),
    C.Activation.relu: lambda z: max(z, 0),
    C.Activation.linear: lambda z: z,
    C.Activation.softmax: lambda z: z,  # applied to the whole layer after the loop
}


def dense(a_in: np.ndarray, w: np.ndarray, b: np.ndarray, g: Callable) -> np.ndarray:
    """One layer for one example, one neuron at a time (the lesson's `dense`)."""
    units = w.shape[1]
    a_out = np.zeros(units, dtype=a_in.dtype)
    for j in range(units):
        z = np.dot(w[:, j], a_in) + b[j]
        a_out[j] = g(z)
    return a_out


def sequential(x: np.ndarray, weights: Weights, acts: list[C.Activation]) -> np.ndarray:
    a = x
    for (w, b), act in zip(weights, acts, strict=True):
        a = dense(a, w, b, _SCALAR[act])
        if act is C.Activation.softmax:
            e = np.exp(a - a.max())
            a = e / e.sum()
    return a


def loop_forward(x: np.ndarray, weights: Weights, acts: list[C.Activation]) -> np.ndarray:
    """The batch one example at a time."""
    with np.errstate(over="ignore"):  # exp(-z) of a very negative z: sigmoid is 0, correctly
        return np.stack([sequential(example, weights, acts) for example in x])


# --- timing -----------------------------------------------------------------------------


def time_call(fn: Callable[[], object], min_total_s: float = 0.2, min_repeats: int = 3,
              max_repeats: int = 1000, warm_up: bool = True) -> float:
    """Median seconds per call (at least min_repeats calls, and min_total_s in all)."""
    if warm_up:
        fn()  # tracing, first-call allocations: not what is being compared
    times: list[float] = []
    while len(times) < min_repeats or (sum(times) < min_total_s and len(times) < max_repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# --- one run ------------------------------------------------------------------------------


def run_name(spec: C.Config) -> str:
    widths = "x".join(str(h) for h in spec.model.hidden)
    implementation = IMPLEMENTATION.get(spec.backend.name, spec.backend.name)
    return f"vectorization-{implementation}-w{widths}-s{spec.seed}"


def prepare(spec: C.Config):
    """(inputs, batch, backend, what the backend recorded), the backend set up."""
    from backends import get_backend
    from backends.base import TrainInputs
    from harness.run.identity import prepare as prepare_data

    data, out_act = prepare_data(spec)
    weights = network_weights(
        spec.model, data.n_features, data.n_outputs, data.image_shape, spec.seed
    )
    inputs = TrainInputs(spec, data, weights, out_act)
    x = data.x_train[: spec.train.batch_size or len(data.x_train)]
    backend = get_backend(spec.backend.name)
    env = backend.setup(inputs)
    return inputs, x, backend, {**env, "task": data.task.value, "dataset": data.name}


def measure(inputs, x: np.ndarray, backend) -> dict[str, float]:
    """Time the lesson's loop and the backend's forward pass on the same batch."""
    spec = inputs.config
    dtype = np.dtype(C.DType(spec.train.dtype).value)
    weights = [(w.astype(dtype), b.astype(dtype)) for w, b in inputs.weights]
    acts = [C.Activation(spec.model.hidden_activation)] * len(spec.model.hidden) + [
        inputs.output_activation
    ]
    xs = x.astype(dtype)
    loop_out = loop_forward(xs, weights, acts)  # nothing to warm up in a pure-Python loop
    loop_s = time_call(lambda: loop_forward(xs, weights, acts), min_repeats=1, warm_up=False)
    with backend.forward(inputs, x) as forward:
        out = forward()
        forward_s = time_call(forward)
    return {
        "time/loop_forward_ms": 1000 * loop_s,
        "time/forward_ms": 1000 * forward_s,
        "vectorization/speedup_vs_loop": loop_s / forward_s,
        "throughput/samples_per_s": len(x) / forward_s,
        "vectorization/max_abs_diff_vs_loop": float(
            np.max(np.abs(out.astype(np.float64) - loop_out))
        ),
    }


def run(
    spec: C.Config,
    overrides: list[str] | None = None,
    log=print,
    parent_run_id: str | None = None,
    on_started: Callable[[str, str], None] | None = None,
):
    """One vectorization run, tracked like a training run; returns a harness.run.RunResult."""
    from harness.run.identity import RunResult, config_hash, flatten, provenance_tags, to_yaml
    from harness.store import tracked_run

    t_start = time.perf_counter()
    name, chash = run_name(spec), config_hash(spec)
    inputs, x, backend, env = prepare(spec)
    tags = {
        "mode": C.Mode.vectorization.value,
        "implementation": IMPLEMENTATION.get(spec.backend.name, spec.backend.name),
        **provenance_tags(spec, chash, overrides, env),
    }
    params = flatten(C.to_plain(spec))
    params["vectorization.batch"] = len(x)
    with tracked_run(
        spec.tracking, name, tags, params, to_yaml(spec), parent_run_id, on_started
    ) as tracked:
        metrics = measure(inputs, x, backend)
        if tracked is not None:
            tracked.log_metrics(metrics, step=1)
    wall = time.perf_counter() - t_start
    log(
        f"[harness] {name}: forward {metrics['time/forward_ms']:.3f} ms vs loop "
        f"{metrics['time/loop_forward_ms']:.1f} ms: "
        f"{metrics['vectorization/speedup_vs_loop']:.0f}x",
        file=sys.stderr,
    )
    return RunResult(name, chash, {**metrics, "time/total_s": wall}, 0, wall)
