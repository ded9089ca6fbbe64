"""Executors: where a sweep's pending runs run. Each is one module here with an `Executor` class.

`local` runs them on this machine, one after another in this process (`serial`) or in worker processes
(`pool`: `--jobs`, and `--runs-per-gpu` slots per GPU); `ray` runs them as Ray tasks on every CPU, GPU
and host of a Ray cluster. An executor is given configs and a job (a picklable callable that runs one
config and says how it ended) and returns one outcome per config; it records nothing. A new executor is
one new file: `build` imports `seedvar.engine.executors.<name>`.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING, Protocol

from seedvar.errors import UserError

if TYPE_CHECKING:  # kept light: the CLI lists the executors without loading torch
    from seedvar.engine.progress import Progress
    from seedvar.plan import RunConfig
    from seedvar.plan.execution import Execution
    from seedvar.results import Event, RunOutcome

HELPERS = ("serial", "pool")  # the two ways of the local executor, not executors of their own


class Job(Protocol):
    """What runs for each config: picklable, so a worker process or a Ray task can receive it. It emits
    ("begin", ...) first and ("end", ...) last, whatever happens between."""

    def __call__(self, cfg: RunConfig, emit: Event) -> RunOutcome: ...


class Executor(Protocol):
    """Runs a job for each config and returns one outcome per config."""

    def __init__(self, execution: Execution, device: str) -> None: ...

    def prepare(self) -> None:
        """Connect to where the runs will run; refuse (UserError) before anything is written."""
        ...

    def hosts(self) -> int:
        """How many machines the runs may land on (files on one machine's disk are not on the others)."""
        ...

    def where(self, pending: list[RunConfig]) -> str:
        """Where the runs go, for the sweep's first line."""
        ...

    def run(self, pending: list[RunConfig], job: Job, progress: Progress) -> list[RunOutcome]: ...

    def close(self) -> None:
        """Release what prepare() started."""
        ...


def names() -> list[str]:
    """What `--executor` accepts: every executor module here."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in HELPERS)


def check(name: str) -> None:
    """A one-line error for an executor that does not exist (checked by dry runs too)."""
    if name not in names():
        raise UserError(f"execution.executor (--executor): must be one of {', '.join(names())}, got {name!r}")


def build(execution: Execution, device: str) -> Executor:
    """The executor of a sweep, built here and nowhere else."""
    check(execution.executor)
    module = importlib.import_module(f"{__name__}.{execution.executor}")
    return module.Executor(execution, device)
