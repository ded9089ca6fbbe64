"""Runs one after another in this process (the local executor with one worker)."""

from __future__ import annotations

from seedvar.engine.executors import Job
from seedvar.engine.progress import Progress
from seedvar.plan import RunConfig
from seedvar.results import RunOutcome


def run_serial(pending: list[RunConfig], job: Job, progress: Progress) -> list[RunOutcome]:
    """In-process: the job keeps one store connection across runs."""
    outcomes = []
    for cfg in pending:
        outcome = job(cfg, lambda kind, payload: progress.event(0, kind, payload))
        outcomes.append(outcome)
        progress.finished(outcome)
    return outcomes
