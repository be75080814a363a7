"""Reports: statistics against hand-computed values, synthetic sweeps written to a real SQLite
MLflow store (the structure harness.sweep.callback and harness.run.train write), byte-identical
regeneration, clear errors, and one real sweep-then-report through both CLIs."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from harness.report import stats
from harness.report.build import FILES, generate
from harness.report.cli import main
from harness.report.sections import deterministic_text
from tests.conftest import cli
from tests.report_fixtures import FINAL, build_store

T975_DF3 = 3.182446305284263  # t table: 97.5% quantile, 3 degrees of freedom


def t3_two_sided_p(t: float) -> float:
    """Student t with 3 df in closed form: F(t) = 1/2 + (x/(1+x^2) + atan x)/pi, x = t/sqrt 3."""
    x = abs(t) / math.sqrt(3)
    return 2 * (0.5 - (x / (1 + x * x) + math.atan(x)) / math.pi)


# --- the statistics module, by hand -------------------------------------------------------


def test_mean_ci_is_the_t_interval():
    e = stats.mean_ci([3, 4, 4, 5])  # mean 4, sd sqrt(2/3)
    assert (e.n, e.mean) == (4, 4.0)
    assert e.sd == pytest.approx(math.sqrt(2 / 3))
    half = T975_DF3 * math.sqrt(2 / 3) / 2
    assert (e.lo, e.hi) == pytest.approx((4 - half, 4 + half))
    one = stats.mean_ci([7.0])
    assert one.mean == 7.0 and math.isnan(one.lo) and math.isnan(one.hi)


def test_paired_difference_effect_size_and_tests():
    a, b = [1, 2, 3, 4], [2, 4, 5, 7]  # d = 1, 2, 2, 3: mean 2, sd sqrt(2/3)
    r = stats.paired(a, b)
    sd = math.sqrt(2 / 3)
    t = 2 / (sd / 2)
    assert r.n == 4 and r.mean_a == 2.5 and r.mean_b == 4.5
    assert r.diff.mean == 2.0
    assert (r.diff.lo, r.diff.hi) == pytest.approx((2 - T975_DF3 * sd / 2, 2 + T975_DF3 * sd / 2))
    assert r.d_z == pytest.approx(2 / sd)
    assert r.t == pytest.approx(t)
    assert r.p_t == pytest.approx(t3_two_sided_p(t), rel=1e-9)
    # four differences of one sign, no ties: exact p = 2 * (1/2)^4
    assert stats.paired([0, 0, 0, 0], [1, 2, 3, 4]).p_wilcoxon == pytest.approx(0.125)


def test_constant_and_single_pair_differences_have_no_test():
    same = stats.paired([1, 2, 3], [1.5, 2.5, 3.5])
    assert same.constant and same.diff.mean == 0.5
    assert math.isnan(same.p_t) and math.isnan(same.d_z)
    single = stats.paired([1.0], [2.0])
    assert single.n == 1 and math.isnan(single.diff.lo) and math.isnan(single.p_t)


def test_ratio_threshold_and_band():
    r = stats.ratio_ci([0.1, 0.2, 0.1], [0.4, 0.8, 0.4])
    assert (r.mean, r.lo, r.hi) == pytest.approx((0.25, 0.25, 0.25))
    assert stats.first_crossing([0.5, 0.2, 0.09, 0.12, 0.05], 0.1) == 3
    assert stats.first_crossing([0.1, 0.3, 0.5], 0.4, below=False) == 3
    assert stats.first_crossing([0.5, 0.4], 0.1) is None
    mean, lo, hi = stats.band(np.array([[1.0, 2.0], [3.0, np.nan]]))
    assert list(mean) == [2.0, 2.0]
    assert lo[0] == pytest.approx(2 - 12.706204736 * 1.0)  # t(0.975, 1 df) * sd / sqrt(2)
    assert math.isnan(lo[1]) and math.isnan(hi[1])


# --- synthetic sweeps in a real MLflow store -----------------------------------------------

@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> dict:
    return build_store(tmp_path_factory.mktemp("store"))


def read_csv(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def test_report_states_the_hand_computed_comparison(synth, tmp_path):
    folder = generate("acts", synth["uri"], tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    md = (folder / "report.md").read_text()
    assert "Synthetic question of acts?" in md
    assert "| model.hidden_activation | sigmoid, relu, linear | compared (baseline sigmoid) |" in md
    # relu crosses at 3,4,4,5 and sigmoid at 7,8,9,9: d = -4,-4,-5,-4, mean -4.25, sd 0.5
    half_s = T975_DF3 * np.std([7, 8, 9, 9], ddof=1) / 2  # 1.523
    half_r = T975_DF3 * np.std([3, 4, 4, 5], ddof=1) / 2  # 1.299
    lo, hi = -4.25 - T975_DF3 * 0.25, -4.25 + T975_DF3 * 0.25
    assert (
        f"Keras: relu reaches training loss ≤ 0.1 in 4 ± {half_r:.2g} epochs against 8.25 ± "
        f"{half_s:.2g} for sigmoid (difference -4.25, 95% CI [{lo:.4g}, {hi:.4g}], d_z = -8.5, "
        "paired t-test p < 0.001, Holm p = 0.004)" in md
    )
    assert t3_two_sided_p(-17.0) < 0.001
    # linear never reaches 0.1: the final training loss is compared instead
    d = np.array(FINAL["linear"]) - np.array(FINAL["sigmoid"])
    assert (
        f"final training loss {np.mean(FINAL['linear']):.4g} for linear against "
        f"{np.mean(FINAL['sigmoid']):.4g} for sigmoid (difference {d.mean():.4g}"
        in md
    )
    assert (
        "training loss ≤ 0.1 is reached by linear in none of 4 runs within 10 epochs and by "
        f"sigmoid in 8.25 ± {half_s:.2g} epochs (4 of 4 runs)" in md
    )
    assert "reached within 10 epochs by 4/4 baseline and 0/4 other runs" in md
    # backend agreement: Lightning's val loss = Keras' + 1e-6 * (1, 2, 3, 4)
    assert "final validation loss differs by at most 4e-06" in md
    assert "keras / lightning | 0.25 [0.25, 0.25] | 4" in md  # time ratio, constant per seed

    rows = {
        (r["model.hidden_activation"], r["backend"]): r for r in read_csv(folder / "summary.csv")
    }
    assert len(rows) == 6
    relu = rows[("relu", "keras")]
    assert float(relu["epochs_to_threshold_mean"]) == 4.0
    assert float(relu["epochs_to_threshold_ci_lo"]) == pytest.approx(4 - half_r, abs=1e-5)
    assert float(relu["train_loss_mean"]) == pytest.approx(np.mean(FINAL["relu"]), abs=1e-6)
    assert rows[("linear", "keras")]["threshold_reached"] == "0"
    times = {
        (r["model.hidden_activation"], r["backend"]): r for r in read_csv(folder / "timing.csv")
    }
    assert float(times[("sigmoid", "lightning")]["steady_epoch_s_mean"]) == pytest.approx(0.6)
    assert "steady_epoch_s_mean" not in read_csv(folder / "summary.csv")[0]  # times kept apart

    client = synth["client"]
    attached = sorted(a.path for a in client.list_artifacts(synth["parent"], "report"))
    assert attached == sorted(f"report/{f}" for f in FILES)


def test_same_store_gives_byte_identical_files(synth, tmp_path):
    a = generate("acts", synth["uri"], tmp_path / "a", attach=False)
    b = generate("acts", synth["uri"], tmp_path / "b", attach=False)
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    for png in ("loss.png", "accuracy.png"):
        blob = (a / png).read_bytes()
        assert blob.startswith(b"\x89PNG") and b"Software" not in blob and b"matplotlib" not in blob


def test_resumed_sweep_uses_the_latest_finished_run_of_each_job(synth, tmp_path):
    folder = generate("resumed", synth["uri"], tmp_path, attach=False)
    md = (folder / "report.md").read_text()
    assert "8 runs: 2 variants × 1 backend × 4 seeds (8 planned)" in md
    assert "Missing" not in md and "FAILED" not in md.split("## Environment")[0]
    # the first sweep's own report names the rerun too: a job is the latest FINISHED run of its hash
    older = generate(
        "resumed", synth["uri"], tmp_path / "old", parent=synth["first"], attach=False
    )
    assert "8 runs" in (older / "report.md").read_text()
    assert "sweep ended FAILED" in (older / "report.md").read_text()


def test_task_changing_factor_is_a_condition_and_regression_uses_r2(synth, tmp_path):
    folder = generate("tasks_synth", synth["uri"], tmp_path, attach=False)
    md = (folder / "report.md").read_text()
    assert "| data | digits_binary, diabetes | condition; changes the task" in md
    assert "| optimizer | gd, adam | compared (baseline gd) |" in md
    assert "Follow from the factors: `data.n_train`, `data.task`, `model.output_activation`." in md
    assert "- **optimizer=adam vs gd** at data=diabetes (2 seeds):" in md
    assert "final validation R² 0.6 against 0.3" in md
    assert "regression: first epoch with training R² ≥ 0.4" in md
    rows = {(r["data"], r["optimizer"]): r for r in read_csv(folder / "summary.csv")}
    assert rows[("diabetes", "adam")]["val_score_metric"] == "r2"
    assert rows[("diabetes", "adam")]["threshold"] == "train/r2 >= 0.4"
    assert rows[("digits_binary", "gd")]["threshold"] == "train/loss <= 0.1"


def test_parity_verdict_is_reported(synth, tmp_path):
    md = (
        generate("parity_synth", synth["uri"], tmp_path, attach=False) / "report.md"
    ).read_text()
    verdict = (
        "**Parity verdict of the sweep: fail** (2 framework runs checked against the NumPy "
        "reference; fail if any failed: keras-adam)."
    )
    assert md.count(verdict) == 2  # in the answer and in the agreement section
    assert "| adam | keras | fail 1/1 | 0.5 | 3e-08 | loss 1e-05 |" in md
    assert "| gd | keras | pass 1/1 | 2e-07 | 3e-08 | loss 1e-05 |" in md
    assert "| gd | numpy | reference 1/1 |" in md


def run_main(capsys, *args: str) -> tuple[int, str]:
    code = main(list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_clear_errors(synth, tmp_path, capsys):
    uri = synth["uri"]
    out = ["--tracking-uri", uri, "--out", str(tmp_path)]
    code, err = run_main(capsys, "nope", *out)
    assert (
        code == 2
        and "unknown experiment 'nope'" in err
        and "acts" in err
        and "course_binary" in err
    )
    code, err = run_main(capsys, "--reproduce", "nope", *out)  # refused before any sweep runs
    assert code == 2 and "unknown experiment(s) nope" in err and "activations" in err
    code, err = run_main(capsys, "course_binary", *out)  # a conf/experiment file, never run here
    assert (
        code == 2 and "no runs" in err and "python -m harness +experiment=course_binary -m" in err
    )
    code, err = run_main(capsys, "empty", *out)
    assert code == 2 and "'empty' is empty" in err
    code, err = run_main(capsys, "acts", "--parent", "0" * 32, *out)
    assert code == 2 and f"parent run '{'0' * 32}' not found" in err
    code, err = run_main(capsys, "seeds_only", *out)
    assert code == 2 and "differ only in the seed" in err and "nothing to compare" in err
    code, err = run_main(capsys, "singles", *out)
    assert code == 2 and "no sweep" in err and "cannot be compared" in err
    code, err = run_main(capsys, "acts", "--compare", "optimizer", *out)
    assert code == 2 and "not a factor of this sweep" in err and "model.hidden_activation" in err
    code, err = run_main(capsys, "acts", "--tracking-uri", f"sqlite:///{tmp_path / 'none.db'}")
    assert code == 2 and "no MLflow store" in err
    assert not (tmp_path / "none.db").exists()
    assert not any(tmp_path.glob("*/report.md"))  # nothing written on error


def test_sweep_then_report_end_to_end(tmp_path):
    """A real 3-epoch, 2-seed sweep through `python -m harness`, then `python -m harness.report`."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sweep = cli(
        "+experiment=course_binary",
        "train.epochs=3",
        "seed=0,1",
        f"tracking.uri={store}",
        "-m",
        cwd=tmp_path,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    proc = subprocess.run(
        [sys.executable, "-m", "harness.report", "course_binary", "--tracking-uri", store],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote results/local/course_binary/report.md" in proc.stderr
    folder = tmp_path / "results" / "local" / "course_binary"
    assert not (tmp_path / "results" / "course_binary").exists()  # the committed one untouched
    md = (folder / "report.md").read_text()
    assert "The lesson's 25-15-1 sigmoid digit classifier" in md
    assert "| backend | keras, lightning | agreement checked |" in md
    assert "| seed | 0, 1 |" in md
    assert "Lightning vs Keras over 2 paired runs" in md
    assert f"python -m harness.report course_binary --tracking-uri {store}" in md
    rows = read_csv(folder / "summary.csv")
    assert [r["backend"] for r in rows] == ["keras", "lightning"] and all(
        r["n_seeds"] == "2" for r in rows
    )
    client = MlflowClient(tracking_uri=store)
    exp = client.get_experiment_by_name("course_binary")
    (parent,) = client.search_runs([exp.experiment_id], "tags.`harness.role` = 'sweep'")
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "report")} == {
        f"report/{f}" for f in FILES
    }
    again = generate("course_binary", store, tmp_path / "again")
    for name in FILES:
        assert (again / name).read_bytes() == (folder / name).read_bytes(), name


@pytest.mark.slow
def test_rerunning_the_sweep_gives_identical_tables_apart_from_times(tmp_path):
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["+experiment=course_binary", "train.epochs=3", "seed=0,1", f"tracking.uri={store}"]
    assert cli(*args, "-m", cwd=tmp_path).returncode == 0
    first = generate("course_binary", store, tmp_path / "first")
    assert cli(*args, "tracking.resume=false", "-m", cwd=tmp_path).returncode == 0  # fresh runs
    second = generate("course_binary", store, tmp_path / "second")
    a, b = (first / "report.md").read_text(), (second / "report.md").read_text()
    assert a != b  # new runs, new ids and times
    assert deterministic_text(a) == deterministic_text(b)
    for name in ("summary.csv", "loss.png", "accuracy.png"):
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
