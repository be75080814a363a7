"""The README's bad-input table, row by row: each input either works or is refused before
training (exit 2 from the CLI) with a message naming the problem and the fix, and nothing
reaches MLflow.

The table is rendered from CASES: `python -m tests.test_bad_inputs` prints it for the README,
and a test checks that the README holds exactly that.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.core.config import ConfigError
from harness.core.data import Dataset, load
from harness.run.train import run
from tests.conftest import ROOT, cli, make_spec

N = 40  # rows of every generated file: 32 train / 8 validation


def _frame(y: object = None, n: int = N) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(n, 3)).round(6), columns=["a", "b", "c"])
    frame["y"] = np.arange(n) % 2 if y is None else y
    return frame


def _csv(frame: pd.DataFrame, **kwargs) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / "data.csv"
        frame.to_csv(path, **{"index": False, **kwargs})
        return path

    return write


def _text(text: str, name: str = "data.csv", encoding: str = "utf-8") -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


def _bytes(make: Callable[[bytes], bytes], name: str = "data.csv") -> Callable[[Path], Path]:
    """The clean file's bytes, transformed (a BOM, CRLF, gzip)."""

    def write(tmp: Path) -> Path:
        path = tmp / name
        path.write_bytes(make(_CLEAN.encode()))
        return path

    return write


def _npz(**arrays: np.ndarray) -> Callable[[Path], Path]:
    def write(tmp: Path) -> Path:
        path = tmp / "data.npz"
        np.savez(path, **arrays)
        return path

    return write


def _cell(column: str, row: int, value: object) -> pd.DataFrame:
    frame = _frame().astype({column: object})
    frame.loc[row, column] = value
    return frame


_CLEAN = _frame().to_csv(index=False)
_X = _frame()[["a", "b", "c"]].to_numpy()
_DIR = lambda tmp: tmp  # noqa: E731
_ABSENT = lambda tmp: tmp / "absent.csv"  # noqa: E731


@dataclass
class Case:
    input: str  # the README's words for what the user gave
    write: Callable[[Path], Path]  # writes the file into a folder, returns data.path
    task: str | None  # data.task (None: left out)
    # the README's "what happens": "works..." or "refused: ..." where every `quoted` part
    # (split at [...], ... and <cwd>) must appear in the refusal's message
    outcome: str
    check: Callable[[Dataset], bool] = field(default=lambda d: True)  # for inputs that work

    @property
    def says(self) -> list[str]:
        if not self.outcome.startswith("refused"):
            return []
        quoted = re.findall(r"`([^`]+)`", self.outcome)
        parts = [p for q in quoted for p in re.split(r"\[\.\.\.\]|\.\.\.|<cwd>", q)]
        return [p for p in parts if len(p.strip()) > 2]


_MULTILABEL = _frame().rename(columns={"y": "y0"})
CASES: list[Case] = [
    Case("no `data.task`", _csv(_frame()), None, "refused: `data=file needs data.task=...`"),
    Case("a path that does not exist", _ABSENT, "binary",
         "refused: `no such file (relative paths start from <cwd>)`"),
    Case("a directory as the path", _DIR, "binary",
         "refused: `is a directory; give the path of one .csv or .npz file in it`"),
    Case("an Excel file (`.xlsx`)", _text("PK", "data.xlsx"), "binary",
         "refused: `unknown file type '.xlsx'` + `pd.read_excel(path).to_csv(...)`"),
    Case("an empty file (0 bytes)", _text(""), "binary", "refused: `the file is empty`"),
    Case("a header with no rows", _text("a,b,c,y\n"), "binary",
         "refused: `a header [...] but no rows`"),
    Case("a 1-row file", _text("a,b,c,y\n1,2,3,0\n"), "binary",
         "refused: `1 data row(s); need at least 4`"),
    Case("pandas' default `to_csv` (the index as an unnamed first column)",
         _csv(_frame(), index=True), "binary",
         "refused: `column 1 has no name: probably the row index` + "
         "`df.to_csv(path, index=False)`"),
    Case("`df.reset_index().to_csv(index=False)` (a column `index` = 0..n-1)",
         _csv(_frame().reset_index()), "binary",
         "refused: `column 'index' holds the row numbers 0..39` + `df.drop(columns='index')`"),
    Case("rows with one field more than the header",
         _text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 5},{i % 2}\n" for i in range(N))), "binary",
         "refused: `the rows have one field more than the header` + `index=False`"),
    Case("duplicate column names", _text(_CLEAN.replace("a,b,c,y", "a,b,a,y", 1)), "binary",
         "refused: `column names repeat: ['a']`"),
    Case("no column named `y` (e.g. `target`)", _csv(_frame().rename(columns={"y": "target"})),
         "binary", "refused: `no target column among [...]; name it 'y'`"),
    Case("only a target column", _text("y\n" + "0\n1\n" * 20), "binary",
         "refused: `no feature columns`"),
    Case("a text value in a feature column", _csv(_cell("b", 2, "?")), "binary",
         "refused: `non-numeric value '?' at column 'b', row 3 (line 4 of the file)`"),
    Case("an empty cell (NaN) in a feature", _csv(_cell("b", 2, np.nan)), "binary",
         "refused: `an empty or NaN cell at column 'b', row 3 (line 4` + `df.dropna()`"),
    Case("`inf` in a feature", _csv(_cell("c", 4, np.inf)), "binary",
         "refused: `an infinite value (inf) at column 'c', row 5`"),
    Case("an empty target cell", _csv(_cell("y", 1, np.nan)), "regression",
         "refused: `an empty or NaN cell at column 'y', row 2`"),
    Case("class names as targets (`cat`, `dog`)", _csv(_frame(["cat", "dog"] * 20)), "multiclass",
         "refused: `non-numeric value 'cat' at column 'y', row 1` + `pd.factorize`"),
    Case("labels 0/1/2 for `binary`", _csv(_frame(np.arange(N) % 3)), "binary",
         "refused: `needs labels 0/1, found 0, 1, 2; use data.task=multiclass`"),
    Case("labels -1/1 for `binary`", _csv(_frame(np.arange(N) % 2 * 2 - 1)), "binary",
         "refused: `needs labels 0/1, found -1, 1`"),
    Case("one class only (every label 0)", _csv(_frame(np.zeros(N, dtype=int))), "binary",
         "refused: `every label is 0: a binary task needs examples of both 0 and 1`"),
    Case("a class with a single example", _csv(_frame([0] * (N - 1) + [1])), "binary",
         "refused: `cannot split 40 rows [...]; give each class 2+ examples`"),
    Case("real-valued targets for `multiclass`", _csv(_frame(np.linspace(25, 346, N))),
         "multiclass",
         "refused: `class ids must be integers 0..k-1, found 33.2308 at column 'y', row 2` + "
         "`use data.task=regression`"),
    Case("class ids 1..3 for `multiclass`", _csv(_frame(np.arange(N) % 3 + 1)), "multiclass",
         "refused: `with every class present; found 1, 2, 3, none of [0]` + `y - 1`"),
    Case("one 0/1 column for `multilabel`", _csv(_frame()), "multilabel",
         "refused: `needs 2+ target columns [...]; use data.task=binary`"),
    Case("two target columns for `binary`", _csv(_MULTILABEL.assign(y1=np.arange(N) % 2)),
         "binary", "refused: `needs one target column 'y', got 2; use data.task=multilabel`"),
    Case("a multilabel row with no label", _csv(_MULTILABEL.assign(y1=0)), "multilabel",
         "works: an empty label set is a valid answer",
         check=lambda d: d.n_outputs == 2 and bool((d.y_train.sum(axis=1) == 0).any())),
    Case("targets in the hundreds for `regression` (raw diabetes: 25-346)",
         _csv(_frame(np.linspace(25, 346, N))), "regression",
         "works: trained as y / 100 (`data.target_scale`), losses and metrics in the file's units",
         check=lambda d: d.target_scale == 100 and np.abs(d.y_train).max() < 10),
    Case("a semicolon-separated file", _text(_CLEAN.replace(",", ";")), "binary",
         "refused: `separated by ';'` + `pd.read_csv(path, sep=';').to_csv(...)`"),
    Case("a Latin-1 file (not UTF-8)",
         _text(_CLEAN.replace("a,b", "température,b", 1), encoding="latin-1"), "binary",
         "refused: `not UTF-8 text` + `save it as UTF-8`"),
    Case("a UTF-8 BOM (Excel's CSV UTF-8)", _bytes(lambda b: b"\xef\xbb\xbf" + b), "binary",
         "works"),
    Case("Windows line endings (CRLF)", _bytes(lambda b: b.replace(b"\n", b"\r\n")), "binary",
         "works"),
    Case("spaces after the commas", _bytes(lambda b: b.replace(b",", b", ")), "binary", "works"),
    Case("a gzip'd CSV (`.csv.gz`, or gzip bytes named `.csv`)",
         _bytes(gzip.compress, "data.csv.gz"), "binary", "works"),
    Case("an NPZ with other keys (`features`, `labels`)",
         _npz(features=_X, labels=np.arange(N) % 2), "binary",
         "refused: `needs arrays 'x' and 'y', has ['features', 'labels']` + "
         "`np.savez(path, x=...)`"),
    Case("an NPZ with 1-D `x`", _npz(x=np.arange(N, dtype=float), y=np.arange(N) % 2), "binary",
         "refused: `'x' must be 2-D (rows, features), has shape (40,)`"),
    Case("an NPZ whose `y` has fewer rows than `x`", _npz(x=_X, y=np.arange(N - 5) % 2), "binary",
         "refused: `one target [...] per row of 'x': x has shape (40, 3), y (35,)`"),
    Case("an NPZ whose first feature is the row index",
         _npz(x=np.column_stack([np.arange(N), _X]), y=np.arange(N) % 2), "binary",
         "refused: `x[:, 0] holds the row numbers 0..39` + `x[:, 1:]`"),
    Case("a damaged NPZ", _text("not a zip", "data.npz"), "binary",
         "refused: `not a readable .npz file`"),
]
BY_INPUT = {c.input: c for c in CASES}


def table() -> str:
    """The README's table, rendered from CASES."""
    rows = ["| input | `data.task` | what happens |", "|---|---|---|"]
    rows += [f"| {c.input} | {c.task or '(none)'} | {c.outcome} |" for c in CASES]
    return "\n".join(rows)


def _overrides(case: Case, tmp_path: Path) -> list[str]:
    path = case.write(tmp_path)
    task = [f"data.task={case.task}"] if case.task else []
    return ["data=file", f"data.path={path}", *task]


def _assert_no_store(db: Path) -> None:
    assert not db.exists(), "a refused input opened the MLflow store"


@pytest.mark.parametrize("case", [c for c in CASES if c.says], ids=lambda c: c.input)
def test_a_bad_input_is_refused_naming_the_problem_and_the_fix(case, tmp_path):
    db = tmp_path / "mlflow.db"
    spec = make_spec(
        *_overrides(case, tmp_path), "backend=numpy", "train.epochs=1", f"tracking.uri=sqlite:///{db}"
    )
    with pytest.raises(ConfigError) as err:
        run(spec, log=lambda *a, **k: None)  # the real path: spec -> data, before any store
    for phrase in case.says:
        assert phrase in str(err.value), f"{phrase!r} not in {err.value}"
    _assert_no_store(db)


@pytest.mark.parametrize("case", [c for c in CASES if not c.says], ids=lambda c: c.input)
def test_an_input_that_works_loads_as_the_clean_file_would(case, tmp_path):
    spec = make_spec(*_overrides(case, tmp_path))
    data = load(spec.data, spec.seed)
    assert case.check(data)
    assert len(data.x_train) == 32 and len(data.x_val) == 8
    if case.input.startswith(("a UTF-8 BOM", "Windows", "spaces", "a gzip")):
        clean = tmp_path / "clean" / "data.csv"
        clean.parent.mkdir()
        clean.write_text(_CLEAN)
        ref = load(make_spec("data=file", f"data.path={clean}", "data.task=binary").data, 0)
        np.testing.assert_array_equal(data.x_train, ref.x_train)  # the same numbers...
        assert data.digest != ref.digest  # ...from other bytes: another identity


def test_gzip_bytes_named_csv_work_too(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(gzip.compress(_CLEAN.encode()))
    data = load(make_spec("data=file", f"data.path={path}", "data.task=binary").data, 0)
    assert data.n_features == 3 and len(data.x_train) == 32


def test_the_readme_table_is_this_table():
    readme = (ROOT / "README.md").read_text()
    assert table() in readme, "README's bad-input table is stale: python -m tests.test_bad_inputs"
    assert len(CASES) >= 20 and len(BY_INPUT) == len(CASES)


def test_the_cli_exits_2_and_writes_nothing(tmp_path):
    """As a user meets it: one run, then a sweep over two bad files; both exit 2."""
    db = tmp_path / "store.db"
    store = f"tracking.uri=sqlite:///{db}"
    index = BY_INPUT["pandas' default `to_csv` (the index as an unnamed first column)"]
    single = cli(*_overrides(index, tmp_path), store, cwd=tmp_path, timeout=300)
    assert single.returncode == 2, single.stderr[-2000:]
    assert "column 1 has no name" in single.stderr and "index=False" in single.stderr
    _assert_no_store(db)


def test_the_cli_refuses_a_sweep_with_a_bad_file_before_any_job(tmp_path):
    db = tmp_path / "store.db"
    (tmp_path / "semi").mkdir()
    (tmp_path / "good").mkdir()
    semi = BY_INPUT["a semicolon-separated file"].write(tmp_path / "semi")
    good = _csv(_frame())(tmp_path / "good")
    sweep = cli(
        "data=file", f"data.path={good},{semi}", "data.task=binary", "backend=numpy",
        f"tracking.uri=sqlite:///{db}", "-m", cwd=tmp_path, timeout=300,
    )
    assert sweep.returncode == 2, sweep.stderr[-2000:]
    assert "1 of 2 jobs are invalid; nothing was run" in sweep.stderr
    assert "separated by ';'" in sweep.stderr and "Traceback" not in sweep.stderr
    _assert_no_store(db)


def test_the_cli_trains_on_an_excel_export_with_bom_and_crlf(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + _CLEAN.replace("\n", "\r\n").encode())
    done = cli(
        "data=file", f"data.path={path}", "data.task=binary", "backend=numpy", "train.epochs=2",
        f"tracking.uri=sqlite:///{tmp_path / 'store.db'}", cwd=tmp_path, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "numpy-excel-sigmoid-probs-adam-s0: val/loss=" in done.stderr


if __name__ == "__main__":
    print(table())
