"""`python -m harness.report --agreement`: two trainings of one sweep compared number by number."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd

from harness.report.agreement import compare


def _runs(folder, loss_shift: float = 0.0, cpu: str = "cpu A"):
    rows = []
    for name in ("keras-s0", "lightning-s0"):
        for epoch in (1, 2, 3):
            rows.append({
                "run_id": f"id-{name}", "run_name": name, "epoch": epoch,
                "curve:train/loss": 1.0 / epoch + (loss_shift if name == "keras-s0" else 0.0),
                "curve:val/accuracy": 0.5 + 0.1 * epoch,
                "final:val/loss": 0.25, "final:time/total_s": 1.0 + loss_shift * 1e6,
                "tag:cpu": cpu,
            })
    folder.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "runs.csv", index=False)
    return folder


def test_counts_bitwise_equal_values_and_the_largest_difference(tmp_path):
    ref = _runs(tmp_path / "ref")
    cand = _runs(tmp_path / "cand", loss_shift=3e-8, cpu="cpu B")
    table = compare(ref, cand).set_index("metric")
    # timings are the machine's: never compared
    assert "final:time/total_s" not in table.index
    loss = table.loc["curve:train/loss"]
    assert loss["values"] == 6 and loss["bitwise_equal"] == 3  # lightning's 3 epochs untouched
    assert np.isclose(loss["max_abs_diff"], 3e-8, rtol=1e-6)
    assert np.isclose(loss["max_rel_diff"], 3e-8 / (1 / 3 + 3e-8), rtol=1e-6)  # at epoch 3
    assert table.loc["curve:val/accuracy", "bitwise_equal"] == 6
    assert table.loc["final:val/loss", "max_abs_diff"] == 0.0


def test_the_cli_states_the_machines_and_refuses_a_folder_without_data(tmp_path):
    ref = _runs(tmp_path / "ref")
    cand = _runs(tmp_path / "cand", loss_shift=1e-9, cpu="cpu B")
    cmd = [sys.executable, "-m", "harness.report", "--agreement", str(ref), str(cand)]
    proc = subprocess.run([*cmd, "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "CPU cpu A" in proc.stdout and "CPU cpu B" in proc.stdout
    assert "Not bitwise equal: 1 metrics" in proc.stdout
    assert (tmp_path / "out" / "agreement.md").read_text() == proc.stdout

    empty = tmp_path / "empty"
    empty.mkdir()
    bad = subprocess.run(
        [sys.executable, "-m", "harness.report", "--agreement", str(ref), str(empty),
         "--out", str(tmp_path / "bad")], capture_output=True, text=True,
    )
    assert bad.returncode == 2 and "no runs.csv" in bad.stderr
    assert not (tmp_path / "bad").exists()  # nothing written
