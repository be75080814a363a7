"""The report's figures: mean curves over seeds with 95% t bands, per variant and backend.

Fixed settings (Agg, matplotlib's defaults plus RC, fixed size and dpi, no Software tag in
the PNG), so the same runs give the same bytes.
"""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np

from harness.report import stats
from harness.report.design import Design, Factor, backend_name, cell, ordered_unique
from harness.report.load import SCORE, SCORE_NAME, SweepRun

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "figure.dpi": 100,
    "savefig.dpi": 100,
    "svg.hashsalt": "harness-report",
    "path.simplify": False,
}
PANEL_W, PANEL_H = 3.6, 2.5
LINESTYLES = ["-", "--", ":", "-."]


def _panels(d: Design) -> tuple[list[Factor], list[tuple[str, ...]]]:
    pf = [f for f in d.factors if f is not d.compared]
    idx = [d.factors.index(f) for f in pf]
    return pf, ordered_unique(tuple(v[i] for i in idx) for v in d.variants)


def figure(jobs: list[SweepRun], d: Design, kind: str, experiment: str) -> bytes:
    """Mean curves over seeds with 95% bands: one row per condition, columns train and val."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    pf, panels = _panels(d)
    pidx = [d.factors.index(f) for f in pf]
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(RC)
        fig, axes = plt.subplots(
            len(panels),
            2,
            figsize=(2 * PANEL_W + 0.4, PANEL_H * len(panels) + 0.8),
            squeeze=False,
            layout="constrained",
        )
        handles: dict[str, Any] = {}
        for p, panel in enumerate(panels):
            variants = [v for v in d.variants if tuple(v[i] for i in pidx) == panel]
            task = next((j.task for j in jobs if j.variant in variants), "binary")
            metric = "loss" if kind == "loss" else SCORE.get(task, "accuracy")
            title = ", ".join(f"{f.label}={v}" for f, v in zip(pf, panel, strict=True))
            for c, split in enumerate(("train", "val")):
                ax = axes[p][c]
                _draw(ax, jobs, d, variants, f"{split}/{metric}", handles)
                ax.set_title(f"{title}: {split}" if title else split, fontsize=8)
                ax.set_xlabel("epoch")
                ax.set_ylabel(f"{split} {SCORE_NAME.get(metric, metric)}")
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
                if metric == "r2":  # R² starts far below 0: show the range where models differ
                    ax.set_ylim(max(ax.get_ylim()[0], -1.0), min(ax.get_ylim()[1], 1.05))
                if kind == "loss":
                    ax.set_yscale("log")
                    # a t band can reach below zero: keep the axis on the mean curves
                    low, high = math.inf, 0.0
                    for line in ax.get_lines():
                        y = np.asarray(line.get_ydata(), dtype=float)
                        y = y[np.isfinite(y) & (y > 0)]
                        if len(y):
                            low, high = min(low, y.min()), max(high, y.max())
                    if 0 < low < math.inf:
                        ax.set_ylim(low / 2, high * 1.5)
        # one legend column per compared level (or backend): entries fill columns first
        groups = len(d.compared.levels) if d.compared is not None else len(d.backends)
        fig.legend(
            list(handles.values()),
            list(handles),
            loc="outside lower center",
            ncol=max(1, min(groups, 4)),
            frameon=False,
            title=d.compared.label if d.compared is not None else None,
        )
        names = sorted({SCORE_NAME[j.score] for j in jobs}) if kind != "loss" else ["loss"]
        fig.suptitle(
            f"{experiment}: {' / '.join(names)} (mean over seeds, 95% CI band)", fontsize=9
        )
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=RC["figure.dpi"], metadata={"Software": None})
        plt.close(fig)
    return buf.getvalue()


def _draw(
    ax, jobs: list[SweepRun], d: Design, variants: list[tuple[str, ...]], key: str, handles: dict
) -> None:
    import matplotlib

    colors = matplotlib.colormaps["tab10"].colors
    ci = d.factors.index(d.compared) if d.compared is not None else None
    for v in variants:
        for b_i, b in enumerate(d.backends):
            runs = cell(jobs, v, b)
            curves = [j.curves.get(key, np.array([])) for j in runs]
            curves = [c for c in curves if len(c)]
            if not curves:
                continue
            width = max(len(c) for c in curves)
            mat = np.full((len(curves), width), np.nan)
            for i, c in enumerate(curves):
                mat[i, : len(c)] = c
            mean, lo, hi = stats.band(mat)
            if key.endswith("accuracy"):  # a t band can leave the metric's range: clip it
                lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
            elif key.endswith("r2"):
                hi = np.minimum(hi, 1.0)
            x = np.arange(1, width + 1)
            if ci is not None:
                color = colors[d.compared.levels.index(v[ci]) % 10]
                style, label = LINESTYLES[b_i % 4], f"{v[ci]} · {backend_name(b)}"
            else:
                color, style, label = colors[b_i % 10], LINESTYLES[b_i % 4], backend_name(b)
            (line,) = ax.plot(x, mean, style, color=color, linewidth=1.2)
            ax.fill_between(x, lo, hi, color=color, alpha=0.15, linewidth=0)
            handles.setdefault(label, line)
