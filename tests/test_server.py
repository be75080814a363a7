"""Tracking against a real MLflow server on a real PostgreSQL: started here, stopped here.

The PostgreSQL tests need the server binaries (Debian: `apt-get install postgresql`, which
.ci/run does) and a driver (`pip install -e ".[server]"`); without them they are skipped and
say why. The unreachable-server tests need neither and run in the default suite.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests
from mlflow.tracking import MlflowClient

from harness.store import TrackingUnavailable, redact, tracked_run
from tests.conftest import cli, make_spec

EPOCHS = 3
PER_EPOCH = ("train/loss", "val/loss", "train/accuracy", "val/accuracy", "time/epoch_s")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    """The newest PostgreSQL server's bin folder (Debian keeps it off PATH)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: p.parent.parent.name
    )
    found = [p.parent for p in found if (p.parent / "initdb").exists()]
    if found:
        return found[-1]
    on_path = shutil.which("pg_ctl")
    return Path(on_path).resolve().parent if on_path and shutil.which("initdb") else None


def _why_no_postgres() -> str | None:
    if _pg_bin() is None:
        return (
            "PostgreSQL server binaries (initdb, pg_ctl) not installed: "
            "apt-get install postgresql (CI does)"
        )
    try:
        import psycopg  # noqa: F401  (the driver SQLAlchemy uses for postgresql+psycopg://)
    except ImportError:
        return "no PostgreSQL driver for the MLflow server: pip install -e '.[server]'"
    if os.geteuid() == 0:  # postgres refuses to run as root: it runs as the postgres user
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser (util-linux) is missing"
    return None


needs_postgres = pytest.mark.skipif(_why_no_postgres() is not None, reason=str(_why_no_postgres()))


def _stop_group(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM the process group (mlflow server -> uvicorn workers), then SIGKILL."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


@dataclass
class Postgres:
    port: int
    password: str

    def uri(self, database: str) -> str:
        return f"postgresql+psycopg://harness:{self.password}@127.0.0.1:{self.port}/{database}"


@pytest.fixture(scope="module")
def postgres():
    """initdb + pg_ctl start on a free loopback port, in a throwaway folder; stopped at the end."""
    why = _why_no_postgres()
    if why:
        pytest.skip(why)
    bin_dir = _pg_bin()
    # not under pytest's 0700 folder: postgres must enter it
    root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        pg = pwd.getpwnam("postgres")
        os.chown(root, pg.pw_uid, pg.pw_gid)
        as_postgres = ["runuser", "-u", "postgres", "--"]
    data, port, password = root / "data", _free_port(), secrets.token_hex(12)

    def pg(*args: str, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*as_postgres, *args], capture_output=True, text=True, timeout=120, check=False, **kw
        )

    init = pg(
        str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8", "--no-sync",
        "--auth-local=trust", "--auth-host=scram-sha-256",  # TCP needs the password
    )
    assert init.returncode == 0, init.stderr
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = pg(
        str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"),
        "-w", "start",
    )
    try:
        assert start.returncode == 0, start.stderr + (root / "log").read_text()
        import psycopg

        with psycopg.connect(
            host=str(root), port=port, user="postgres", dbname="postgres", autocommit=True
        ) as c:
            c.execute(f"CREATE USER harness PASSWORD '{password}' CREATEDB")
        server = Postgres(port, password)
        server.admin = {"host": str(root), "port": port, "user": "postgres", "dbname": "postgres"}  # type: ignore[attr-defined]
        yield server
    finally:
        pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _create_database(postgres: Postgres, name: str) -> str:
    import psycopg

    with psycopg.connect(**postgres.admin, autocommit=True) as c:  # type: ignore[attr-defined]
        c.execute(f"CREATE DATABASE {name} OWNER harness")
    return postgres.uri(name)


class MlflowServer:
    """`mlflow server` on PostgreSQL with a file artifact destination, bound to loopback."""

    def __init__(self, backend_uri: str, artifacts: Path, log: Path) -> None:
        self.backend_uri, self.artifacts, self.log = backend_uri, artifacts, log
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 240.0) -> str:
        port = _free_port()
        self.url = f"http://127.0.0.1:{port}"
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable, "-m", "mlflow", "server",
                    "--backend-store-uri", self.backend_uri,
                    "--artifacts-destination", self.artifacts.as_uri(), "--serve-artifacts",
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                ],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                # no GenAI job runners (6 huey processes): tracking needs none of them
                env={**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"mlflow server exited {self.proc.returncode}:\n{self.log.read_text()[-3000:]}"
                )
            try:
                if requests.get(self.url + "/health", timeout=2).ok:
                    return self.url
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError(
            f"mlflow server not healthy after {timeout} s:\n{self.log.read_text()[-3000:]}"
        )

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)


@pytest.fixture
def mlflow_server(postgres, tmp_path, request):
    """A factory: a fresh database and an MLflow server on it; each is stopped after the test."""
    servers: list[MlflowServer] = []
    request.addfinalizer(lambda: [s.stop() for s in servers])

    def make(database: str) -> MlflowServer:
        server = MlflowServer(
            _create_database(postgres, database),
            tmp_path / "artifacts",
            tmp_path / f"{database}.log",
        )
        servers.append(server)
        return server

    return make


def _with_credentials(url: str, user: str, password: str) -> str:
    return url.replace("http://", f"http://{user}:{password}@", 1)


def _jobs_and_parents(client: MlflowClient, experiment: str):
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None, f"no experiment {experiment} on the server"
    runs = client.search_runs([exp.experiment_id], "", max_results=1000)
    jobs = [r for r in runs if r.data.tags.get("harness.role") == "job"]
    parents = [r for r in runs if r.data.tags.get("harness.role") == "sweep"]
    return jobs, parents


def _artifact_texts(client: MlflowClient, run_id: str, path: str = "") -> dict[str, str]:
    texts: dict[str, str] = {}
    for item in client.list_artifacts(run_id, path or None):
        if item.is_dir:
            texts.update(_artifact_texts(client, run_id, item.path))
            continue
        local = client.download_artifacts(run_id, item.path, tempfile.mkdtemp())
        texts[item.path] = Path(local).read_bytes().decode("utf-8", "replace")
    return texts


def _assert_complete(client: MlflowClient, run, epochs: int = EPOCHS) -> None:
    for key in PER_EPOCH:
        steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, key))
        assert steps == list(range(1, epochs + 1)), f"{run.info.run_name} {key}: steps {steps}"


def _files_containing(folder: Path, needle: str) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


# --- unreachable server: cheap, no PostgreSQL -------------------------------------------------


def test_an_unreachable_server_fails_a_run_in_seconds_before_training(tmp_path):
    spec = make_spec(
        "tracking=server", f"tracking.uri=http://harness:s3cret-pw@127.0.0.1:{_free_port()}"
    )
    t0 = time.perf_counter()
    unreachable = r"cannot reach the MLflow tracking server at http://\*\*\*@127"
    with (
        pytest.raises(TrackingUnavailable, match=unreachable) as err,
        tracked_run(spec.tracking, "r", {}, {}, ""),
    ):
        raise AssertionError("the run body must not start")
    assert time.perf_counter() - t0 < 10  # not MLflow's ~4 minutes of retries
    assert "s3cret-pw" not in str(err.value)


def test_a_sweep_against_an_unreachable_server_stops_before_any_job(tmp_path):
    t0 = time.perf_counter()
    proc = cli(
        "backend=numpy", "seed=0,1", "train.epochs=2", "tracking=server",
        f"tracking.uri=http://127.0.0.1:{_free_port()}", "-m", cwd=tmp_path,
    )
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 1
    assert (
        "cannot start the sweep: TrackingUnavailable: cannot reach the MLflow tracking server"
        in proc.stderr
    )
    assert "Connection refused" in proc.stderr
    assert not list(tmp_path.rglob("harness_outcome.json")), "a job ran"
    assert elapsed < 60, f"{elapsed:.0f} s to give up"


def test_the_server_preset_without_a_uri_names_what_is_missing(tmp_path):
    # cli drops $MLFLOW_TRACKING_URI
    proc = cli("backend=numpy", "seed=0,1", "tracking=server", "-m", cwd=tmp_path)
    assert proc.returncode != 0
    assert "MLFLOW_TRACKING_URI" in proc.stderr and "tracking.uri" in proc.stderr


def test_redact_catches_hydra_escaped_credentials():
    # what Hydra hands over as the job's overrides (and harness tags as `command`)
    escaped = r"tracking.uri=http\://bob\:s3cret@127.0.0.1\:5000"
    assert "s3cret" not in redact(escaped)
    assert redact(escaped) == r"tracking.uri=http\://***@127.0.0.1\:5000"
    assert "s3cret" not in redact(json.dumps([escaped]))  # the same override inside sweep.json


# --- a real server on a real PostgreSQL -------------------------------------------------------


@pytest.mark.server
@pytest.mark.slow
@needs_postgres
def test_parallel_sweep_on_a_postgres_backed_server_arrives_whole_and_secret_free(
    mlflow_server, postgres, tmp_path, monkeypatch
):
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    server = mlflow_server("sweep_ok")
    url = server.start()
    # credentials in the tracking URI: sent as HTTP basic auth, never stored
    secret = secrets.token_hex(8)
    experiment = "server_sweep"
    t0 = time.perf_counter()
    proc = cli(
        "backend=numpy,lightning", "seed=0,1,2,3", f"train.epochs={EPOCHS}", "tracking=server",
        f"tracking.uri={_with_credentials(url, 'harness', secret)}",
        f"tracking.experiment={experiment}", "+launcher=parallel", "-m", cwd=tmp_path,
    )
    sweep_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-4000:]
    # MLflow's own "View run at <uri-with-credentials>" lines are off
    assert "View run" not in proc.stdout

    client = MlflowClient(url)
    jobs, parents = _jobs_and_parents(client, experiment)
    assert len(jobs) == 8 and len({r.data.tags["config_hash"] for r in jobs}) == 8
    assert [p.info.status for p in parents] == ["FINISHED"]
    assert parents[0].data.metrics["sweep/finished"] == 8
    for run in jobs:
        assert run.info.status == "FINISHED", run.info.run_name
        assert run.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
        assert run.data.params["tracking.uri"] == f"http://***@{url[len('http://'):]}"
        _assert_complete(client, run)

    for run in jobs + parents:  # nothing written to MLflow holds either password
        written = [
            *run.data.params.values(),
            *run.data.tags.values(),
            *_artifact_texts(client, run.info.run_id).values(),
        ]
        for text in written:
            assert secret not in text and postgres.password not in text, run.info.run_name
    print(f"\n8-job parallel sweep against the server: {sweep_s:.1f} s")

    out = tmp_path / "reports"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.report", experiment, "--tracking-uri", url,
         "--out", str(out)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = pd.read_csv(out / experiment / "summary.csv")  # one row per backend, seeds pooled
    assert sorted(summary["backend"]) == ["lightning", "numpy"]
    assert summary["n_seeds"].tolist() == [4, 4]
    attached = [a.path for a in client.list_artifacts(parents[0].info.run_id, "report")]
    assert "report/report.md" in attached  # uploaded through the server's artifact proxy
    assert not _files_containing(out, secret)


@pytest.mark.server
@pytest.mark.slow
@needs_postgres
def test_a_server_lost_mid_sweep_fails_the_affected_runs_and_a_rerun_resumes(
    mlflow_server, tmp_path
):
    server = mlflow_server("sweep_drop")
    url = server.start()
    secret = secrets.token_hex(8)
    experiment = "server_drop"
    args = [  # 3 short jobs, then 3 of some seconds each (batch size 1) flushing every 0.2 s
        "backend=numpy", "train.epochs=2,40", "seed=0,1,2", "train.batch_size=1",
        "tracking=server", "tracking.flush_every_s=0.2", f"tracking.experiment={experiment}", "-m",
    ]
    # the URI from the environment, as the README recommends: Hydra never sees the credentials
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_TRACKING_URI"] = _with_credentials(url, "harness", secret)
    sweep = subprocess.Popen(
        [sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    try:
        client = MlflowClient(url)
        deadline = time.monotonic() + 300
        # 2 runs done and a long one (40 epochs, ~6 s) less than half-way: a 2-epoch run seen
        # RUNNING (~0.3 s of it) may have ended by the time the server stops (a CI failure)
        while time.monotonic() < deadline and sweep.poll() is None:
            exp = client.get_experiment_by_name(experiment)
            role = "tags.`harness.role` = 'job'"
            jobs = client.search_runs([exp.experiment_id], role) if exp else []
            done = [r for r in jobs if r.info.status == "FINISHED"]
            long_running = [
                r for r in jobs
                if r.info.status == "RUNNING" and r.data.params.get("train.epochs") == "40"
                and "train/loss" in r.data.metrics
            ]
            if len(done) >= 2 and any(
                max(m.step for m in client.get_metric_history(r.info.run_id, "train/loss")) <= 20
                for r in long_running
            ):
                break
            time.sleep(0.2)
        server.stop()  # the server goes away mid-run, mid-sweep
        out, err = sweep.communicate(timeout=600)
    finally:
        _stop_group(sweep)
    assert sweep.returncode == 1, err[-4000:]
    assert "tracking server" in err

    outcomes = [json.loads(p.read_text()) for p in tmp_path.rglob("harness_outcome.json")]
    assert len(outcomes) == 6  # every job says how it ended: none lost silently
    failed = [o for o in outcomes if o["status"] != "FINISHED"]
    assert failed and all(
        o["status"] == "FAILED" and "tracking server" in o["error"] for o in failed
    )
    lost = r"lost the MLflow tracking server at \S+ during run"
    in_flight = [o for o in failed if re.search(lost, o["error"])]
    # the run the server went away under; the rest never started
    assert len(in_flight) == 1, "\n".join(map(str, failed)) + "\n" + err[-3000:]
    finished_first = {o["run_name"] for o in outcomes if o["status"] == "FINISHED"}
    assert len(finished_first) >= 2

    url = server.start()  # back, same database, new port
    env["MLFLOW_TRACKING_URI"] = _with_credentials(url, "harness", secret)
    rerun = subprocess.run(
        [sys.executable, "-m", "harness", *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False,
    )
    assert rerun.returncode == 0, rerun.stderr[-4000:]
    assert f"{len(finished_first)} of 6 jobs already have a FINISHED run" in rerun.stderr

    client = MlflowClient(url)
    jobs, parents = _jobs_and_parents(client, experiment)
    finished = [r for r in jobs if r.info.status == "FINISHED"]
    assert len(finished) == 6 and len({r.data.tags["config_hash"] for r in finished}) == 6
    # the next sweep ended them
    assert not [r for r in jobs + parents if r.info.status == "RUNNING"]
    for run in finished:
        _assert_complete(client, run, epochs=int(run.data.params["train.epochs"]))
    assert not _files_containing(tmp_path, secret)  # not in Hydra's folders either
    assert secret not in out + err + rerun.stdout + rerun.stderr
