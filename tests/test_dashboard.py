"""A new user's first sweep and dashboard: the sweep's output, and the MLflow UI that
`python -m harness.dashboard` opens, checked in a real (headless) Chromium.

One small real sweep (the CLI, Keras and Lightning, 3 epochs) feeds every test here. The
browser test starts the dashboard on a free loopback port, finds the sweep's parent run,
expands it to show its runs nested under it, charts val/ per epoch, and leaves screenshots
in results/test-artifacts/ for a person to look at. It stops everything it starts.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from harness.store import PARENT_TAG, ROLE_TAG
from harness.tools import dashboard
from tests.conftest import ROOT, cli

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = ROOT / "results" / "test-artifacts"
CHILDREN = ["keras-sigmoid-probs-adam-s0", "lightning-sigmoid-probs-adam-s0"]
# what the frameworks, Hydra and MLflow print unless the harness keeps it out of the way
NOISE = [
    "[HYDRA]",
    "Creating initial MLflow database tables",
    "oneDNN",
    "cuda",
    "absl",
    "GPU available",
    "TPU available",
    "LOCAL_RANK",
    "Tip:",
    "litlogger",
    "Warning",
]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> SimpleNamespace:
    """A small real sweep in its own store; what it printed; its parent run's name."""
    where = tmp_path_factory.mktemp("dashboard")
    store = f"sqlite:///{where / 'mlflow.db'}"
    proc = cli(
        "+experiment=course_binary",
        "train.epochs=3",
        "seed=0",
        f"tracking.uri={store}",
        "-m",
        cwd=where,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("course_binary")
    runs = client.search_runs([experiment.experiment_id])
    [parent] = [r for r in runs if r.data.tags[ROLE_TAG] == "sweep"]
    return SimpleNamespace(
        dir=where,
        store=store,
        proc=proc,
        client=client,
        experiment=experiment,
        runs=runs,
        parent=parent,
    )


def test_a_sweep_says_where_it_is_and_how_to_see_it_without_framework_noise(sweep):
    err = sweep.proc.stderr
    assert "[1/2] finished keras-sigmoid-probs-adam-s0" in err
    assert "[2/2] finished lightning-sigmoid-probs-adam-s0" in err
    assert f"[harness] dashboard: python -m harness.dashboard --uri {sweep.store}" in err
    printed = sweep.proc.stdout + err
    assert [word for word in NOISE if word in printed] == []


def test_the_printed_dashboard_command_serves_the_sweeps_store_on_loopback(sweep, capsys):
    line = re.search(r"dashboard: (python -m harness\.dashboard.*)", sweep.proc.stderr).group(1)
    args = shlex.split(line)[3:]  # after `python -m harness.dashboard`
    assert dashboard.main([*args, "--print"]) == 0
    command = capsys.readouterr().out
    assert f"mlflow ui --backend-store-uri {sweep.store} --host 127.0.0.1 --port 5000" in command


def test_the_dashboard_refuses_a_store_that_does_not_exist(tmp_path, capsys):
    assert dashboard.main(["--uri", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "no MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()  # nothing created by looking


def test_runs_nest_under_the_sweep_and_can_be_filtered_by_what_was_swept(sweep):
    children = [r for r in sweep.runs if r.data.tags[ROLE_TAG] == "job"]
    assert sorted(r.info.run_name for r in children) == CHILDREN
    assert {r.data.tags[PARENT_TAG] for r in children} == {sweep.parent.info.run_id}
    for where, name in [
        ("tags.backend = 'lightning'", CHILDREN[1]),
        ("params.`backend.name` = 'keras'", CHILDREN[0]),
    ]:
        found = sweep.client.search_runs(
            [sweep.experiment.experiment_id], f"{where} and params.seed = '0'"
        )
        assert [r.info.run_name for r in found] == [name]
    assert all(
        "model_uri" not in r.data.tags for r in children
    )  # tracking.log_model is off by default


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start_dashboard(store: str, port: int, log: Path) -> subprocess.Popen:
    with log.open("w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "harness.dashboard", "--uri", store, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
            start_new_session=True,  # its own process group: stopped as a whole below
        )


def _wait_until_up(server: subprocess.Popen, port: int, log: Path, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(
                f"the dashboard exited with {server.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the dashboard did not answer within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM to the dashboard's process group (mlflow and the uvicorn it runs), then SIGKILL."""
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _chromium(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1600,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(arg)
    # an explicit driver path: Selenium Manager never looks for (or downloads) one
    return webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))


def _screenshot(driver, tmp_path: Path, name: str) -> Path:
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, ARTIFACTS / name)
    return shot


@pytest.mark.browser
@pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason="needs Debian's Chromium: apt-get install -y chromium chromium-driver (.ci/run does)",
)
def test_the_dashboard_shows_the_sweep_with_its_runs_nested_and_charted_per_epoch(sweep, tmp_path):
    pytest.importorskip("selenium", reason="needs selenium: pip install -e '.[test]'")
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    port, log = _free_port(), tmp_path / "dashboard.log"
    server = _start_dashboard(sweep.store, port, log)
    try:
        _wait_until_up(server, port, log)
        # the link the dashboard printed for the experiment: its runs, in the training view
        url = re.search(r"course_binary\s+(http://\S+)", log.read_text()).group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/")
        driver = _chromium(tmp_path / "chromium-profile")
        try:
            driver.get(url)

            def page() -> str:
                return driver.find_element(By.TAG_NAME, "body").text
            parent = sweep.parent.info.run_name
            WebDriverWait(driver, 60).until(lambda _: parent in page())
            # nested: only the sweep's row shows until it is expanded
            assert not any(child in page() for child in CHILDREN)
            expander = f"//a[normalize-space()='{parent}']/ancestor::*[@role='gridcell'][1]//button"
            driver.find_element(By.XPATH, expander).click()
            WebDriverWait(driver, 30).until(lambda _: all(child in page() for child in CHILDREN))
            for close in driver.find_elements(
                By.CSS_SELECTOR, "[data-component-id$='chat_panel.close']"
            ):
                close.click()  # MLflow 3's assistant panel covers a third of the page
            runs_shot = _screenshot(driver, tmp_path, "dashboard-runs.png")

            # the chart view plots every metric per epoch, for each of the sweep's runs
            chart_mode = driver.find_element(By.XPATH, "//input[@value='CHART']")
            driver.execute_script("arguments[0].click()", chart_mode)
            search = WebDriverWait(driver, 30).until(
                lambda d: d.find_element(By.XPATH, "//input[@placeholder='Search metric charts']")
            )
            search.send_keys("val/")
            charted = [f"{child} (val/loss)" for child in CHILDREN]
            WebDriverWait(driver, 30).until(lambda _: all(line in page() for line in charted))
            charts_shot = _screenshot(driver, tmp_path, "dashboard-charts.png")
        finally:
            driver.quit()
    finally:
        _stop(server)
    assert server.poll() is not None
    assert runs_shot.stat().st_size > 10_000 and charts_shot.stat().st_size > 10_000
