"""`python -m harness.experiments`: see harness.tools.experiments."""

from harness.tools.experiments import main

if __name__ == "__main__":
    raise SystemExit(main())
