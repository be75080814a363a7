"""`python -m harness.bench`: see harness.tools.bench."""

from harness.tools.bench import main

if __name__ == "__main__":
    raise SystemExit(main())
