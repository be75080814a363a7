"""`python -m harness.dashboard`: see harness.tools.dashboard."""

from harness.tools.dashboard import main

if __name__ == "__main__":
    raise SystemExit(main())
