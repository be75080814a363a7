"""What a run spends outside its epochs, in one warm process (as a sweep's worker).

    PYTHONPATH=$PWD python scripts/run_overhead.py keras-reuse [N]   # fresh vs reused, interleaved
    PYTHONPATH=$PWD python scripts/run_overhead.py eval-share BACKEND  # evaluation's share

keras-reuse: N pairs of 5-epoch runs (digits_binary, batch 32), one with the cached model
dropped (a fresh build), one reusing it, interleaved; gc.collect + gc.freeze between runs as
harness.sweep.workers does. Prints per run: wall time, the first epoch's excess over the
median epoch (fit's tracing), and the time from the last epoch's callback to `fit` returning.
eval-share: what the per-epoch evaluation adds to a full-batch epoch (digits 0-9, 25-15-10
ReLU, logits), computed as harness.tools.bench does; 3 runs of 60 epochs after a warm-up.
Run it with PYTHONPATH at two trees, alternately, to compare them. Ranges over repeats: the
machine is shared.
"""

from __future__ import annotations

import gc
import statistics
import sys
import time

import numpy as np

from harness.run.train import run
from tests.conftest import make_spec


def _quiet(*args, **kwargs) -> None:
    pass


def keras_reuse(pairs: int) -> None:
    import keras

    from backends import keras_backend as kb

    spec = make_spec("backend=keras", "tracking.enabled=false", "train.epochs=5")
    returned: list[float] = []
    fit = keras.Model.fit

    def timed_fit(self, *args, **kwargs):
        history = fit(self, *args, **kwargs)
        returned.append(time.perf_counter())
        return history

    keras.Model.fit = timed_fit

    def one(fresh: bool) -> tuple[float, float, float]:
        if fresh:
            kb._WARM = None
        stamps: list[float] = []
        inside: list[float] = []

        def seen(epoch: int, metrics: dict[str, float]) -> None:
            stamps.append(time.perf_counter())
            inside.append(metrics["time/epoch_s"] + metrics["time/eval_s"])

        t0 = time.perf_counter()
        run(spec, log=_quiet, on_metrics=seen)
        wall = time.perf_counter() - t0
        gc.collect()
        gc.freeze()
        return wall, inside[0] - float(np.median(inside[1:])), returned[-1] - stamps[-1]

    one(True)
    one(False)
    rows: dict[bool, list] = {True: [], False: []}
    for i in range(pairs):
        for fresh in (True, False) if i % 2 else (False, True):
            rows[fresh].append(one(fresh))
    for fresh, values in rows.items():
        a = np.array(values) * 1000
        print(
            f"{'fresh ' if fresh else 'reused'}: run {a[:, 0].min():.0f}..{a[:, 0].max():.0f} ms"
            f" (median {np.median(a[:, 0]):.0f}); first epoch's excess {a[:, 1].min():.0f}.."
            f"{a[:, 1].max():.0f} ms; last epoch -> fit returns {a[:, 2].min():.1f}.."
            f"{a[:, 2].max():.1f} ms"
        )


def eval_share(backend: str) -> None:
    spec = make_spec(
        f"backend={backend}", "data=digits", "model.hidden_activation=relu",
        "model.from_logits=true", "train.epochs=60", "train.batch_size=null",
        "tracking.enabled=false",
    )
    shares = []
    for i in range(4):
        stamps: list[float] = []
        evals: list[float] = []

        def seen(epoch: int, metrics: dict[str, float], stamps=stamps, evals=evals) -> None:
            stamps.append(time.perf_counter())
            evals.append(metrics["time/eval_s"])

        run(spec, log=_quiet, on_metrics=seen)
        if i:  # the first run warms imports and caches
            with_eval = statistics.median(np.diff(stamps)[1:])
            without = statistics.median(np.diff(np.array(stamps) - np.cumsum(evals))[1:])
            shares.append(with_eval / without - 1)
    print(f"{backend}: the evaluation adds " + " ".join(f"{s:.0%}" for s in shares))


if __name__ == "__main__":
    if sys.argv[1] == "keras-reuse":
        keras_reuse(int(sys.argv[2]) if len(sys.argv) > 2 else 10)
    else:
        eval_share(sys.argv[2])
