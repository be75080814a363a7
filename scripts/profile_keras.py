"""Where a Keras run's time goes outside the training steps: the profiles behind the
benchmark's unmet targets (results/benchmarks/profiles-cpu-2core.md).

Two workloads, each run under a sampling profiler (py-spy: `pip install py-spy`), then
summed up by the same script:

    py-spy record -r 500 -f raw -o /tmp/warm.txt -- python scripts/profile_keras.py warm
    python scripts/profile_keras.py summarize warm /tmp/warm.txt

    py-spy record -r 500 -f raw -o /tmp/full.txt -- python scripts/profile_keras.py full
    python scripts/profile_keras.py summarize full /tmp/full.txt

`warm`: 11 course runs (digits 0/1, 25-15-1 sigmoid, gradient descent, batch 32, 100 epochs)
in one process after a first one, as a sweep's warm worker trains them (tracking to a
throwaway SQLite store); prints each part of the runs' time outside epochs (their own
metrics). `full`: the benchmark's full-batch Keras epoch (digits, 10 classes, relu, logits;
400 epochs, tracking off) against the hand-written tf.function loop, 3 times each.
"""

from __future__ import annotations

import collections
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PARTS = [
    "time/outside_epochs_s", "time/prepare_s", "time/backend_setup_s", "time/tracking_start_s",
    "time/build_s", "time/between_epochs_s", "time/fit_end_s",
]


def warm() -> None:
    from hydra import compose, initialize_config_dir

    from harness.core.config import register_configs, to_spec
    from harness.run.train import run

    register_configs()
    store = Path(tempfile.mkdtemp()) / "profile.db"
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        specs = [
            to_spec(compose("config", overrides=[
                "+experiment=course", "backend=keras", f"seed={seed}",
                f"tracking.uri=sqlite:///{store}", "tracking.experiment=profile",
            ]))
            for seed in range(12)
        ]
    quiet = lambda *a, **k: None  # noqa: E731
    run(specs[0], log=quiet)  # the import and the first build: not what a warm run pays
    results = [run(spec, log=quiet) for spec in specs[1:]]
    for part in PARTS:
        values = [r.final[part] for r in results]
        print(f"{part:26s} median {1000 * statistics.median(values):6.1f} ms")
    print(f"{'end (flush, end run)':26s} median "
          f"{1000 * statistics.median(r.end_s for r in results):6.1f} ms")


def full() -> None:
    from backends.baselines import keras_baselines
    from harness.tools.bench import _steady, harness_variant

    train = harness_variant("keras")
    for _ in range(3):
        harness = train(None, 400)
        hand = keras_baselines.tf_function_loop(None, 400)
        shown = {k: round(1000 * _steady(v), 3) for k, v in harness.items()}
        print(shown, "hand-written loop", round(1000 * _steady(hand), 3), "ms per epoch")
        time.sleep(0.1)


# the samples summed up: the warm runs (not the first), the full-batch epochs of both
WORKLOAD = {
    "warm": r"<listcomp> \((scripts/)?profile_keras\.py.*;run \(harness/run/train\.py",
    "full": r"train \(harness/tools/bench\.py|tf_function_loop",
}
# what each part of a sample's stack is (the first match, in this order)
FIT = r"fit \(keras/src/backend/tensorflow/trainer\.py"
STEP = r"function \(keras/src/backend/tensorflow/trainer"
EVAL = r"evaluate \(backends|_epoch_metrics|epoch_numerics"
KINDS = {
    "warm": [
        ("train steps (fit's train_function)", STEP),
        ("evaluation (forward passes, metrics)", EVAL),
        ("fit: metric reset before each epoch", r"reset_metrics"),
        ("fit: metric results after each epoch", r"_get_metrics_result_or_logs"),
        ("fit: set-up, iterator, callbacks", FIT),
        ("tracking (start, log, flush, end)", r"tracked_run|log_metrics|log_datasets"),
        ("data and weights (prepare)", r"prepare \(harness|network_weights"),
    ],
    "full": [
        ("hand-written loop", r"tf_function_loop"),
        ("harness: train step (fit's train_function)", STEP),
        ("harness: evaluation", EVAL),
        ("harness: fit's metric reset", r"reset_metrics"),
        ("harness: fit's metric results", r"_get_metrics_result_or_logs"),
        ("harness: fit's loop, iterator, callbacks", FIT),
    ],
}


def summarize(kind: str, path: str) -> None:
    """Samples per part, from py-spy's raw output (one stack and its count per line)."""
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        if not re.search(WORKLOAD[kind], stack):
            continue  # imports; the first, cold run (warm)
        total += int(n)
        part = next((name for name, rx in KINDS[kind] if re.search(rx, stack)), "other")
        counts[part] += int(n)
    print("| part | samples | share |\n|---|---|---|")
    for name, n in counts.most_common():
        print(f"| {name} | {n} | {n / total:.3f} |")


if __name__ == "__main__":
    {"warm": warm, "full": full}.get(sys.argv[1], lambda: summarize(sys.argv[2], sys.argv[3]))()
