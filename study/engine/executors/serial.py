"""Runs one after another in this process (the local executor with one worker)."""

from __future__ import annotations

from seedvar.engine.progress import Progress
from seedvar.engine.runner import RunContext, RunOutcome, run_one
from seedvar.plan import RunConfig
from seedvar.record.store import Store


def run_serial(
    pending: list[RunConfig], ctx: RunContext, progress: Progress, store: Store
) -> list[RunOutcome]:
    """In-process, sharing one store connection across runs."""
    outcomes = []
    for cfg in pending:
        outcome = run_one(cfg, ctx, store, lambda kind, payload: progress.event(0, kind, payload))
        outcomes.append(outcome)
        progress.finished(outcome)
    return outcomes
