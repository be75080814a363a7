"""`python -m harness.bench`: the harness against the plainest and the fastest ways to drive
each framework, side by side in one invocation, reported as ratios.

Same data and model everywhere: digits 0-9, Dense 64-25-15-10 ReLU, Adam 1e-3, batch 32
and full batch. Each framework is measured in its own fresh process (no cross-framework
thread pools). A variant trains `--epochs` epochs; its steady-state epoch is the median
wall time between consecutive end-of-epoch callbacks after the first epoch (tracing and
compilation excluded); the figure reported is the median over `--repeats` repeats. The
harness's backends also evaluate the train and validation sets after every epoch, which no
other variant does: each harness run is reported both without that evaluation (its
`time/eval_s`, measured in the run, taken out: the targets compare training with training)
and with it. Absolute times on a shared machine are noise; the
ratios, measured minutes apart in one run, are the result.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

HIDDEN = [25, 15]
LR = 1e-3


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    n_train = int(len(d.target) * 0.8)
    return (d.data[:n_train] / 16.0).astype(np.float32), d.target[:n_train].astype(np.int64)


def _steady(stamps: list[float]) -> float:
    """Median epoch time after the first epoch, from end-of-epoch timestamps."""
    diffs = np.diff(stamps)
    return float(np.median(diffs[1:] if len(diffs) > 1 else diffs))


def _harness_spec(backend: str, batch: int | None, epochs: int, tracking_uri: str | None = None):
    from hydra import compose, initialize_config_dir

    from harness.core.config import register_configs, to_spec

    register_configs()
    from harness.core.paths import CONF_DIR as conf
    overrides = [
        # the logits form, as every other variant here: linear output, from_logits loss
        f"backend={backend}", "data=digits", "model.hidden_activation=relu", "model.from_logits=true",
        f"train.epochs={epochs}", f"train.batch_size={'null' if batch is None else batch}",
    ]
    overrides += [f"tracking.uri={tracking_uri}", "tracking.experiment=bench"] if tracking_uri else ["tracking.enabled=false"]
    with initialize_config_dir(config_dir=str(conf), version_base="1.3"):
        return to_spec(compose("config", overrides=overrides))


def harness_variant(backend: str) -> Callable[[int | None, int], dict[str, list[float]]]:
    """The harness's backend, timed two ways in one run: its epochs as the other variants'
    (training only), and with the per-epoch evaluation the others do not do."""

    def train(batch: int | None, epochs: int) -> dict[str, list[float]]:
        from harness.run.train import run

        stamps: list[float] = []  # taken once the harness has recorded the epoch
        evals: list[float] = []  # each epoch's evaluation (forward passes and metrics)

        def seen(epoch: int, metrics: dict[str, float]) -> None:
            stamps.append(time.perf_counter())
            evals.append(metrics["time/eval_s"])

        run(_harness_spec(backend, batch, epochs), log=lambda *a, **k: None, on_metrics=seen)
        return {
            f"harness {backend}": list(np.array(stamps) - np.cumsum(evals)),
            f"harness {backend} + per-epoch evaluation": stamps,
        }

    return train


# --- Keras / TensorFlow -------------------------------------------------------------------


def _keras():
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from backends.base import quiet_native_stderr

    with quiet_native_stderr():
        import keras
        import tensorflow as tf
    return keras, tf


def _keras_model(keras, n_in: int):
    return keras.Sequential(
        [keras.Input((n_in,))]
        + [keras.layers.Dense(h, activation="relu") for h in HIDDEN]
        + [keras.layers.Dense(10)]
    )


class _Stamps:
    def __init__(self, keras):
        class CB(keras.callbacks.Callback):
            def on_epoch_end(cb, epoch, logs=None):
                self.stamps.append(time.perf_counter())

        self.stamps: list[float] = []
        self.callback = CB()


def keras_textbook(batch: int | None, epochs: int) -> list[float]:
    """The tutorial way: compile + fit on NumPy arrays."""
    keras, _ = _keras()
    x, y = digits()
    model = _keras_model(keras, x.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    st = _Stamps(keras)
    model.fit(x, y, batch_size=batch or len(x), epochs=epochs, verbose=0, callbacks=[st.callback])
    return st.stamps


def keras_dataset_spe(batch: int | None, epochs: int) -> list[float]:
    """Keras' fastest `fit`: a tf.data.Dataset and steps_per_execution = one epoch."""
    keras, tf = _keras()
    x, y = digits()
    bs = batch or len(x)
    steps = -(-len(x) // bs)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=0).batch(bs).repeat().prefetch(2)
    model = _keras_model(keras, x.shape[1])
    model.compile(
        optimizer=keras.optimizers.Adam(LR),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps,
    )
    st = _Stamps(keras)
    model.fit(ds, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[st.callback])
    return st.stamps


def keras_tf_function_loop(batch: int | None, epochs: int) -> list[float]:
    """A minimal hand-written loop: one tf.function step per batch."""
    keras, tf = _keras()
    x, y = digits()
    bs = batch or len(x)
    model = _keras_model(keras, x.shape[1])
    opt = keras.optimizers.Adam(LR)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    xt, yt = tf.constant(x), tf.constant(y)

    @tf.function
    def step(xb, yb):
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    rng = np.random.default_rng(0)
    stamps = []
    for _ in range(epochs):
        idx = tf.constant(rng.permutation(len(x)))
        xs, ys = tf.gather(xt, idx), tf.gather(yt, idx)
        for i in range(0, len(x), bs):
            loss = step(xs[i : i + bs], ys[i : i + bs])
        float(loss)  # wait for the epoch's last step
        stamps.append(time.perf_counter())
    return stamps


# --- PyTorch / Lightning ------------------------------------------------------------------


def _torch_model(torch, n_in: int):
    nn = torch.nn
    return nn.Sequential(nn.Linear(n_in, 25), nn.ReLU(), nn.Linear(25, 15), nn.ReLU(), nn.Linear(15, 10))


def torch_loop(batch: int | None, epochs: int) -> list[float]:
    """A minimal hand-written PyTorch loop on in-memory tensors."""
    import torch

    x, y = digits()
    bs = batch or len(x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model = _torch_model(torch, x.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    stamps = []
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), bs):
            idx = perm[i : i + bs]
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        float(loss)
        stamps.append(time.perf_counter())
    return stamps


def _lightning_module(torch, L, n_in: int, log_every_step: bool, stamps: list[float]):
    class Module(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = _torch_model(torch, n_in)

        def training_step(self, batch, batch_idx):
            xb, yb = batch
            loss = torch.nn.functional.cross_entropy(self.net(xb), yb)
            if log_every_step:
                self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True)
            return loss

        def on_train_epoch_end(self):
            stamps.append(time.perf_counter())

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=LR)

    return Module()


def lightning_textbook(batch: int | None, epochs: int) -> list[float]:
    """The tutorial way: DataLoader, per-step self.log, a default Trainer (logger, checkpoints)."""
    import lightning as L
    import torch

    x, y = digits()
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y)),
        batch_size=batch or len(x), shuffle=True,
    )
    stamps: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = L.Trainer(max_epochs=epochs, default_root_dir=tmp, enable_progress_bar=False)
        trainer.fit(_lightning_module(torch, L, x.shape[1], True, stamps), loader)
    return stamps


def lightning_lightest(batch: int | None, epochs: int) -> list[float]:
    """Lightning's lightest: in-memory batches, no logging, nothing the Trainer does alone."""
    import lightning as L
    import torch

    x, y = digits()
    bs = batch or len(x)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    class Batches:
        def __len__(self):
            return -(-len(x) // bs)

        def __iter__(self):
            perm = torch.randperm(len(x))
            return ((xt[perm[i : i + bs]], yt[perm[i : i + bs]]) for i in range(0, len(x), bs))

    stamps: list[float] = []
    trainer = L.Trainer(
        max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, limit_val_batches=0,
    )
    trainer.fit(_lightning_module(torch, L, x.shape[1], False, stamps), Batches())
    return stamps


GROUPS: dict[str, dict[str, Callable[[int | None, int], list[float]]]] = {
    "keras": {
        "harness keras": harness_variant("keras"),
        "keras fit, tf.data + steps_per_execution": keras_dataset_spe,
        "hand-written tf.function loop": keras_tf_function_loop,
        "textbook keras fit (NumPy arrays)": keras_textbook,
    },
    "lightning": {
        "harness lightning": harness_variant("lightning"),
        "lightning lightest (in-memory, no logging)": lightning_lightest,
        "hand-written pytorch loop": torch_loop,
        "textbook lightning (DataLoader + self.log)": lightning_textbook,
    },
}


def measure_group(group: str, repeats: int, epochs: int) -> list[dict]:
    """In this (fresh) process: every variant of one framework, interleaved repeats."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    rows = []
    for batch in (32, None):
        times: dict[str, list[float]] = {}
        for _ in range(repeats):
            for name, train in GROUPS[group].items():
                stamps = train(batch, epochs)
                for variant, series in (stamps.items() if isinstance(stamps, dict) else [(name, stamps)]):
                    times.setdefault(variant, []).append(_steady(series))
        for name, values in times.items():
            rows.append({
                "group": group, "variant": name, "batch": "full" if batch is None else str(batch),
                "steady_epoch_ms": 1000 * statistics.median(values),
                "repeats": [round(1000 * v, 3) for v in values],
            })
    return rows


def measure_tracking(repeats: int, epochs: int) -> list[dict]:
    """Whole-run wall time with tracking on (a real SQLite store) and off, interleaved."""
    from harness.run.train import run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/bench.db"
        from harness.store import Store

        Store(_harness_spec("lightning", 32, 1, uri).tracking)  # schema once, as a sweep does
        for backend in ("keras", "lightning"):
            on, off, inside = [], [], []
            for i in range(repeats + 1):
                r_on = run(_harness_spec(backend, 32, epochs, uri), log=lambda *a, **k: None)
                r_off = run(_harness_spec(backend, 32, epochs), log=lambda *a, **k: None)
                if i == 0:
                    continue  # first pair warms imports and graph caches
                on.append(r_on.wall_s)
                off.append(r_off.wall_s)
                inside.append(r_on.final["time/tracking_s"] / r_on.wall_s)
            rows.append({
                "group": "tracking", "variant": f"harness {backend}", "batch": "32",
                "run_s_tracked": statistics.median(on), "run_s_untracked": statistics.median(off),
                "tracking_share_measured_inside": statistics.median(inside),
            })
    return rows


def _timed_sweep(args: list[str], variant: str, jobs: int, epochs: int) -> list[dict]:
    """A real CLI sweep, sequential and with the parallel preset, each into a fresh store:
    wall time, time in epochs, and (sequential) the share of wall time that is overhead."""
    rows = []
    for launcher in ([], ["+launcher=parallel"]):
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{tmp}/sweep.db"
            cmd = [sys.executable, "-m", "harness", *args, "tracking.experiment=bench",
                   f"tracking.uri={uri}", *launcher, "-m"]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env={**os.environ, "HARNESS_QUIET": "1"})
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"{variant} sweep failed:\n{proc.stderr[-3000:]}")
            training = _sweep_training_seconds(uri)
        rows.append({
            "group": "sweep", "variant": f"{variant}parallel (2 workers)" if launcher else f"{variant}sequential",
            "jobs": jobs, "epochs": epochs, "wall_s": wall, "training_s": training,
            "overhead_share": None if launcher else 1 - training / wall,
        })
    return rows


def measure_sweep(jobs: int, epochs: int) -> list[dict]:
    """A mixed sweep of `jobs` runs: half Keras, half Lightning."""
    seeds = ",".join(str(s) for s in range(jobs // 2))
    args = ["backend=keras,lightning", f"seed={seeds}", "data=digits", "model.hidden_activation=relu",
            f"train.epochs={epochs}"]
    return _timed_sweep(args, "", jobs, epochs)


def measure_course_sweep() -> list[dict]:
    """The `course` experiment (96 runs, default budgets): its overhead share, and the
    parallel speed-up over a sweep long enough to amortise start-up."""
    return _timed_sweep(["+experiment=course"], "course ", 96, 100)


def _sweep_training_seconds(uri: str) -> float:
    """Sum over the sweep's runs of their epochs' time (training, first epoch included)."""
    from harness.store import ROLE_JOB, Reader

    reader = Reader(uri)
    exp = reader.experiment("bench")
    total = 0.0
    for r in reader.runs(exp.experiment_id, role=ROLE_JOB):
        total += sum(m.value for m in reader.metric_history(r.info.run_id, "time/epoch_s"))
    return total


def environment() -> dict[str, str]:
    from importlib.metadata import version

    env = {"python": platform.python_version(), "machine": platform.machine(), "cpus": str(os.cpu_count())}
    for pkg in ("tensorflow", "keras", "torch", "lightning", "mlflow", "numpy"):
        env[pkg] = version(pkg)
    from harness.run.train import cpu_model

    env["cpu"] = cpu_model()
    return env


def _in_subprocess(args: list[str]) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, "-m", "harness.bench", *args, "--json", out.name]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)  # textbook Lightning prints tables
        return json.loads(Path(out.name).read_text())


def ratios(rows: list[dict]) -> list[tuple[str, float, str]]:
    """(claim, measured ratio, target) for the issue's targets, per batch setting."""
    out = []
    by = {(r["variant"], r["batch"]): r for r in rows if "steady_epoch_ms" in r}
    for batch in ("32", "full"):
        def ms(v):
            return by[(v, batch)]["steady_epoch_ms"]

        hk, hk_eval = ms("harness keras"), ms("harness keras + per-epoch evaluation")
        fastest_k = min(
            r["steady_epoch_ms"] for (v, b), r in by.items()
            if b == batch and r["group"] == "keras" and not v.startswith("harness")
        )
        fit_k = ms("keras fit, tf.data + steps_per_execution")
        out += [
            (f"keras backend / fastest keras (batch {batch})", hk / fastest_k, "<= 1.25"),
            (f"keras backend / fastest keras fit (batch {batch})", hk / fit_k, "(fit's own floor)"),
            (f"keras backend with its evaluation / fastest keras (batch {batch})", hk_eval / fastest_k, "(reported)"),
            (f"textbook keras fit / keras backend (batch {batch})", ms("textbook keras fit (NumPy arrays)") / hk, ">= 4 (batch 32)"),
        ]
        hl, hl_eval = ms("harness lightning"), ms("harness lightning + per-epoch evaluation")
        lightest = ms("lightning lightest (in-memory, no logging)")
        out += [
            (f"lightning backend / lightning lightest (batch {batch})", hl / lightest, "<= 1.15"),
            (f"lightning backend with its evaluation / lightning lightest (batch {batch})", hl_eval / lightest, "(reported)"),
            (f"textbook lightning / lightning backend (batch {batch})", ms("textbook lightning (DataLoader + self.log)") / hl, ">= 1.5"),
            (f"lightning backend / hand-written pytorch (batch {batch})", hl / ms("hand-written pytorch loop"), "<= 2.5"),
        ]
    for r in rows:
        if r["group"] == "tracking":
            share = 1 - r["run_s_untracked"] / r["run_s_tracked"]
            out.append((f"tracking share of run wall time, {r['variant']} (on vs off)", share, "<= 0.03"))
            out.append((f"tracking share measured inside the run, {r['variant']}", r["tracking_share_measured_inside"], "<= 0.03"))
    sweeps = {r["variant"]: r for r in rows if r["group"] == "sweep"}
    if "course sequential" in sweeps:
        course = sweeps["course sequential"]
        out.append(("sweep overhead share, course sweep (96 jobs)", course["overhead_share"], "<= 0.25"))
        if "course parallel (2 workers)" in sweeps:
            par = sweeps["course parallel (2 workers)"]
            out.append(("course sweep speed-up, 2 parallel workers vs 1", course["wall_s"] / par["wall_s"], ">= 1.6"))
    if "sequential" in sweeps:
        seq, par = sweeps["sequential"], sweeps["parallel (2 workers)"]
        out.append((f"sweep overhead share, sequential ({seq['jobs']} jobs)", seq["overhead_share"], "<= 0.25"))
        out.append(("sweep speed-up, 2 parallel workers vs 1", seq["wall_s"] / par["wall_s"], ">= 1.6"))
    return out


def write_table(rows: list[dict], out_dir: Path, label: str, argv: list[str]) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    lines = [f"# Benchmark: {label}", "", "Command: `python -m harness.bench " + " ".join(argv) + "`", ""]
    lines += ["## Ratios (targets from the performance issue)", "", "| measure | ratio | target |", "|---|---|---|"]
    lines += [f"| {claim} | {value:.3f} | {target} |" for claim, value, target in ratios(rows)]
    lines += ["", "## Steady-state epoch, median over repeats", "", "| framework | variant | batch | epoch ms | repeats (ms) |", "|---|---|---|---|---|"]
    for r in rows:
        if "steady_epoch_ms" in r:
            lines.append(f"| {r['group']} | {r['variant']} | {r['batch']} | {r['steady_epoch_ms']:.2f} | {r['repeats']} |")
    other = [r for r in rows if "steady_epoch_ms" not in r]
    if other:
        lines += ["", "## Tracking and sweeps", ""]
        lines += [f"- {json.dumps(r, sort_keys=True)}" for r in other]
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()]
    path = out_dir / f"{label}.md"
    path.write_text("\n".join(lines) + "\n")
    (out_dir / f"{label}.json").write_text(json.dumps({"rows": rows, "environment": env}, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12, help="epochs per variant and repeat")
    parser.add_argument("--sweep-jobs", type=int, default=16, help="jobs in the sweep comparison (0: skip)")
    parser.add_argument("--sweep-epochs", type=int, default=100)
    parser.add_argument("--course", action="store_true", help="also time the 96-run course sweep, sequential and parallel (~6 min)")
    parser.add_argument("--out", default="results/benchmarks")
    parser.add_argument("--label", default="cpu-2core")
    parser.add_argument("--group", choices=[*GROUPS, "tracking"], help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.group:  # a child process measuring one framework
        rows = (
            measure_tracking(args.repeats, args.epochs * 4) if args.group == "tracking"
            else measure_group(args.group, args.repeats, args.epochs)
        )
        Path(args.json).write_text(json.dumps(rows))
        return 0
    rows: list[dict] = []
    common = ["--repeats", str(args.repeats), "--epochs", str(args.epochs)]
    for group in (*GROUPS, "tracking"):
        print(f"[bench] {group} ...", file=sys.stderr, flush=True)
        rows += _in_subprocess(["--group", group, *common])
    if args.sweep_jobs:
        print(f"[bench] sweep of {args.sweep_jobs} jobs, sequential and parallel ...", file=sys.stderr, flush=True)
        rows += measure_sweep(args.sweep_jobs, args.sweep_epochs)
    if args.course:
        print("[bench] the course sweep (96 runs) ...", file=sys.stderr, flush=True)
        rows += measure_course_sweep()
    for claim, value, target in ratios(rows):
        print(f"{claim:70s} {value:8.3f}   target {target}")
    path = write_table(rows, Path(args.out), args.label, argv if argv is not None else sys.argv[1:])
    print(f"[bench] table written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
