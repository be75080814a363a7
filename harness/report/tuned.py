"""The sections of a tuned sweep's report (hydra/sweeper=harness_tuned): both answers (at
equal settings, in the non-tuned experiment's report; each arm at its own best rate, from
the eval stage), the chosen rates per arm and backend, the budget per arm, and the
sensitivity figure (final validation loss against the learning rate over the tuning seeds).

Pure: it reads DataFrames, never the store. `runs` has one row per run of the sweep, with
columns stage (tune | eval), arm, lr, backend, seed, status (FINISHED, FAILED, ...),
diverged (optional, bool), the final metrics by their MLflow keys (val/loss, val/accuracy,
...) and time/total_s. The verdicts of the eval stage come from the report's statistics
(harness.report.stats), applied to `eval_runs(runs)`.
"""

from __future__ import annotations

import io
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from harness.sweep.tuning import FINISHED, LOSS, Criterion, TuneResult, markdown, select

FIGURE = "sensitivity.png"
REQUIRED = ("stage", "arm", "lr", "backend", "seed", "status")


def _check(runs: pd.DataFrame, metric: str) -> None:
    missing = [c for c in (*REQUIRED, metric) if c not in runs.columns]
    if missing:
        raise ValueError(
            f"the tuned report needs the run columns {missing}; it has {list(runs.columns)}"
        )


def _arms(runs: pd.DataFrame) -> list[str]:
    """Arms in the order they first appear (the experiment's order)."""
    return list(dict.fromkeys(runs["arm"]))


def eval_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The eval stage's finished runs: what the verdicts compare."""
    return runs[(runs["stage"] == "eval") & runs["status"].isin(FINISHED)].copy()


def selection(runs: pd.DataFrame, criterion: Criterion = LOSS):
    """The tune stage's selection per (arm, backend), recomputed from its runs exactly as the
    sweeper made it (harness.sweep.tuning.select)."""
    _check(runs, criterion.metric)
    tune = runs[runs["stage"] == "tune"]
    diverged = tune["diverged"] if "diverged" in tune.columns else [False] * len(tune)
    results = [
        TuneResult(
            str(arm), str(backend), float(lr), int(seed), str(status),
            float(value) if str(status) in FINISHED else None, bool(div),
        )
        for arm, backend, lr, seed, status, value, div in zip(
            tune["arm"], tune["backend"], tune["lr"], tune["seed"], tune["status"],
            tune[criterion.metric], diverged, strict=True,
        )
    ]
    return select(results, criterion)


def chosen_rates(runs: pd.DataFrame, criterion: Criterion = LOSS) -> pd.DataFrame:
    """Per arm and backend: the rate chosen on the tuning seeds, and the rate(s) the eval stage
    ran (the same unless the tuning runs changed since the sweep)."""
    choices, _ = selection(runs, criterion)
    ev = runs[runs["stage"] == "eval"]
    rows = []
    for (arm, backend), c in choices.items():
        ran = sorted(ev[(ev["arm"] == arm) & (ev["backend"] == backend)]["lr"].unique())
        rows.append({
            "arm": arm, "backend": backend,
            "chosen lr": "none" if c.lr is None else f"{c.lr:g}",
            "evaluated at": ", ".join(f"{r:g}" for r in ran) or "-",
            "why": c.reason,
        })
    order = {a: i for i, a in enumerate(_arms(runs))}
    return pd.DataFrame(rows).sort_values(
        ["backend", "arm"], key=lambda s: s.map(order) if s.name == "arm" else s, kind="stable"
    ).reset_index(drop=True)


def budget(runs: pd.DataFrame) -> pd.DataFrame:
    """Per arm: the rates tried, the runs and the training seconds of each stage."""
    has = "time/total_s" in runs.columns
    frame = runs.assign(seconds=runs["time/total_s"].fillna(0.0) if has else 0.0)
    rows = []
    for arm in _arms(runs):
        mine = frame[frame["arm"] == arm]
        tune, ev = mine[mine["stage"] == "tune"], mine[mine["stage"] == "eval"]
        rows.append({
            "arm": arm,
            "rates tried": tune["lr"].nunique(),
            "tune runs": len(tune),
            "tune s": round(float(tune["seconds"].sum()), 1),
            "eval runs": len(ev),
            "eval s": round(float(ev["seconds"].sum()), 1),
            "total runs": len(mine),
            "total s": round(float(mine["seconds"].sum()), 1),
        })
    return pd.DataFrame(rows)


def at_best(runs: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """Each arm at its chosen rate on the evaluation seeds: mean ± sd per metric."""
    ev = eval_runs(runs)
    rows = []
    order = {a: i for i, a in enumerate(_arms(runs))}
    groups = sorted(ev.groupby(["backend", "arm"]), key=lambda kv: (kv[0][0], order[kv[0][1]]))
    for (backend, arm), part in groups:
        rates = ", ".join(f"{r:g}" for r in sorted(part["lr"].unique()))
        row = {"backend": backend, "arm": arm, "lr": rates, "seeds": len(part)}
        for m in metrics:
            if m in part.columns:
                v = part[m].astype(float)
                sd = v.std(ddof=1) if len(v) > 1 else math.nan
                row[m] = f"{v.mean():.4f} ± {sd:.4f}" if math.isfinite(sd) else f"{v.mean():.4f}"
        rows.append(row)
    return pd.DataFrame(rows)


def tuned_sections(
    runs: pd.DataFrame,
    criterion: Criterion = LOSS,
    equal_settings: str | None = None,
    figure: str | None = FIGURE,
    metrics: tuple[str, ...] = ("val/loss", "val/accuracy", "train/loss"),
) -> str:
    """The tuned report's Markdown sections (headings at level 2)."""
    _check(runs, criterion.metric)
    tune = runs[runs["stage"] == "tune"]
    ev = runs[runs["stage"] == "eval"]
    grids = {a: sorted(tune[tune["arm"] == a]["lr"].unique()) for a in _arms(runs)}
    tune_seeds = sorted(int(s) for s in tune["seed"].unique())
    eval_seeds = sorted(int(s) for s in ev["seed"].unique())
    choices, table = selection(runs, criterion)
    out = ["## Both answers", ""]
    if equal_settings:
        out.append(
            f"- **At equal settings** (every arm at the same learning rates): see the "
            f"[{equal_settings} report](../{equal_settings}/report.md)."
        )
    out.append(
        f"- **Each at its own best**: every arm at the rate its tuning runs chose, on "
        f"{len(eval_seeds)} evaluation seeds ({_seeds(eval_seeds)}), disjoint from the "
        f"tuning seeds ({_seeds(tune_seeds)}):"
    )
    out += ["", markdown(at_best(runs, [m for m in metrics if m in runs.columns])), ""]
    out += [
        "## Protocol and chosen rates", "",
        f"Per arm and backend, the rate with the {criterion.describe()} "
        f"({', '.join(map(str, tune_seeds))}); a run that diverged or did not finish counts "
        "as the worst value; equal means go to the smaller rate. Grids (log-spaced): "
        + "; ".join(f"{a}: {', '.join(f'{r:g}' for r in g)}" for a, g in grids.items()) + ".",
        "", markdown(chosen_rates(runs, criterion)), "",
    ]
    failed = [c for c in choices.values() if c.lr is None]
    if failed:
        out += [f"- **{c.arm} ({c.setting})**: {c.reason}" for c in failed] + [""]
    out += [
        "## Tuning budget per arm", "",
        "The search space and its cost decide a tuned ranking as much as the arms do "
        "(Choi et al. 2019; Schmidt et al. 2021): the runs and training seconds spent per arm.",
        "", markdown(budget(runs)), "",
        "## Sensitivity to the learning rate", "",
        f"Final {criterion.metric} against the learning rate over the tuning seeds "
        "(mean, band from the lowest to the highest seed; the chosen rate circled; x at the "
        "top: a rate where a tuning seed diverged or did not finish).", "",
    ]
    if figure:
        out += [f"![sensitivity]({figure})", ""]
    shown = table.rename(columns={"setting": "backend"})
    shown["chosen"] = np.where(shown["chosen"], "yes", "")
    out += [markdown(shown), ""]
    return "\n".join(out)


def _seeds(seeds: list[int]) -> str:
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}-{seeds[-1]}"
    return ", ".join(map(str, seeds))


def sensitivity_figure(
    runs: pd.DataFrame, path: str | Path | None = None, criterion: Criterion = LOSS
) -> bytes:
    """Final criterion against lr per arm (one panel per backend): mean over the tuning seeds
    with a min-max band, the chosen rate circled, rates where a seed diverged or failed marked
    with x at the top. Deterministic PNG bytes (written to `path` if given)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report.figures import RC

    choices, table = selection(runs, criterion)
    backends = sorted(table["setting"].unique())
    arms = _arms(runs)
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC)
        size = (3.6 * len(backends), 2.8)
        fig, axes = plt.subplots(1, len(backends), figsize=size, squeeze=False)
        for ax, backend in zip(axes[0], backends, strict=True):
            for i, arm in enumerate(arms):
                part = table[(table["arm"] == arm) & (table["setting"] == backend)]
                if part.empty:
                    continue
                color = f"C{i}"
                ok = part[part["finished"] == part["runs"]]
                ax.plot(ok["lr"], ok["mean"], "-o", color=color, ms=3, label=arm)
                ax.fill_between(ok["lr"], ok["min"], ok["max"], color=color, alpha=0.2, lw=0)
                bad = part[part["finished"] < part["runs"]]
                if len(bad):
                    ax.plot(bad["lr"], [1.0] * len(bad), "x", color=color, ms=6,
                            transform=ax.get_xaxis_transform(), clip_on=False)
                c = choices.get((arm, backend))
                if c is not None and c.lr is not None:
                    ax.plot([c.lr], [c.score], "o", ms=10, mfc="none", mec=color, mew=1.5)
            ax.set_xscale("log")
            ax.set_xlabel("learning rate")
            ax.set_title(backend)
        axes[0][0].set_ylabel(f"final {criterion.metric}")
        axes[0][0].legend(loc="best")
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=RC["figure.dpi"], metadata={"Software": None})
        plt.close(fig)
    data = buf.getvalue()
    if path is not None:
        Path(path).write_bytes(data)
    return data


# --- from the store: the latest tuned sweep of an experiment, as the runs frame ---------


def load_runs(experiment: str, uri: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """The runs of the experiment's latest tuned sweep (both stages, per planned config the
    newest FINISHED run, else its newest run) and the sweep's parent tags."""
    import json

    from harness.core.config import TrackingConfig
    from harness.store import Store
    from harness.store.results import artifact_text, job_runs, latest_sweep, run_tags

    store = Store(TrackingConfig(uri=uri, experiment=experiment))
    parent = latest_sweep(store, tag="tuned.criterion.metric")
    if parent is None:
        raise ValueError(
            f"experiment '{experiment}' in {uri} has no tuned sweep (hydra/sweeper=harness_tuned)"
        )
    tags = run_tags(store, parent)
    plan = json.loads(artifact_text(store, parent, "sweep.json") or '{"jobs": []}')
    by_hash: dict[str, dict] = {}
    for run in sorted(job_runs(store), key=lambda r: r["start_time"]):
        h = run["tags"].get("config_hash", "")
        old = by_hash.get(h)
        if old is None or run["status"] == "FINISHED" or old["status"] != "FINISHED":
            by_hash[h] = run
    lr_key = tags.get("tuned.lr_key", "optimizer.lr")
    rows = []
    for job in plan["jobs"]:
        run = by_hash.get(job["config_hash"])
        if run is None:
            continue  # never ran (the sweep was interrupted before it)
        p, t = run["params"], run["tags"]
        rows.append({
            "run_id": run["run_id"], "run_name": job["run_name"],
            "stage": t.get("stage", p.get("stage")), "arm": t.get("arm", p.get("arm")),
            "lr": float(p[lr_key]), "backend": p.get("backend.name"), "seed": int(p["seed"]),
            "status": run["status"], "diverged": t.get("diverged") == "true",
            **run["metrics"],
        })
    return pd.DataFrame(rows), tags


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.report.tuned EXPERIMENT`: tuned.md, sensitivity.png and
    tuned_runs.csv in results/EXPERIMENT/ (or --out) from the latest tuned sweep."""
    import argparse

    from harness.core.config import TrackingConfig
    from harness.store import resolve_uri

    ap = argparse.ArgumentParser(prog="python -m harness.report.tuned", description=main.__doc__)
    ap.add_argument("experiment")
    ap.add_argument("--uri", default=None, help="MLflow store (default: as harness runs use)")
    ap.add_argument("--out", default=None, help="folder (default: results/EXPERIMENT)")
    args = ap.parse_args(argv)
    uri = args.uri or resolve_uri(TrackingConfig(experiment=args.experiment))
    try:
        runs, tags = load_runs(args.experiment, uri)
    except ValueError as exc:
        print(f"harness.report.tuned: {exc}", file=sys.stderr)
        return 2
    criterion = Criterion(
        tags.get("tuned.criterion.metric", "val/loss"), tags.get("tuned.criterion.mode", "min")
    )
    out = Path(args.out or Path("results") / args.experiment)
    out.mkdir(parents=True, exist_ok=True)
    sensitivity_figure(runs, out / FIGURE, criterion)
    text = tuned_sections(runs, criterion, tags.get("tuned.equal_settings"), FIGURE)
    title = f"# {args.experiment}: each arm at its own tuned learning rate"
    (out / "tuned.md").write_text(f"{title}\n\n{text}")
    cols = [c for c in runs.columns if c != "run_id"]
    ordered = runs.sort_values(["stage", "backend", "arm", "lr", "seed"])[cols]
    ordered.to_csv(out / "tuned_runs.csv", index=False)
    print(f"wrote {out / 'tuned.md'}, {out / FIGURE}, {out / 'tuned_runs.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
