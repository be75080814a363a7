"""`python -m harness.report EXPERIMENT`: see harness.report.cli."""

from harness.report.cli import main

raise SystemExit(main())
