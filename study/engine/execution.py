"""Where and how a sweep runs its runs: one settings object, resolved once from the spec's [execution]
table, the command line's flags (or the API's keywords) and the defaults, in that order of precedence.

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
from seedvar.record.defaults import DEFAULT_CLAIM_TIMEOUT

DEFAULT_CHECKPOINT_EVERY = (
    60.0  # seconds between a run's epoch checkpoints: work lost to a kill vs saving cost
)


@dataclass(frozen=True)
class Execution:
    """Every setting of where runs run; each default is written here and nowhere else."""

    executor: str = "local"  # local (this machine: one process or worker processes) | ray
    # Runs at once. Local: worker processes (None: one per core on a CPU, runs_per_gpu per GPU); Ray: tasks
    # in flight (None: as many as the cluster schedules).
    jobs: int | None = None
    runs_per_gpu: int = 1  # at most this many runs share one GPU (local workers or fractional Ray GPUs)
    ray_address: str = ""  # ray: "" starts a local instance; "auto" or "ray://host:port" joins a cluster
    checkpoint_every: float = DEFAULT_CHECKPOINT_EVERY  # 0 = after every epoch
    claim_timeout: float = DEFAULT_CLAIM_TIMEOUT  # tracking servers: a silent run is taken over after this
    retry_for: float | None = (
        None  # an unreachable tracking server is retried this long (None: $SEEDVAR_RETRY_SECONDS or 120)
    )

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

    def local_workers(self, device: str, threads: int, pending: int, gpus: int) -> tuple[int, list[int]]:
        """(worker processes, the GPU of each worker) for the local executor.

        On a CPU: `jobs`, else as many as the cores allow (cores // threads per run). On GPUs: `jobs` and
        `runs_per_gpu` compose: at most runs_per_gpu workers per GPU, and at most `jobs` in all (default
        every slot); worker w uses GPU w % gpus. Never more workers than runs.
        """
        if device == "cuda" and gpus:
            slots = gpus * self.runs_per_gpu
            n = min(self.jobs or slots, slots)
        else:
            cores = (
                len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
            )
            n = self.jobs or max(1, cores // threads)
        n = max(1, min(n, pending))
        return n, ([w % gpus for w in range(n)] if device == "cuda" and gpus else [])
