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
ratios, measured minutes apart in one run, are the result. The sweeps (`--sweep-jobs`,
`--course`, `--course-seeds N`) are measured by harness.tools.bench_sweeps.

Keras is measured on each of its engines (TensorFlow, JAX, PyTorch), a group and a fresh
process each, KERAS_BACKEND set before Keras is imported: each engine's harness backend
against that engine's own fastest `fit`, and the engines' harness epochs side by side.
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
from collections.abc import Callable
from pathlib import Path

import numpy as np

from backends import baselines
from harness.tools.bench_sweeps import breakdown_lines, measure_course_sweep, measure_sweep
from harness.tools.bench_targets import FASTEST, TARGETS, ratios, verdict  # noqa: F401


def _steady(stamps: list[float]) -> float:
    """Median epoch time after the first epoch, from end-of-epoch timestamps."""
    diffs = np.diff(stamps)
    return float(np.median(diffs[1:] if len(diffs) > 1 else diffs))


def _harness_spec(backend: str, batch: int | None, epochs: int, tracking_uri: str | None = None):
    from hydra import compose, initialize_config_dir

    from harness.core.config import register_configs, to_spec
    from harness.core.paths import CONF_DIR

    register_configs()
    overrides = [
        # the logits form, as every other variant here: linear output, from_logits loss
        f"backend={backend}", "data=digits", "model.hidden_activation=relu",
        "model.from_logits=true",
        f"train.epochs={epochs}", f"train.batch_size={'null' if batch is None else batch}",
    ]
    if tracking_uri:
        overrides += [f"tracking.uri={tracking_uri}", "tracking.experiment=bench"]
    else:
        overrides += ["tracking.enabled=false"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return to_spec(compose("config", overrides=overrides))


def harness_variant(backend: str) -> Callable[[int | None, int], dict[str, list[float]]]:
    """The harness's backend, timed two ways in one run: its epochs as the other variants'
    (training only), and with the per-epoch evaluation the others do not do."""
    without_eval, with_eval = baselines.harness_variants(backend)

    def train(batch: int | None, epochs: int) -> dict[str, list[float]]:
        from harness.run.train import run

        stamps: list[float] = []  # taken once the harness has recorded the epoch
        evals: list[float] = []  # each epoch's evaluation (forward passes and metrics)

        def seen(epoch: int, metrics: dict[str, float]) -> None:
            stamps.append(time.perf_counter())
            evals.append(metrics["time/eval_s"])

        run(_harness_spec(backend, batch, epochs), log=lambda *a, **k: None, on_metrics=seen)
        return {
            without_eval.name: list(np.array(stamps) - np.cumsum(evals)),
            with_eval.name: stamps,
        }

    return train


def measure_group(framework: str, repeats: int, epochs: int) -> list[dict]:
    """In this (fresh) process: every variant of one framework, interleaved repeats."""
    import logging
    import warnings

    baselines.prepare_process(framework)  # Keras' engine, before anything imports Keras
    warnings.filterwarnings("ignore")
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    others = [v for v in baselines.variants(framework) if v.role not in baselines.HARNESS_ROLES]
    rows = []
    for batch in (32, None):
        times: dict[str, list[float]] = {}
        for _ in range(repeats):
            series = harness_variant(framework)(batch, epochs)
            series.update({v.name: v.train(batch, epochs) for v in others})
            for name, stamps in series.items():
                times.setdefault(name, []).append(_steady(stamps))
        for name, values in times.items():
            rows.append({
                "group": framework, "variant": name,
                "batch": "full" if batch is None else str(batch),
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


def environment() -> dict[str, str]:
    from importlib.metadata import version

    env = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": str(os.cpu_count()),
    }
    for pkg in ("tensorflow", "keras", "jax", "torch", "lightning", "mlflow", "numpy"):
        env[pkg] = version(pkg)
    from harness.run.train import cpu_model

    env["cpu"] = cpu_model()
    return env


def _in_subprocess(args: list[str]) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [sys.executable, "-m", "harness.bench", *args, "--json", out.name]
        # stdout dropped: textbook Lightning prints tables
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def write_table(rows: list[dict], out_dir: Path, label: str, argv: list[str],
                compared: tuple | None = None) -> Path:  # (old table's path, its comparison)
    out_dir.mkdir(parents=True, exist_ok=True)
    env = environment()
    command = "python -m harness.bench " + " ".join(argv)
    lines = [f"# Benchmark: {label}", "", f"Command: `{command}`", ""]
    lines += ["## Ratios (targets from the performance issue)", ""]
    lines += ["| measure | ratio | target | met |", "|---|---|---|---|"]
    lines += [
        f"| {claim} | {value:.3f} | {target} | {verdict(claim, value, target)} |"
        for claim, value, target in ratios(rows)
    ]
    lines += ["", "## Steady-state epoch, median over repeats", ""]
    lines += ["| framework | variant | batch | epoch ms | repeats (ms) |", "|---|---|---|---|---|"]
    for r in rows:
        if "steady_epoch_ms" in r:
            lines.append(
                f"| {r['group']} | {r['variant']} | {r['batch']} "
                f"| {r['steady_epoch_ms']:.2f} | {r['repeats']} |"
            )
    breakdown = breakdown_lines(rows)
    if breakdown:
        lines += ["", "## Where the sequential sweeps' wall time went (the sweep's own account)"]
        lines += breakdown
    other = [r for r in rows if "steady_epoch_ms" not in r]
    if other:
        lines += ["", "## Tracking and sweeps", ""]
        lines += [f"- {json.dumps(r, sort_keys=True)}" for r in other]
    data = {"rows": rows, "environment": env}
    if compared:
        from harness.tools.bench_compare import render

        lines += ["", *render(compared[1], compared[0])]
        data["comparison"] = {"against": compared[0], **compared[1]}
    lines += ["", "## Environment", ""] + [f"- {k}: {v}" for k, v in env.items()]
    path = out_dir / f"{label}.md"
    path.write_text("\n".join(lines) + "\n")
    (out_dir / f"{label}.json").write_text(json.dumps(data, indent=1) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=12, help="epochs per variant and repeat")
    parser.add_argument(
        "--sweep-jobs", type=int, default=16, help="jobs in the sweep comparison (0: skip)"
    )
    parser.add_argument("--sweep-epochs", type=int, default=100)
    parser.add_argument(
        "--course", action="store_true",
        help="also time the course sweep (+experiment=course: 10 seeds, 320 runs), "
        "sequential and with 2 parallel slots (~15 min)",
    )
    parser.add_argument(
        "--course-seeds", type=int, metavar="N",
        help="time the course sweep with its first N seeds only, for quick iteration",
    )
    parser.add_argument("--compare", metavar="OLD.json", help="compare the ratios with this "
                        "table's by ranges over repeats (harness.tools.bench_compare)")
    parser.add_argument("--against", metavar="NEW.json",
                        help="with --compare: measure nothing, compare this table instead")
    parser.add_argument("--out", default="results/benchmarks")
    parser.add_argument("--label", default="cpu-2core")
    groups = [*baselines.FRAMEWORKS, "tracking"]
    parser.add_argument("--group", choices=groups, help=argparse.SUPPRESS)
    parser.add_argument("--json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    from harness.tools import bench_compare

    if args.against:
        return bench_compare.compare_files(
            args.compare or parser.error("--against needs --compare"), args.against)
    # the old table read first: a wrong path fails now, not after the measuring
    old = json.loads(Path(args.compare).read_text())["rows"] if args.compare else None
    if args.group:  # a child process measuring one framework
        rows = (
            measure_tracking(args.repeats, args.epochs * 4) if args.group == "tracking"
            else measure_group(args.group, args.repeats, args.epochs)
        )
        Path(args.json).write_text(json.dumps(rows))
        return 0
    rows: list[dict] = []
    common = ["--repeats", str(args.repeats), "--epochs", str(args.epochs)]
    for group in groups:
        print(f"[bench] {group} ...", file=sys.stderr, flush=True)
        rows += _in_subprocess(["--group", group, *common])
    if args.sweep_jobs:
        print(f"[bench] sweep of {args.sweep_jobs} jobs, sequential and parallel ...",
              file=sys.stderr, flush=True)
        rows += measure_sweep(args.sweep_jobs, args.sweep_epochs)
    if args.course or args.course_seeds:
        seeds = f"its first {args.course_seeds} seeds" if args.course_seeds else "10 seeds"
        print(f"[bench] the course sweep ({seeds}) ...", file=sys.stderr, flush=True)
        rows += measure_course_sweep(args.course_seeds)
    for claim, value, target in ratios(rows):
        print(f"{claim:70s} {value:8.3f}   target {target}")
    compared = old and (args.compare, bench_compare.compare(rows, old))
    if compared:
        print(bench_compare.worse_line(compared[1]))
    path = write_table(rows, Path(args.out), args.label,
                       argv if argv is not None else sys.argv[1:], compared)
    print(f"[bench] table written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
