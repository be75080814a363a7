"""`python -m harness.dashboard`: the MLflow UI on the harness's store, on 127.0.0.1:5000.

The store is found as the harness finds it (`--uri`, else $MLFLOW_TRACKING_URI, else
results/mlflow.db under the current directory). The process becomes `mlflow ui` (Ctrl-C
stops it); `--print` prints that command instead. Before it starts, it prints a link to
each experiment's runs: MLflow 3 opens on its GenAI pages (traces), and the links go
straight to the model-training view, where a sweep is a parent run with its runs nested
under it (click + to expand), and the chart view plots every metric per epoch.
"""

from __future__ import annotations

import argparse
import os
import shlex
import socket
import sys

from harness.core.config import TrackingConfig
from harness.store import Reader, is_server, redact, resolve_uri, sqlite_path

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 5000
# mlflow ui also starts a job runner for GenAI features (LLM judges, trace rollups): several
# more processes and seconds of start-up that a training dashboard does not use
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
EXAMPLE_SWEEP = "python -m harness +experiment=course_binary -m"


def ui_command(uri: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> list[str]:
    """`mlflow ui` on the store: one worker process is plenty for one user, and a line per
    HTTP request (dozens per page) would bury anything worth reading in the terminal."""
    return [
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--uvicorn-opts=--no-access-log",
    ]


def shell_line(uri: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    env = " ".join(f"{k}={v}" for k, v in SERVER_ENV.items())
    return f"{env} {shlex.join(ui_command(uri, host, port))}"


def runs_url(base: str, experiment_id: str) -> str:
    """An experiment's runs table in the model-training view (not MLflow 3's GenAI default)."""
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def experiments(uri: str) -> list[tuple[str, str]]:
    """(name, id) of the store's experiments, newest first; MLflow's empty 'Default' left out."""
    return Reader(uri).experiments()


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m harness.dashboard",
        description="Open the MLflow UI on the harness's results, bound to loopback by default.",
    )
    parser.add_argument(
        "--uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db "
        "under the current directory; the sweep's last line names it when it differs)",
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST, help="interface to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="port (default: %(default)s)"
    )
    parser.add_argument("--print", action="store_true", help="print the mlflow ui command and exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    uri = resolve_uri(TrackingConfig(uri=args.uri))
    if args.print:
        print(shell_line(uri, args.host, args.port))
        return 0
    if is_server(uri):
        print(f"The store is an MLflow tracking server: its UI is at {redact(uri)}")
        return 0
    path = sqlite_path(uri)
    if path is not None and not path.is_file():
        print(
            f"harness.dashboard: no MLflow store at {path} yet. Run a sweep first "
            f"({EXAMPLE_SWEEP}), or pass --uri.",
            file=sys.stderr,
        )
        return 2
    if not port_free(args.host, args.port):
        print(
            f"harness.dashboard: port {args.port} on {args.host} is in use (another dashboard?); "
            f"pass --port {args.port + 1}.",
            file=sys.stderr,
        )
        return 2
    base = f"http://{args.host}:{args.port}"
    print(f"MLflow UI on {redact(uri)} at {base} (Ctrl-C stops it). Each experiment's runs:")
    for name, experiment_id in experiments(uri) or [("(none yet)", "0")]:
        print(f"  {name:<20} {runs_url(base, experiment_id)}")
    sys.stdout.flush()
    command = ui_command(uri, args.host, args.port)
    # become the server: Ctrl-C and signals reach it directly, nothing is left behind
    os.execvpe(
        sys.executable, [sys.executable, "-m", "mlflow", *command[1:]], {**os.environ, **SERVER_ENV}
    )


if __name__ == "__main__":
    sys.exit(main())
