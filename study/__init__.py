"""seedvar: how much does a deep-learning result vary, and why. Seed sweeps, test modes, MLflow tracking
and variance reports for small vision CNNs.

The Python API (`seedvar.sweep`, `seedvar.runs`, `seedvar.samples`, `seedvar.report`, `seedvar.reproduce`,
`seedvar.ready_studies`) is what the
`seedvar` command runs; its modules load on first use, so `import seedvar` stays light. (`seedvar.studies`
is the package of the ready specs themselves.)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("seedvar")
except PackageNotFoundError:  # a source tree that is not installed
    __version__ = "unknown"

API = ("sweep", "runs", "samples", "report", "reproduce", "ready_studies", "log_test_modes")
__all__ = [*API, "__version__"]


def __getattr__(name: str) -> Any:
    """`seedvar.sweep` and friends, imported when first asked for."""
    if name in API:
        if name == "log_test_modes":
            from seedvar.testmodes import log_test_modes

            return log_test_modes
        from seedvar import api

        return getattr(api, name)
    raise AttributeError(f"module 'seedvar' has no attribute {name!r}")
