"""Where and how a sweep runs its runs: one settings object, resolved once from the spec's [execution]
table, the command line's flags (or the API's keywords) and the defaults, in that order of precedence.
Every default of where runs run, and of how patient a sweep is with its store, is written here and
nowhere else (the command's help texts read them from here).

Never part of a run's config: results do not depend on where or how many at once a run ran (its
threads are part of its config, in [train]).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seedvar.errors import UserError
from seedvar.plan.spec import typed_table

ENV_TRACKING_URI = "MLFLOW_TRACKING_URI"  # MLflow's own: where the runs are when no flag says
DEFAULT_URI = "sqlite:///mlruns/mlflow.db"  # ... and when neither says: the embedded store under ./mlruns
ENV_RETRY = "SEEDVAR_RETRY_SECONDS"  # the retry window when no flag or table sets it
DEFAULT_RETRY_SECONDS = 120.0  # a store call keeps retrying an unreachable tracking server this long
DEFAULT_CLAIM_TIMEOUT = 120.0  # seconds without a heartbeat after which a claimed run is stale
DEFAULT_CHECKPOINT_EVERY = (
    60.0  # seconds between a run's epoch checkpoints: work lost to a kill vs saving cost
)
DEFAULT_RUNS_PER_GPU = 1


def retry_seconds(retry_for: float | None = None) -> float:
    """The retry window: the given one, else $SEEDVAR_RETRY_SECONDS, else the default."""
    return float(os.environ.get(ENV_RETRY, DEFAULT_RETRY_SECONDS)) if retry_for is None else float(retry_for)


@dataclass(frozen=True)
class Execution:
    """Every setting of where runs run."""

    executor: str = "local"  # local (this machine: one process or worker processes) | ray
    # Runs at once. Local: worker processes (None: one per core on a CPU, runs_per_gpu per GPU); Ray: tasks
    # in flight (None: as many as the cluster schedules).
    jobs: int | None = None
    runs_per_gpu: int = DEFAULT_RUNS_PER_GPU  # at most this many runs share one GPU (local workers or Ray)
    ray_address: str = ""  # ray: "" starts a local instance; "auto" or "ray://host:port" joins a cluster
    checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY  # 0 = after every epoch
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT  # tracking servers: a silent run is taken over after this
    retry_for: float | None = None  # an unreachable store is retried this long (None: retry_seconds())

    @classmethod
    def resolve(
        cls, table: Mapping[str, Any] | None = None, source: str = "<spec>", **flags: Any
    ) -> Execution:
        """The spec's [execution] table (checked key by key), then every flag that is not None on top."""
        spec = typed_table(cls, "execution", dict(table or {}), source)
        given = {k: v for k, v in flags.items() if v is not None}
        unknown = sorted(set(given) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise TypeError(f"unknown execution setting {unknown[0]!r}")
        return dataclasses.replace(spec, **given).checked(source)

    def checked(self, source: str) -> Execution:
        """Refuse impossible values with one line naming the setting (the executor's name is checked where
        executors are built: seedvar.engine.executors.build)."""

        def fail(key: str, msg: str) -> UserError:
            return UserError(f"{source}: execution.{key} (--{key.replace('_', '-')}): {msg}")

        if self.jobs is not None and self.jobs < 1:
            raise fail("jobs", f"must be at least 1, got {self.jobs}")
        if self.runs_per_gpu < 1:
            raise fail("runs_per_gpu", f"must be at least 1, got {self.runs_per_gpu}")
        if self.checkpoint_every < 0:
            raise fail("checkpoint_every", f"must be >= 0 seconds, got {self.checkpoint_every}")
        if self.claim_timeout <= 0:
            raise fail("claim_timeout", f"must be > 0 seconds, got {self.claim_timeout}")
        if self.retry_for is not None and self.retry_for < 0:
            raise fail("retry_for", f"must be >= 0 seconds, got {self.retry_for}")
        if self.ray_address and self.executor != "ray":
            raise fail("ray_address", f"only applies to the ray executor, not {self.executor!r}")
        return self
