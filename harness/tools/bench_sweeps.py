"""The benchmark's sweeps (`python -m harness.bench`): real CLI sweeps, sequential and with
two parallel slots, each into a fresh store, and the sweep targets of the performance issue.

A sweep's time in epochs is, over its runs, every epoch's training steps and its evaluation
(time/epoch_s + time/eval_s, as each run logged them); everything else in the sweep's wall
time (start-up, Hydra, claims, tracking, model build, imports) is outside epochs. Each run
also logs its own time outside epochs (time/outside_epochs_s, harness.run.train): the
median per backend is read from the sweep's runs.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

EXPERIMENT = "bench"


def timed_sweep(args: list[str], variant: str, epochs: int) -> list[dict]:
    """Sequential, then with the parallel preset: wall time, time in epochs, the share of
    wall time outside epochs, the median per-run time outside epochs per backend."""
    rows = []
    for launcher in ([], ["+launcher=parallel"]):
        with tempfile.TemporaryDirectory() as tmp:
            uri = f"sqlite:///{tmp}/sweep.db"
            cmd = [sys.executable, "-m", "harness", *args, f"tracking.experiment={EXPERIMENT}",
                   f"tracking.uri={uri}", *launcher, "-m"]
            env = {**os.environ, "HARNESS_QUIET": "1"}
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, env=env)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                raise RuntimeError(f"{variant} sweep failed:\n{proc.stderr[-3000:]}")
            runs = sweep_runs(uri)
            parts = sweep_time_parts(uri)
        in_epochs = sum(r["in_epochs_s"] for r in runs)
        rows.append({
            "group": "sweep",
            "variant": f"{variant}parallel (2 workers)" if launcher else f"{variant}sequential",
            "jobs": len(runs), "epochs": epochs, "wall_s": wall,
            "training_s": in_epochs,  # epochs and their evaluation
            "epoch_steps_s": sum(r["epoch_s"] for r in runs),
            "overhead_share": None if launcher else 1 - in_epochs / wall,
            "outside_epochs_median_s": median_outside(runs),
            "time_parts": parts,  # where the wall time went, as the sweep measured it
        })
    return rows


def sweep_time_parts(uri: str) -> dict[str, float]:
    """The sweep's own account of its wall time (harness.sweep.timing), from its parent run."""
    from harness.store import ROLE_SWEEP, Reader
    from harness.sweep.timing import TIME_PREFIX

    reader = Reader(uri)
    exp = reader.experiment(EXPERIMENT)
    parents = reader.runs(exp.experiment_id, role=ROLE_SWEEP)
    if not parents:
        return {}
    metrics = parents[0].data.metrics
    return {k.removeprefix(TIME_PREFIX): v for k, v in metrics.items() if k.startswith(TIME_PREFIX)}


# the parts in the order a sequential sweep spends them, and what each holds
PARTS = (
    ("startup_s", "start-up: Python, Hydra, the command line's configuration"),
    ("plan_s", "plan: every job composed by Hydra and validated, store and parent run opened"),
    ("launch_s", "Hydra's own validation of the batch (a second composition per job)"),
    ("claim_s", "claims taken before each job"),
    ("worker_wait_s", "jobs waiting for their worker (its start and import), and the trips"),
    ("run_outside_epochs_s", "runs outside their epochs (data, set-up, build, callbacks)"),
    ("in_epochs_s", "runs in their epochs (training steps and evaluation)"),
    ("run_end_s", "runs' final metric flush and end in the store"),
    ("other_s", "the rest (Hydra's per-job bookkeeping, the sweep's end)"),
)


def breakdown_lines(rows: list[dict]) -> list[str]:
    """A Markdown table per sequential sweep: each part of its wall time, its share, per job."""
    lines: list[str] = []
    for r in rows:
        parts = r.get("time_parts") or {}
        if r.get("group") != "sweep" or not parts or parts.get("slots", 1) != 1:
            continue
        wall, jobs = parts.get("wall_s", r["wall_s"]), r["jobs"]
        lines += ["", f"### {r['variant']} sweep, {jobs} jobs: {wall:.1f} s", ""]
        lines += ["| part | s | share of wall | ms per job |", "|---|---|---|---|"]
        for key, what in PARTS:
            if key in parts:
                v = parts[key]
                lines.append(f"| {what} | {v:.1f} | {v / wall:.3f} | {1000 * v / jobs:.0f} |")
        if "claim_background_s" in parts:
            v = parts["claim_background_s"]
            lines.append(
                f"| (off the path: claims' link and release, writer thread) | {v:.1f} | - "
                f"| {1000 * v / jobs:.0f} |"
            )
    return lines


def sweep_runs(uri: str) -> list[dict]:
    """Per job run of the sweep: its backend, epoch and evaluation seconds, time outside."""
    from harness.store import ROLE_JOB, Reader

    reader = Reader(uri)
    exp = reader.experiment(EXPERIMENT)
    out = []
    for r in reader.runs(exp.experiment_id, role=ROLE_JOB):
        run_id = r.info.run_id
        epoch_s = sum(m.value for m in reader.metric_history(run_id, "time/epoch_s"))
        eval_s = sum(m.value for m in reader.metric_history(run_id, "time/eval_s"))
        out.append({
            "backend": r.data.tags.get("backend", "?"),
            "epoch_s": epoch_s,
            "in_epochs_s": epoch_s + eval_s,
            "outside_epochs_s": r.data.metrics.get("time/outside_epochs_s"),
        })
    return out


def median_outside(runs: list[dict]) -> dict[str, float]:
    """Median time/outside_epochs_s per backend (runs that logged it)."""
    by: dict[str, list[float]] = {}
    for r in runs:
        if r["outside_epochs_s"] is not None:
            by.setdefault(r["backend"], []).append(r["outside_epochs_s"])
    return {b: statistics.median(v) for b, v in sorted(by.items())}


def measure_sweep(jobs: int, epochs: int) -> list[dict]:
    """A mixed sweep of `jobs` runs: half Keras, half Lightning."""
    seeds = ",".join(str(s) for s in range(jobs // 2))
    args = ["backend=keras,lightning", f"seed={seeds}", "data=digits",
            "model.hidden_activation=relu", f"train.epochs={epochs}"]
    return timed_sweep(args, "", epochs)


def measure_course_sweep(seeds: int | None = None) -> list[dict]:
    """The `course` experiment (10 seeds: 320 runs, default budgets), or its first `seeds`
    seeds only (quicker iteration; the table says how many jobs it ran)."""
    args = ["+experiment=course"] + ([f"seed=range(0,{seeds})"] if seeds else [])
    return timed_sweep(args, "course ", 100)


OUTSIDE_RUN_S = 0.15  # the target for the median per-run time outside epochs


def sweep_ratios(rows: list[dict]) -> list[tuple[str, float, str]]:
    """(claim, value, target) for the sweep rows present."""
    out: list[tuple[str, float, str]] = []
    sweeps = {r["variant"]: r for r in rows if r["group"] == "sweep"}
    for prefix, name, share_target, speedup_target in (
        ("course ", "course sweep", "<= 0.10", ">= 1.85"),
        ("", "sweep", "<= 0.25", ">= 1.75"),
    ):
        seq = sweeps.get(f"{prefix}sequential")
        if seq is None:
            continue
        jobs = seq["jobs"]
        claim = (
            f"course sweep time outside epochs, share of wall time, sequential ({jobs} jobs)"
            if prefix else f"sweep overhead share, sequential ({jobs} jobs)"
        )
        out.append((claim, seq["overhead_share"], share_target))
        for backend, median in (seq.get("outside_epochs_median_s") or {}).items():
            claim = f"median run time outside epochs (s), {backend}, {name} ({jobs} jobs)"
            out.append((claim, median, f"<= {OUTSIDE_RUN_S}"))
        par = sweeps.get(f"{prefix}parallel (2 workers)")
        if par is not None:
            speedup = seq["wall_s"] / par["wall_s"]
            claim = (f"course sweep speed-up, 2 parallel workers vs 1 ({jobs} jobs)" if prefix
                     else "sweep speed-up, 2 parallel workers vs 1")
            out.append((claim, speedup, speedup_target))
        if prefix:
            out.append((f"course sweep wall minutes, sequential ({jobs} jobs)",
                        seq["wall_s"] / 60, "(reported)"))
            if par is not None:
                out.append((f"course sweep wall minutes, 2 parallel workers ({jobs} jobs)",
                            par["wall_s"] / 60, "(reported)"))
    return out
