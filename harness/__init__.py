"""harness: the same neural network through Keras, PyTorch Lightning and NumPy, swept by
Hydra and tracked in MLflow.

From Python (harness.api, imported on first use so `import harness` stays cheap):
`harness.run(*overrides)`, `harness.sweep(experiment, *overrides)`, `harness.runs(experiment)`,
`harness.history(experiment)`, `harness.report(experiment)`.
"""

from __future__ import annotations

import types
from typing import Any

__version__ = "0.1.0"

_API = ("HarnessError", "Report", "Result", "history", "runs")  # plain lazy attributes


def _api(name: str) -> Any:
    import harness.api

    return getattr(harness.api, name)


class _CallablePackage(types.ModuleType):
    """harness.run, harness.sweep and harness.report are packages (their modules import as
    before) and also the API's functions of the same names: calling one calls the function.

    A plain attribute would not do: importing any of their modules (harness.run.train)
    rebinds harness.run to the package.
    """

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _api(self.__name__.rpartition(".")[2])(*args, **kwargs)

    @property
    def __wrapped__(self) -> Any:  # inspect.signature and Jupyter's `?` show the function's
        return _api(self.__name__.rpartition(".")[2])


def __getattr__(name: str) -> Any:  # PEP 562
    if name in _API:
        return _api(name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_API})


# their __init__ files are docstrings only: cheap to import
from harness import report as _report  # noqa: E402
from harness import run as _run  # noqa: E402
from harness import sweep as _sweep  # noqa: E402

for _package in (_run, _sweep, _report):
    _package.__class__ = _CallablePackage
