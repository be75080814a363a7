"""User data files (data=file): read a .csv or .npz and refuse what would train on wrong data.

Every refusal is a ConfigError that names the problem, where it is (column and first row),
and the fix. The file is read once, as bytes: its digest is of exactly the bytes parsed.
What works: a UTF-8 BOM, Windows line endings, spaces after the commas, a gzip'd CSV.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.core import digest
from harness.core.config import ConfigError, DataConfig, Task

USER_FILE_FORMAT = (
    "a .csv (or .csv.gz) with a header row: feature columns (any names) and the target column "
    "'y' (or y0, y1, ... for a multilabel task); or a .npz with arrays 'x' (n, features) and 'y'"
)
MIN_ROWS = 4  # a validation split of at least one row, and a training split of three
NO_INDEX = "save it with df.to_csv(path, index=False)"

# where[col, row] -> "column 'f3', row 17 (line 18)" for a CSV, "x[16, 3]" for an .npz
Where = Callable[[int, int], str]


@dataclass
class UserFile:
    path: Path
    x: np.ndarray  # (n, features) float64
    y: np.ndarray  # shaped for the task (see harness.core.data)
    digest: str  # of the file's bytes


def _csv_where(names: list[str]) -> Where:
    return lambda col, row: f"column '{names[col]}', row {row + 1} (line {row + 2} of the file)"


def _npz_where(array: str, two_d: bool) -> Where:
    return lambda col, row: f"{array}[{row}, {col}]" if two_d else f"{array}[{row}]"


def _first_bad(values: np.ndarray, where: Where, what: str, path: Path) -> None:
    """Refuse NaN or infinite values, naming the first one's column and row."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    rows, cols = np.nonzero(bad.reshape(len(values), -1))
    row, col = rows[0], cols[0]  # row-major: the first bad cell in reading order
    value = values.reshape(len(values), -1)[row, col]
    kind = "an empty or NaN cell" if np.isnan(value) else f"an infinite value ({value})"
    raise ConfigError(
        f"{path}: {what} hold {kind} at {where(int(col), int(row))}, and {int(bad.sum())} "
        "in all; fill them or drop those rows (e.g. df.dropna()) and save the file again"
    )


# --- CSV -----------------------------------------------------------------------------------


def _text(path: Path, raw: bytes) -> str:
    if raw[:2] == b"\x1f\x8b":  # gzip'd, whatever its name
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"{path}: a damaged gzip file ({exc}); compress it again") from exc
    try:
        return raw.decode("utf-8-sig")  # a BOM (Excel's "CSV UTF-8") is dropped
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.start} is {raw[exc.start:exc.start + 1]!r}); save "
            "it as UTF-8 (Excel: 'CSV UTF-8'; pandas: df.to_csv(path, index=False))"
        ) from exc


def _check_header(path: Path, names: list[str]) -> None:
    if len(names) == 1 and any(sep in names[0] for sep in (";", "\t", "|")):
        sep = next(s for s in (";", "\t", "|") if s in names[0])
        raise ConfigError(
            f"{path}: the header {names[0]!r} is one column: the file is separated by {sep!r}, "
            f"not commas; convert it with pd.read_csv(path, sep={sep!r}).to_csv(path, "
            "index=False) (for decimal commas add decimal=',')"
        )
    repeated = [n for n, count in Counter(names).items() if count > 1]
    if repeated:
        raise ConfigError(
            f"{path}: column names repeat: {repeated}; every column needs its own name "
            "(harness would not know which one is meant)"
        )
    unnamed = [i for i, n in enumerate(names) if n == "" or n.startswith("Unnamed:")]
    if unnamed:
        raise ConfigError(
            f"{path}: column {unnamed[0] + 1} has no name: probably the row index pandas writes "
            f"by default, which would be trained on as a feature; {NO_INDEX} (or name the "
            "column if it is a feature)"
        )


def _numeric(path: Path, frame, names: list[str]) -> np.ndarray:
    """The frame as float64, or a refusal naming the first non-numeric cell."""
    import pandas as pd

    for col, name in enumerate(names):
        series = frame.iloc[:, col]
        if series.dtype.kind in "biuf":
            continue
        parsed = pd.to_numeric(series, errors="coerce")
        bad = np.flatnonzero(parsed.isna().to_numpy() & series.notna().to_numpy())
        if len(bad):
            row = int(bad[0])
            is_target = name == "y" or (name.startswith("y") and name[1:].isdigit())
            fix = (
                "encode classes as integers 0..k-1 (e.g. df['y'] = pd.factorize(df['y'])[0])"
                if is_target
                else "encode it as numbers, or drop the column"
            )
            raise ConfigError(
                f"{path}: non-numeric value {series.iloc[row]!r} at {_csv_where(names)(col, row)}"
                f"; every column must hold numbers: {fix}"
            )
    return frame.to_numpy(dtype=np.float64)


def _read_csv(path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    import pandas as pd

    text = _text(path, raw)
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty; expected {USER_FILE_FORMAT}")
    reader = csv.reader(io.StringIO(text))
    names = [n.strip() for n in next(reader)]
    _check_header(path, names)
    row = next(reader, None)
    if row is not None and len(row) == len(names) + 1:  # pandas would take it as the index
        raise ConfigError(
            f"{path}: the rows have one field more than the header {names}: the first field "
            f"has no column name (a row index?); {NO_INDEX}, or name every column"
        )
    try:
        frame = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except Exception as exc:  # pandas raises several parser errors (bad quoting, ragged rows)
        raise ConfigError(
            f"{path}: not a readable CSV ({exc}); expected {USER_FILE_FORMAT}"
        ) from exc
    if not isinstance(frame.index, pd.RangeIndex):  # pandas took leading fields as an index
        raise ConfigError(
            f"{path}: the rows have more fields than the header {names}; {NO_INDEX}, or name "
            "every column"
        )
    frame.columns = names
    if len(frame) == 0:
        raise ConfigError(f"{path}: a header {names} but no rows; the data rows are missing")
    ycols = [c for c in names if c == "y" or (c.startswith("y") and c[1:].isdigit())]
    if not ycols:
        raise ConfigError(
            f"{path}: no target column among {names[:10]}; name it 'y' "
            "(or y0, y1, ... for multilabel)"
        )
    xcols = [c for c in names if c not in ycols]
    if not xcols:
        raise ConfigError(f"{path}: no feature columns, only targets {ycols}")
    first = frame[xcols[0]]
    if xcols[0] in ("index", "level_0") and np.array_equal(first.to_numpy(), np.arange(len(frame))):
        raise ConfigError(
            f"{path}: column '{xcols[0]}' holds the row numbers 0..{len(frame) - 1} "
            f"(df.reset_index() writes it), which would be trained on as a feature; drop it: "
            f"df.drop(columns='{xcols[0]}').to_csv(path, index=False)"
        )
    return _numeric(path, frame[xcols], xcols), _numeric(path, frame[ycols], ycols), xcols, ycols


# --- NPZ -----------------------------------------------------------------------------------


def _read_npz(path: Path, raw: bytes) -> tuple[np.ndarray, np.ndarray]:
    import zipfile

    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as f:
            if "x" not in f or "y" not in f:
                raise ConfigError(
                    f"{path}: an .npz dataset needs arrays 'x' and 'y', has {f.files}; "
                    "save it with np.savez(path, x=features, y=targets)"
                )
            x, y = f["x"], f["y"]
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise ConfigError(
            f"{path}: not a readable .npz file ({exc}); expected {USER_FILE_FORMAT}"
        ) from exc
    if x.ndim != 2:
        raise ConfigError(
            f"{path}: 'x' must be 2-D (rows, features), has shape {x.shape}; "
            "save x.reshape(len(x), -1) for one row per example"
        )
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ConfigError(
            f"{path}: 'y' must hold one target (or one row of labels) per row of 'x': x has "
            f"shape {x.shape}, y {y.shape}"
        )
    for name, array in (("x", x), ("y", y)):
        if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise ConfigError(
                f"{path}: '{name}' must be numeric, has dtype {array.dtype}; "
                "encode classes as integers 0..k-1"
            )
    x = x.astype(np.float64)
    if len(x) >= MIN_ROWS and x.shape[1] > 1 and np.array_equal(x[:, 0], np.arange(len(x))):
        raise ConfigError(
            f"{path}: x[:, 0] holds the row numbers 0..{len(x) - 1} (an index saved with the "
            "features?), which would be trained on as a feature; save x without it (x[:, 1:])"
        )
    return x, y


# --- targets -------------------------------------------------------------------------------


def _values(y: np.ndarray) -> str:
    values = np.unique(y)
    shown = ", ".join(f"{v:g}" for v in values[:8])
    return shown + (f", ... ({len(values)} values)" if len(values) > 8 else "")


def check_targets(y: np.ndarray, task: Task, path: Path, where: Where) -> np.ndarray:
    """Targets shaped for the task, or a ConfigError saying what they do fit."""
    y = np.asarray(y, dtype=np.float64)
    _first_bad(y, where, "the targets", path)
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if task is Task.multilabel:
        if y.shape[1] < 2:
            raise ConfigError(
                f"{path}: a multilabel task needs 2+ target columns of 0/1 (y0, y1, ...), "
                "got one; use data.task=binary for a single 0/1 column"
            )
        if not np.isin(y, [0, 1]).all():
            raise ConfigError(f"{path}: a multilabel task needs targets 0/1, found {_values(y)}")
        return y  # a row with no label is an empty label set: allowed
    if y.shape[1] != 1:
        raise ConfigError(
            f"{path}: task {task.value} needs one target column 'y', got {y.shape[1]}; "
            "use data.task=multilabel for several 0/1 columns (class ids go in one column)"
        )
    if task is Task.binary:
        if not np.isin(y, [0, 1]).all():
            raise ConfigError(
                f"{path}: a binary task needs labels 0/1, found {_values(y)}; use "
                "data.task=multiclass for class ids 0..k-1, or regression for real values"
            )
        if len(np.unique(y)) < 2:
            raise ConfigError(
                f"{path}: every label is {y[0, 0]:g}: a binary task needs examples of both "
                "0 and 1 (is the file complete, and is the right column named y?)"
            )
        return y
    y = y.reshape(-1)
    if task is Task.multiclass:
        odd = np.flatnonzero((y != np.round(y)) | (y < 0))
        if len(odd):
            raise ConfigError(
                f"{path}: class ids must be integers 0..k-1, found {y[odd[0]]:g} at "
                f"{where(0, int(odd[0]))} (values: {_values(y)}); use data.task=regression "
                "for real-valued targets"
            )
        present = np.unique(y).astype(np.int64)
        if len(present) < 2:
            raise ConfigError(
                f"{path}: a multiclass task needs at least 2 classes, found only {_values(y)}"
            )
        missing = sorted(set(range(int(present.max()) + 1)) - set(present.tolist()))
        if missing:
            raise ConfigError(
                f"{path}: class ids must be integers 0..k-1 with every class present; found "
                f"{_values(y)}, none of {missing[:8]}; renumber them (e.g. y - 1 for ids "
                "from 1, or pd.factorize), or use data.task=regression if y is a quantity"
            )
        return y.astype(np.int64)
    return y.reshape(-1, 1)


# --- the file ------------------------------------------------------------------------------


def resolve(cfg: DataConfig) -> Path:
    """data.path as a file that exists, or the refusal that says what to give instead."""
    if not cfg.path:
        raise ConfigError("data=file needs data.path=/path/to/data.csv (or .npz)")
    if cfg.task is None:
        raise ConfigError("data=file needs data.task=binary|multiclass|multilabel|regression")
    path = Path(cfg.path).expanduser()
    if path.is_dir():
        raise ConfigError(
            f"data.path={cfg.path} is a directory; give the path of one .csv or .npz file in it"
        )
    if not path.is_file():
        raise ConfigError(
            f"data.path={cfg.path}: no such file (relative paths start from {Path.cwd()})"
        )
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() not in (".csv", ".npz") and suffixes != ".csv.gz":
        excel = path.suffix.lower() in (".xls", ".xlsx", ".ods")
        raise ConfigError(
            f"{path}: unknown file type {path.suffix!r}; use .csv (or .csv.gz) or .npz: "
            + (
                "save the sheet as CSV: pd.read_excel(path).to_csv('data.csv', index=False)"
                if excel
                else USER_FILE_FORMAT
            )
        )
    return path


def stem(path: Path) -> str:
    """The file's name without .csv, .csv.gz or .npz: what run names and MLflow call it."""
    name = path.name
    for suffix in (".csv.gz", ".csv", ".npz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read(cfg: DataConfig) -> UserFile:
    """The file named by data.path, parsed and checked against data.task."""
    path = resolve(cfg)
    raw = path.read_bytes()
    if not raw:
        raise ConfigError(f"{path}: the file is empty (0 bytes); expected {USER_FILE_FORMAT}")
    if path.suffix.lower() == ".npz":
        x, y = _read_npz(path, raw)
        x_where = _npz_where("x", True)
        y_where = _npz_where("y", y.ndim == 2)
    else:
        x, y, xcols, ycols = _read_csv(path, raw)
        x_where, y_where = _csv_where(xcols), _csv_where(ycols)
    if len(x) < MIN_ROWS:
        raise ConfigError(
            f"{path}: {len(x)} data row(s); need at least {MIN_ROWS} to split into training "
            f"and validation (data.val_fraction={cfg.val_fraction})"
        )
    _first_bad(x, x_where, "the features", path)
    y = check_targets(y, Task(cfg.task), path, y_where)
    return UserFile(path=path, x=x, y=y, digest=digest.of_bytes(raw))
