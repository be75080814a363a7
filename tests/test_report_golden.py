"""The report's text files held byte-identical to the committed golden copies under
tests/golden/, generated from fabricated sweeps (tests/report_fixtures.py) that cover every
section: comparisons (with a censored threshold), conditions that change the task, backend
agreement, parity, the numerics of the loss, measured times, missing runs, a FAILED sweep.

Run ids and the temporary store path change with every store, so they are masked. After an
intended change of the report, regenerate with `HARNESS_GOLDEN=write pytest
tests/test_report_golden.py` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from harness.report.build import generate
from tests.report_fixtures import build_store

GOLDEN = Path(__file__).parent / "golden"
TEXT_FILES = [
    "report.md",
    "summary.csv",
    "timing.csv",
    "verdicts.csv",
    "runs.csv",
    "sweep.json",
]
# (folder under tests/golden, experiment, which sweep: None = the latest, else a build_store key)
CASES = [
    ("acts", "acts", None),
    ("tasks_synth", "tasks_synth", None),
    ("parity_synth", "parity_synth", None),
    ("resumed", "resumed", None),
    ("resumed_first", "resumed", "first"),
    ("backends_synth", "backends_synth", None),
]
RUN_ID = re.compile(r"\b[0-9a-f]{32}\b")


def masked(blob: bytes, root: Path) -> bytes:
    text = blob.decode().replace(str(root), "STORE")
    return RUN_ID.sub("RUN_ID", text).encode()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, dict[str, bytes]]:
    root = tmp_path_factory.mktemp("golden-store")
    store = build_store(root)
    out = {}
    for case, experiment, parent in CASES:
        folder = generate(
            experiment,
            store["uri"],
            root / "out" / case,
            parent=store[parent] if parent else None,
            attach=False,
        )
        out[case] = {name: masked((folder / name).read_bytes(), root) for name in TEXT_FILES}
    return out


@pytest.mark.parametrize("case", [c[0] for c in CASES])
def test_report_text_is_byte_identical_to_the_golden_copy(generated, case):
    for name, blob in generated[case].items():
        path = GOLDEN / case / name
        if os.environ.get("HARNESS_GOLDEN") == "write":
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blob)
        assert path.read_bytes() == blob, f"{path} differs from what the code writes now"
