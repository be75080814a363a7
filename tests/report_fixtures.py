"""Fabricated sweeps in a real SQLite MLflow store, written as harness.sweep.callback and
harness.run.train write them: the inputs of the report tests (tests/test_report*.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient

EPOCHS = 10
SEEDS = [0, 1, 2, 3]
# train loss: first epoch <= 0.1 per seed (None: never) and final value per seed
CROSS = {"sigmoid": [7, 8, 9, 9], "relu": [3, 4, 4, 5], "linear": [None] * 4}
FINAL = {
    "sigmoid": [0.09, 0.085, 0.08, 0.07],
    "relu": [0.03, 0.02, 0.04, 0.01],
    "linear": [0.5, 0.45, 0.55, 0.52],
}
LIGHTNING_OFFSET = [1e-6, 2e-6, 3e-6, 4e-6]  # added to Lightning's val loss, per seed
STEADY = {"keras": [0.1, 0.2, 0.1, 0.2], "lightning": [0.4, 0.8, 0.4, 0.8]}


def loss_curve(cross: int | None, final: float) -> list[float]:
    """Above 0.1 before `cross`, 0.1 at `cross`, then linear to `final`."""
    if cross is None:
        return list(np.linspace(1.0, final, EPOCHS))
    return list(np.linspace(1.0, 0.2, cross - 1)) + list(
        np.linspace(0.1, final, EPOCHS - cross + 1)
    )


def base_params(experiment: str, seed: int, backend: str) -> dict[str, str]:
    return {
        "backend.name": backend,
        "seed": str(seed),
        "data.name": "digits",
        "data.task": "multiclass",
        "data.n_train": "1437",
        "model.hidden": "[25, 15]",
        "model.hidden_activation": "sigmoid",
        "model.output_activation": "softmax",
        "model.from_logits": "False",
        "optimizer.name": "adam",
        "optimizer.lr": "0.001",
        "train.epochs": str(EPOCHS),
        "train.batch_size": "32",
        "question": f"Synthetic question of {experiment}?",
        "tracking.experiment": experiment,
        "tracking.uri": "sqlite:///somewhere.db",
    }


class Fab:
    """Writes runs as harness.sweep.callback / harness.run.train do: a parent with sweep.json,
    nested jobs."""

    def __init__(self, uri: str) -> None:
        self.client = MlflowClient(tracking_uri=uri)
        # artifacts beside the store, as harness.store.tracking does (MLflow's default is ./mlruns)
        self.artifacts = Path(uri.removeprefix("sqlite:///")).parent / "mlartifacts"

    def experiment(self, name: str) -> str:
        exp = self.client.get_experiment_by_name(name)
        if exp:
            return exp.experiment_id
        location = (self.artifacts / name).as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def parent(
        self, exp: str, name: str, jobs: list[dict], status: str = "FINISHED", sweep_params=None
    ) -> str:
        c = self.client
        run = c.create_run(
            self.experiment(exp),
            run_name=f"sweep-{name}",
            tags={
                "harness.role": "sweep",
                "command": f"python -m harness +experiment={exp} -m",
                "git_commit": "abc123",
                "sweep.overrides": f"+experiment={exp}",
            },
        )
        rid = run.info.run_id
        c.log_batch(
            rid,
            params=[Param("sweep.planned", str(len(jobs)))]
            + [Param(f"sweep.params.{k}", v) for k, v in (sweep_params or {}).items()],
        )
        plan = [
            {"run_name": j["name"], "config_hash": j["hash"], "overrides": j["overrides"]}
            for j in jobs
        ]
        c.log_text(rid, json.dumps({"overrides": f"+experiment={exp}", "jobs": plan}), "sweep.json")
        c.set_terminated(rid, status)
        return rid

    def job(self, exp: str, parent: str | None, j: dict, status: str = "FINISHED") -> str:
        c = self.client
        tags = {
            "harness.role": "job",
            "config_hash": j["hash"],
            "backend": j["params"]["backend.name"],
            "task": j["task"],
            "dataset": j["params"]["data.name"],
            "git_commit": "abc123",
            "command": "python -m harness " + " ".join(j["overrides"]),
            "device": "cpu",
            "threads": "2",
            "python_version": "3.11.7",
            "platform": "Linux-test",
            f"{j['params']['backend.name']}_version": "9.9",
            **j.get("tags", {}),
        }
        if parent:
            tags["mlflow.parentRunId"] = parent
        run = c.create_run(self.experiment(exp), run_name=j["name"], tags=tags)
        rid = run.info.run_id
        c.log_batch(rid, params=[Param(k, v) for k, v in j["params"].items()])
        metrics = [
            Metric(k, float(v), 0, e + 1)
            for k, curve in j["curves"].items()
            for e, v in enumerate(curve)
        ]
        metrics += [Metric(k, float(v), 0, EPOCHS) for k, v in j["summary"].items()]
        c.log_batch(rid, metrics=metrics)
        c.set_terminated(rid, status)
        return rid


def activation_jobs(exp: str) -> list[dict]:
    jobs = []
    for act in ("sigmoid", "relu", "linear"):
        for backend in ("keras", "lightning"):
            for i, seed in enumerate(SEEDS):
                train = loss_curve(CROSS[act][i], FINAL[act][i])
                val = [v + 0.05 for v in train]
                if backend == "lightning":
                    val[-1] += LIGHTNING_OFFSET[i]
                acc = list(
                    np.linspace(0.5, 0.9 + 0.01 * i + (0.05 if act == "relu" else 0), EPOCHS)
                )
                params = base_params(exp, seed, backend) | {"model.hidden_activation": act}
                jobs.append(
                    {
                        "name": f"{backend}-{act}-s{seed}",
                        "hash": f"{act}{backend}{seed}",
                        "task": "multiclass",
                        "overrides": [
                            f"model.hidden_activation={act}",
                            f"backend={backend}",
                            f"seed={seed}",
                            f"+experiment={exp}",
                        ],
                        "params": params,
                        "curves": {
                            "train/loss": train,
                            "val/loss": val,
                            "train/accuracy": acc,
                            "val/accuracy": acc,
                            "time/epoch_s": [STEADY[backend][i]] * EPOCHS,
                        },
                        "summary": {
                            "time/steady_epoch_s": STEADY[backend][i],
                            "time/first_epoch_s": 1.0,
                            "time/total_s": 5.0,
                            "throughput/samples_per_s": 1437 / STEADY[backend][i],
                            "time/step_ms": 2.0,
                        },
                    }
                )
    return jobs


def task_jobs(exp: str) -> list[dict]:
    """data (binary digits / regression) x optimizer (gd, adam) x 2 seeds, keras only."""
    jobs = []
    for data, task in (("digits_binary", "binary"), ("diabetes", "regression")):
        for opt in ("gd", "adam"):
            for seed in (0, 1):
                score = "accuracy" if task == "binary" else "r2"
                good = 0.3 if opt == "adam" else 0.0
                params = base_params(exp, seed, "keras") | {
                    "data.name": data,
                    "data.task": task,
                    "optimizer.name": opt,
                    "data.n_train": "288" if task == "binary" else "353",
                    "model.output_activation": "sigmoid" if task == "binary" else "linear",
                }
                jobs.append(
                    {
                        "name": f"keras-{data}-{opt}-s{seed}",
                        "hash": f"{data}{opt}{seed}",
                        "task": task,
                        "overrides": [
                            f"data={data}",
                            f"optimizer={opt}",
                            f"seed={seed}",
                            f"+experiment={exp}",
                        ],
                        "params": params,
                        "curves": {
                            "train/loss": list(np.linspace(1, 0.5 - good + 0.01 * seed, EPOCHS)),
                            "val/loss": list(np.linspace(1, 0.6 - good, EPOCHS)),
                            f"train/{score}": list(
                                np.linspace(0.1, 0.3 + good + 0.01 * seed, EPOCHS)
                            ),
                            f"val/{score}": list(np.linspace(0.1, 0.3 + good, EPOCHS)),
                        },
                        "summary": {"time/steady_epoch_s": 0.1, "throughput/samples_per_s": 1000.0},
                    }
                )
    return jobs


def parity_jobs(exp: str) -> list[dict]:
    """keras and numpy x gd/adam, one seed; keras-adam fails its parity check."""
    jobs = []
    for opt in ("gd", "adam"):
        for backend in ("keras", "numpy"):
            j = activation_jobs(exp)[0]
            j["params"] = base_params(exp, 0, backend) | {"optimizer.name": opt}
            j["name"], j["hash"] = f"{backend}-{opt}", f"p{backend}{opt}"
            j["overrides"] = [f"optimizer={opt}", f"backend={backend}", f"+experiment={exp}"]
            if backend == "numpy":
                j["tags"] = {"parity_verdict": "reference"}
            else:
                fail = opt == "adam"
                j["tags"] = {
                    "parity_verdict": "fail" if fail else "pass",
                    "parity_tolerance": "loss 1e-05",
                }
                j["summary"] |= {
                    "parity/worst_loss_rel_diff": 0.5 if fail else 2e-7,
                    "parity/worst_param_abs_diff": 3e-8,
                }
            jobs.append(j)
    return jobs


def backend_jobs(exp: str) -> list[dict]:
    """Keras and Lightning only (no factor), with the numerics of the loss logged."""
    jobs = [j for j in activation_jobs(exp) if "-sigmoid-" in j["name"]]
    for i, j in enumerate(jobs):
        j["summary"] |= {
            "numerics/loss_abs_error": 1e-9 * (i + 1),
            "numerics/clipped_fraction": 0.001 * (i % 3),
        }
    return jobs


def build_store(root: Path) -> dict:
    """One store, several experiments: a clean 3-level sweep, a resumed one, a task sweep,
    a seed-only sweep, single runs without a sweep, a parity sweep, a backend-only sweep
    with one planned job never run, and an empty experiment."""
    uri = f"sqlite:///{root / 'mlflow.db'}"
    fab = Fab(uri)
    jobs = activation_jobs("acts")
    parent = fab.parent(
        "acts", "acts", jobs, sweep_params={"model.hidden_activation": "sigmoid,relu,linear"}
    )
    for j in jobs:
        fab.job("acts", parent, j)
    # resumed: the first sweep's relu-keras-s1 failed; a second sweep reran only that job
    rjobs = [
        j
        for j in activation_jobs("resumed")
        if j["name"].startswith(("keras-sigmoid", "keras-relu"))
    ]
    first = fab.parent("resumed", "first", rjobs, status="FAILED")
    for j in rjobs:
        fab.job(
            "resumed", first, j, status="FAILED" if j["name"] == "keras-relu-s1" else "FINISHED"
        )
    second = fab.parent("resumed", "second", rjobs)
    fab.job("resumed", second, next(j for j in rjobs if j["name"] == "keras-relu-s1"))
    tjobs = task_jobs("tasks_synth")
    tparent = fab.parent("tasks_synth", "tasks", tjobs)
    for j in tjobs:
        fab.job("tasks_synth", tparent, j)
    sjobs = [j for j in activation_jobs("seeds_only") if j["name"].startswith("keras-sigmoid")]
    sparent = fab.parent("seeds_only", "seeds", sjobs)
    for j in sjobs:
        fab.job("seeds_only", sparent, j)
    for j in activation_jobs("singles")[:3]:
        fab.job("singles", None, j)
    pjobs = parity_jobs("parity_synth")
    pparent = fab.parent("parity_synth", "parity", pjobs)
    for j in pjobs:
        fab.job("parity_synth", pparent, j)
    bjobs = backend_jobs("backends_synth")
    never = dict(bjobs[-1], name="lightning-sigmoid-s9", hash="neverrun")
    bparent = fab.parent("backends_synth", "backends", [*bjobs, never], status="FAILED")
    for j in bjobs:
        fab.job("backends_synth", bparent, j)
    fab.experiment("empty")
    return {"uri": uri, "parent": parent, "first": first, "second": second, "client": fab.client}
