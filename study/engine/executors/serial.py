"""Runs one after another in this process: the default for one run at a time."""

from __future__ import annotations

from study.engine.executors import Options
from study.engine.progress import Progress
from study.engine.runner import RunContext, RunOutcome, run_one
from study.plan import RunConfig
from study.record.store import Store


class Executor:
    """In-process, sharing one store connection across runs."""

    def __init__(self, store: Store | None, options: Options) -> None:
        self.store = store

    def prepare(self, tracking_uri: str) -> None:
        pass

    def close(self) -> None:
        pass

    def where(self) -> str:
        return "one run at a time in this process"

    def run(self, pending: list[RunConfig], ctx: RunContext, progress: Progress) -> list[RunOutcome]:
        outcomes = []
        for cfg in pending:
            outcome = run_one(cfg, ctx, self.store, lambda kind, payload: progress.event(0, kind, payload))
            outcomes.append(outcome)
            progress.finished(outcome)
        return outcomes
