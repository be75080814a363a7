"""`python -m harness.report --reproduce EXP ...`: run each experiment's sweep at its
default budget into the store (a resumed sweep skips finished jobs), then report it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from harness.report.build import generate
from harness.report.load import ReportError, known_experiments


def reproduce(
    experiments: list[str], uri: str | None, out: Path, compare: str | None = None
) -> list[Path]:
    """Run each experiment's sweep at its default budget (resuming), then report it."""
    unknown = [e for e in experiments if e not in known_experiments()]
    if unknown:
        raise ReportError(
            f"unknown experiment(s) {', '.join(unknown)}; conf/experiment/ has: "
            f"{', '.join(known_experiments())}"
        )
    folders, problems = [], []
    for name in experiments:
        cmd = [sys.executable, "-m", "harness", f"+experiment={name}"]
        if uri:
            cmd.append(f"tracking.uri={uri}")
        cmd.append("-m")
        print(f"[harness.report] {' '.join(['python', *cmd[1:]])}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, check=False)
        if proc.returncode != 0:  # some jobs failed: report the rest, say so at the end
            problems.append(
                f"the sweep of '{name}' did not finish every job (exit {proc.returncode}); its "
                "report leaves them out. Run the same command again to retry only those jobs"
            )
        try:
            folders.append(generate(name, uri, out, compare=compare))
        except ReportError as exc:
            problems.append(f"{name}: {exc}")
            continue
        print(f"[harness.report] wrote {folders[-1] / 'report.md'}", file=sys.stderr, flush=True)
    if problems:
        raise ReportError("\n".join(problems))
    return folders
