"""Executors: where a sweep's pending runs run. Each is one module here with an `Executor` class.

`serial` runs them one after another in this process, `pool` in local worker processes (`--jobs`).
A new executor is one new file: `get_executor(name)` imports `study.engine.executors.<name>`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol

from study.engine.progress import Progress
from study.engine.runner import RunContext, RunOutcome
from study.plan import RunConfig


class Executor(Protocol):
    """Runs configs (each through `runner.run_one`) and returns one outcome per config."""

    def run(self, pending: list[RunConfig], ctx: RunContext, progress: Progress) -> list[RunOutcome]: ...


def names() -> list[str]:
    """The executors this installation has (one per module of this package)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__))


def get_executor(name: str) -> type[Executor]:
    """The Executor class of `study.engine.executors.<name>`."""
    return importlib.import_module(f"{__name__}.{name}").Executor
