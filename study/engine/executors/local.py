"""`--executor local` (the default): this machine, one run at a time in this process or several in worker
processes, as many as `workers` allows (`--jobs`, cores, `--runs-per-gpu` per GPU)."""

from __future__ import annotations

import os

import torch

from seedvar.engine.executors import Job, pool, serial
from seedvar.engine.progress import Progress
from seedvar.plan import RunConfig
from seedvar.plan.execution import Execution
from seedvar.results import RunOutcome


def workers(
    execution: Execution, device: str, threads: int, pending: int, gpus: int
) -> tuple[int, list[int]]:
    """(worker processes, the GPU of each worker).

    On a CPU: `jobs`, else as many as the cores allow (cores // threads per run). On GPUs: `jobs` and
    `runs_per_gpu` compose: at most runs_per_gpu workers per GPU, and at most `jobs` in all (default
    every slot); worker w uses GPU w % gpus. Never more workers than runs.
    """
    if device == "cuda" and gpus:
        slots = gpus * execution.runs_per_gpu
        n = min(execution.jobs or slots, slots)
    else:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        n = execution.jobs or max(1, cores // threads)
    n = max(1, min(n, pending))
    return n, ([w % gpus for w in range(n)] if device == "cuda" and gpus else [])


class Executor:
    """Serial in this process for one worker, else a pool of spawned worker processes."""

    def __init__(self, execution: Execution, device: str) -> None:
        self.execution, self.device = execution, device
        self.gpus = torch.cuda.device_count() if device == "cuda" else 0

    def prepare(self) -> None:
        pass

    def hosts(self) -> int:
        return 1

    def close(self) -> None:
        pass

    def _workers(self, pending: list[RunConfig]) -> tuple[int, list[int]]:
        threads = max((c.train.threads for c in pending), default=1)
        return workers(self.execution, self.device, threads, len(pending), self.gpus)

    def where(self, pending: list[RunConfig]) -> str:
        n, _ = self._workers(pending)
        if n == 1:
            return "one run at a time in this process"
        return f"{n} worker processes" + (f" on {self.gpus} GPU(s)" if self.gpus else "")

    def run(self, pending: list[RunConfig], job: Job, progress: Progress) -> list[RunOutcome]:
        n, gpus = self._workers(pending)
        if n == 1:
            return serial.run_serial(pending, job, progress)
        return pool.run_parallel(pending, job, n, progress, gpus or None)
