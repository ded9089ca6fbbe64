"""`--executor local` (the default): this machine, one run at a time in this process or several in worker
processes, as many as `Execution.local_workers` allows (`--jobs`, cores, `--runs-per-gpu` per GPU)."""

from __future__ import annotations

import torch

from seedvar.engine.execution import Execution
from seedvar.engine.executors import pool, serial
from seedvar.engine.progress import Progress
from seedvar.engine.runner import RunContext, RunOutcome
from seedvar.plan import RunConfig
from seedvar.record.store import Store


class Executor:
    """Serial in this process for one worker, else a pool of spawned worker processes."""

    def __init__(self, execution: Execution, device: str) -> None:
        self.execution, self.device = execution, device
        self.gpus = torch.cuda.device_count() if device == "cuda" else 0

    def prepare(self, tracking_uri: str) -> None:
        pass

    def close(self) -> None:
        pass

    def _workers(self, pending: list[RunConfig]) -> tuple[int, list[int]]:
        threads = max((c.train.threads for c in pending), default=1)
        return self.execution.local_workers(self.device, threads, len(pending), self.gpus)

    def where(self, pending: list[RunConfig]) -> str:
        n, _ = self._workers(pending)
        if n == 1:
            return "one run at a time in this process"
        return f"{n} worker processes" + (f" on {self.gpus} GPU(s)" if self.gpus else "")

    def run(
        self, pending: list[RunConfig], ctx: RunContext, progress: Progress, store: Store
    ) -> list[RunOutcome]:
        n, gpus = self._workers(pending)
        if n == 1:
            return serial.run_serial(pending, ctx, progress, store)
        return pool.run_parallel(pending, ctx, n, progress, gpus or None)
