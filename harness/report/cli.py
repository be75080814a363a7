"""`python -m harness.report EXPERIMENT`: turn a sweep into a report that answers its question.

Reads the runs of one sweep from MLflow (the latest sweep of the experiment, or `--parent
RUN_ID`) and writes `results/local/<experiment>/` (not committed; `--out DIR` for another
parent folder, `--out results` or `--reproduce` for the committed reports): `report.md`, the
figures `loss.png` and `accuracy.png`, `summary.csv` (final metrics, deterministic) and
`timing.csv` (measured times). The same files are attached to the sweep's parent run under
`report/`.

A tuned sweep (hydra/sweeper=harness_tuned) gets the same report, its verdicts on the eval
stage only, plus the tuned sections and `sensitivity.png`; the lesson experiments
(overfitting, data_size, conv_vs_dense, softmax2_vs_sigmoid) get what their question needs
(harness.report.extras, .lesson_report). `python -m harness.report.tuned` still writes the
tuned sections alone (tuned.md) from the store.

The parts: harness.report.load (store -> runs), .design (factors, levels), .analysis
(comparisons, agreement), .tables (each table one DataFrame, to Markdown and CSV), .answer
and .sections (the Markdown), .figures, .build (files, attachment), .reproduce (`--reproduce`).

Same store in, same bytes out: the report has no timestamp of its own, stable ordering and
fixed plot settings. Measured times live only in the "Measured times" section and
`timing.csv`; run ids and commits only in "Provenance"; everything else is identical when
the sweep is rerun with the same seeds on the same machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.report.agreement import agreement
from harness.report.build import generate, regenerate
from harness.report.claims import write_claims
from harness.report.load import LESSON, ReportError
from harness.report.reproduce import reproduce

COMMITTED = Path("results")  # the committed reports: written only when asked
LOCAL = COMMITTED / "local"  # ad-hoc reports (gitignored), so a rerun never dirties the tree


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m harness.report",
        description="Write a report (report.md with its verdicts, figures, summary.csv, "
        "timing.csv, verdicts.csv and its data runs.csv + sweep.json) of an experiment's latest "
        "sweep in MLflow to results/local/<experiment>/, attach it to the sweep's parent run "
        "and tag the verdicts there. The committed results/<experiment>/ is written only by "
        "--reproduce or --out results.",
    )
    p.add_argument("experiments", nargs="*", metavar="EXPERIMENT", help=f"e.g. {' '.join(LESSON)}")
    p.add_argument("--parent", help="report this sweep (its parent run id) instead of the latest")
    p.add_argument(
        "--tracking-uri",
        help="MLflow store (default: $MLFLOW_TRACKING_URI, else sqlite:///results/mlflow.db)",
    )
    p.add_argument(
        "--out",
        type=Path,
        help=f"parent folder of the report (default {LOCAL}, not committed; with --reproduce "
        f"and --claims {COMMITTED}, the committed reports)",
    )
    p.add_argument(
        "--compare",
        metavar="KEY",
        help="the factor to compare (default: the first swept factor that keeps the task)",
    )
    p.add_argument(
        "--no-attach",
        action="store_true",
        help="do not attach the report to the parent run, nor tag its verdicts there",
    )
    p.add_argument(
        "--reproduce",
        action="store_true",
        help=f"first run each experiment's sweep at its default budget; writes to {COMMITTED}",
    )
    p.add_argument(
        "--from-data",
        type=Path,
        metavar="FOLDER",
        help="regenerate a report from the data a report folder ships (runs.csv, sweep.json), "
        "without the store",
    )
    p.add_argument(
        "--claims",
        action="store_true",
        help=f"write {COMMITTED}/CLAIMS.md (or <out>/CLAIMS.md), the course's claims with their "
        "verdicts, from the committed reports' data",
    )
    p.add_argument(
        "--agreement",
        nargs=2,
        type=Path,
        metavar=("REFERENCE", "CANDIDATE"),
        help="how closely two report folders' data agree (e.g. results/X against the same sweep "
        "rerun on another CPU): bitwise-equal counts and largest differences per metric; "
        "printed, and written to <out>/agreement.md with --out",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.parent and len(args.experiments) > 1:
        ap.error("--parent names one sweep: give one experiment")
    if not (args.experiments or args.claims or args.from_data or args.agreement):
        ap.error("name an experiment (or use --from-data FOLDER, --claims or --agreement A B)")
    if args.from_data and (args.reproduce or args.parent or args.compare):
        ap.error(
            "--from-data regenerates a report as it was made: no --reproduce, --parent, --compare"
        )
    try:
        if args.agreement:
            out = args.out / "agreement.md" if args.out else None
            print(agreement(*args.agreement, out=out), end="")
            return 0
        if args.from_data:
            folder = regenerate(args.from_data, args.out or LOCAL)
            print(f"[harness.report] wrote {folder / 'report.md'}", file=sys.stderr)
        elif args.reproduce:
            reproduce(args.experiments, args.tracking_uri, args.out or COMMITTED, args.compare)
        else:
            for name in args.experiments:
                folder = generate(
                    name,
                    args.tracking_uri,
                    args.out or LOCAL,
                    args.parent,
                    args.compare,
                    not args.no_attach,
                )
                print(f"[harness.report] wrote {folder / 'report.md'}", file=sys.stderr)
        if args.claims:
            path = write_claims(args.out or COMMITTED)
            print(f"[harness.report] wrote {path}", file=sys.stderr)
    except ReportError as exc:
        print(f"harness.report: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
