"""How a report writes numbers, and its tables: each one pandas DataFrame, rendered to
Markdown and to CSV from the same frame.

A table's frame holds plain values (strings, ints, floats) and `stats.Estimate`s; its
`Column`s say how each column reads in Markdown (header and cell text) and in CSV (header;
an Estimate spreads over `<name>_mean`, `<name>_ci_lo`, `<name>_ci_hi`).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from harness.report import stats

# --- numbers as text -------------------------------------------------------------------


def num(x: float | None, digits: int = 4) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


def est(e: stats.Estimate, digits: int = 4) -> str:
    """`mean [lo, hi]`; the mean alone without an interval; a dash without values."""
    if e.n == 0:
        return "—"
    if e.n < 2 or not math.isfinite(e.lo):
        return num(e.mean, digits)
    return f"{num(e.mean, digits)} [{num(e.lo, digits)}, {num(e.hi, digits)}]"


def pm(e: stats.Estimate) -> str:
    """mean ± 95% CI half-width (the mean alone with fewer than two values)."""
    if e.n < 2 or not math.isfinite(e.lo):
        return num(e.mean, 3)
    return f"{num(e.mean, 3)} ± {num((e.hi - e.lo) / 2, 2)}"


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def pval(p: float) -> str:
    if not math.isfinite(p):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: float) -> str:
    """`= 0.034`, `< 0.001` or `n/a`: a p-value after the letter p."""
    s = pval(p)
    return s if s.startswith(("<", "n/a")) else f"= {s}"


# --- tables ------------------------------------------------------------------------------

Row = dict[str, Any]  # a row of a frame: column key -> value, as stored
Cell = Callable[[Row], str]


@dataclass(frozen=True)
class Column:
    """A column of the frame: its Markdown header and cell text, its CSV header."""

    key: str
    md: str | None = None  # None: not shown in Markdown
    csv: str | None = None  # None: not written to CSV
    cell: Cell | None = None  # Markdown cell from the row; default: the value as text
    digits: int = 4  # significant digits of an Estimate's Markdown cell
    estimate: bool = False  # holds stats.Estimate: three CSV columns


@dataclass
class Table:
    """One table of the report: the frame and how its columns read."""

    frame: pd.DataFrame
    columns: list[Column] = field(default_factory=list)

    @classmethod
    def of(cls, columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> Table:
        frame = pd.DataFrame(
            [list(r) for r in rows], columns=[c.key for c in columns], dtype=object
        )
        return cls(frame, list(columns))

    def rows(self) -> list[Row]:
        """The rows with their values as stored (iterrows would infer a dtype per row)."""
        keys = list(self.frame.columns)
        return [dict(zip(keys, values, strict=True)) for values in self.frame.itertuples(False)]

    def markdown(self) -> str:
        shown = [c for c in self.columns if c.md is not None]
        lines = [
            "| " + " | ".join(_escape(c.md) for c in shown) + " |",
            "|" + "---|" * len(shown),
        ]
        for row in self.rows():
            lines.append("| " + " | ".join(_escape(_md_cell(c, row)) for c in shown) + " |")
        return "\n".join(lines)

    def csv(self) -> bytes:
        written = [c for c in self.columns if c.csv is not None]
        head: list[str] = []
        for c in written:
            if c.estimate:
                head += [f"{c.csv}_mean", f"{c.csv}_ci_lo", f"{c.csv}_ci_hi"]
            else:
                head.append(str(c.csv))
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(head)
        for row in self.rows():
            out: list[Any] = []
            for c in written:
                value = row[c.key]
                out += [value.mean, value.lo, value.hi] if c.estimate else [value]
            writer.writerow([f"{v:.6g}" if isinstance(v, float) else v for v in out])
        return buf.getvalue().encode()


def _md_cell(column: Column, row: Row) -> str:
    if column.cell is not None:
        return column.cell(row)
    value = row[column.key]
    return est(value, column.digits) if column.estimate else str(value)


def _escape(cell: Any) -> str:
    return str(cell).replace("|", "\\|").replace("\n", " ")
