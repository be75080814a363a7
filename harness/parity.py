"""`python -m harness.parity`: see harness.run.parity."""

from harness.run.parity import main

if __name__ == "__main__":
    raise SystemExit(main())
