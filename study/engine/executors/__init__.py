"""Executors: where a sweep's pending runs run. Each is one module here with an `Executor` class.

`serial` runs them one after another in this process, `pool` in local worker processes (`--jobs`, and
`--runs-per-gpu` slots per GPU), `ray` as Ray tasks on every CPU, GPU and host of a Ray cluster. A new
executor is one new file: `get_executor(name)` imports `study.engine.executors.<name>`.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # kept light: the CLI and the spec check list the executors without loading MLflow
    from study.engine.progress import Progress
    from study.engine.runner import RunContext, RunOutcome
    from study.plan import RunConfig
    from study.record.store import Store

LOCAL = ("serial", "pool")  # what `--executor local` means: one process, or --jobs worker processes


@dataclass(frozen=True)
class Options:
    """How many runs at once and where: what the user asked for with --jobs, --runs-per-gpu, --ray-address."""

    jobs: int = 1
    runs_per_gpu: int = 1
    gpus: int = 0  # GPUs on this machine (local executors)
    ray_address: str = ""


class Executor(Protocol):
    """Runs configs (each through `runner.run_one`) and returns one outcome per config."""

    def __init__(self, store: Store | None, options: Options) -> None: ...

    def prepare(self, tracking_uri: str) -> None:
        """Connect to where the runs will run; refuse (UserError) before any store is touched."""
        ...

    def run(self, pending: list[RunConfig], ctx: RunContext, progress: Progress) -> list[RunOutcome]: ...

    def close(self) -> None:
        """Release what prepare() started."""
        ...

    def where(self) -> str:
        """Where the runs go, for the sweep's first line."""
        ...


def names() -> list[str]:
    """What `--executor` accepts: local (serial or pool) and every other executor module here."""
    return ["local", *sorted(m.name for m in pkgutil.iter_modules(__path__) if m.name not in LOCAL)]


def get_executor(name: str) -> type[Executor]:
    """The Executor class of `study.engine.executors.<name>`."""
    return importlib.import_module(f"{__name__}.{name}").Executor
