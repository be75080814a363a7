"""Hydra discovers this package (a `hydra_plugins` namespace package): `hydra/sweeper=harness`."""
